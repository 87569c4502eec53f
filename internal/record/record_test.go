package record

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// kafkaMetadataBatch is a batch written by Apache Kafka itself (a KRaft
// __cluster_metadata log segment holding a FeatureLevelRecord that sets
// metadata.version to 20), byte for byte. Field by field:
//
//	00 00 00 00 00 00 00 01   baseOffset 1
//	00 00 00 4f               batchLength 79 (91 bytes in all)
//	00 00 00 01               partitionLeaderEpoch 1
//	02                        magic 2
//	b0 69 45 7c               crc (CRC-32C of everything from attributes on)
//	00 00                     attributes: no codec, CreateTime
//	00 00 00 00               lastOffsetDelta 0
//	00 00 01 91 e0 5a f8 18   baseTimestamp 1726045943832
//	00 00 01 91 e0 5a f8 18   maxTimestamp
//	ff ff ff ff ff ff ff ff   producerId -1
//	ff ff                     producerEpoch -1
//	ff ff ff ff               baseSequence -1
//	00 00 00 01               1 record:
//	3a                        length 29 (zig-zag)
//	00 00 00                  attributes, timestampDelta 0, offsetDelta 0
//	01                        key length -1: null
//	2e                        value length 23, then the 23 value bytes
//	00                        no headers
const kafkaMetadataBatch = "0000000000000001" + "0000004f" + "00000001" + "02" + "b069457c" +
	"0000" + "00000000" + "00000191e05af818" + "00000191e05af818" +
	"ffffffffffffffff" + "ffff" + "ffffffff" + "00000001" +
	"3a" + "000000" + "01" + "2e" +
	"010c0011" + "6d657461646174612e76657273696f6e" + "001400" +
	"00"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCRC32CIsCastagnoli(t *testing.T) {
	// The standard CRC-32C check value.
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xe3069283 {
		t.Fatalf("crc32c(123456789) = %#x, want 0xe3069283", got)
	}
}

func TestKafkaWrittenBatchDecodesAndReencodesIdentically(t *testing.T) {
	golden := mustHex(t, kafkaMetadataBatch)
	h, err := VerifyCRC(golden)
	if err != nil {
		t.Fatalf("VerifyCRC: %v", err)
	}
	want := BatchHeader{
		BaseOffset: 1, Length: 79, PartitionLeaderEpoch: 1, Magic: 2, CRC: 0xb069457c,
		LastOffsetDelta: 0, BaseTimestamp: 1726045943832, MaxTimestamp: 1726045943832,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, NumRecords: 1,
	}
	if h != want {
		t.Fatalf("header = %+v, want %+v", h, want)
	}
	if h.Size() != len(golden) || h.LastOffset() != 1 || h.Codec() != CodecNone {
		t.Fatalf("size %d last %d codec %v", h.Size(), h.LastOffset(), h.Codec())
	}
	var recs []Record
	if err := DecodeRecords(golden, func(r Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatalf("DecodeRecords: %v", err)
	}
	value := mustHex(t, "010c0011"+hex.EncodeToString([]byte("metadata.version"))+"001400")
	wantRecs := []Record{{Offset: 1, Timestamp: 1726045943832, Key: nil, Value: value}}
	if !reflect.DeepEqual(recs, wantRecs) {
		t.Fatalf("records = %+v, want %+v", recs, wantRecs)
	}

	enc, err := AppendBatch(nil, BatchOptions{BaseOffset: 1, PartitionLeaderEpoch: 1}, wantRecs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, golden) {
		t.Fatalf("AppendBatch = %x\nwant          %x", enc, golden)
	}
}

func testRecords(rng *rand.Rand, n, valueSize int) []Record {
	recs := make([]Record, n)
	base := int64(1_700_000_000_000)
	for i := range recs {
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = "abcdefghij klmnop"[rng.IntN(17)] // compressible, not trivially
		}
		recs[i] = Record{Timestamp: base + int64(rng.IntN(2000)) - 1000, Value: v}
		switch i % 4 {
		case 0:
			recs[i].Key = fmt.Appendf(nil, "key-%d", i)
		case 1:
			recs[i].Key = []byte{} // empty, not null
			recs[i].Headers = []Header{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}, {Key: "h3", Value: []byte{}}}
		case 2:
			recs[i].Value = nil
		}
	}
	return recs
}

// withOffsets returns the records as decoding returns them.
func withOffsets(recs []Record, base int64) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Offset = base + int64(i)
		out[i] = r
	}
	return out
}

func decodeAll(t testing.TB, b []byte) []Record {
	t.Helper()
	var out []Record
	if err := DecodeRecords(b, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("DecodeRecords: %v", err)
	}
	return out
}

func TestEveryCodecRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		recs []Record
	}{
		{"one empty record", []Record{{}}},
		{"a hundred small records", testRecords(rng, 100, 100)},
		{"records larger than a compression block", testRecords(rng, 3, 200<<10)},
	}
	for _, codec := range allCodecs {
		for _, tc := range cases {
			t.Run(codec.String()+"/"+tc.name, func(t *testing.T) {
				opts := BatchOptions{
					BaseOffset: 42, PartitionLeaderEpoch: 7, Codec: codec,
					Producer: &Producer{ID: 99, Epoch: 3, BaseSequence: 1000},
				}
				prefix := []byte("existing")
				b, err := AppendBatch(prefix, opts, tc.recs)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b[:len(prefix)], prefix) {
					t.Fatal("AppendBatch overwrote dst's existing bytes")
				}
				b = b[len(prefix):]
				h, err := Validate(b)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if h.Size() != len(b) || h.Codec() != codec || h.NumRecords != int32(len(tc.recs)) ||
					h.ProducerID != 99 || h.ProducerEpoch != 3 || h.BaseSequence != 1000 ||
					h.PartitionLeaderEpoch != 7 || h.LastOffset() != 42+int64(len(tc.recs))-1 {
					t.Fatalf("header = %+v", h)
				}
				got := decodeAll(t, b)
				if want := withOffsets(tc.recs, 42); !reflect.DeepEqual(got, want) {
					t.Fatalf("decoded records differ from encoded ones")
				}
			})
		}
	}
}

func TestHeaderFlagsAndTimestamps(t *testing.T) {
	recs := []Record{{Timestamp: 500}, {Timestamp: 900}, {Timestamp: 100}}
	b, err := AppendBatch(nil, BatchOptions{Transactional: true, Control: true}, recs)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseHeader(b)
	if !h.IsTransactional() || !h.IsControl() || h.TimestampType() != CreateTime {
		t.Fatalf("flags: %+v", h)
	}
	if h.BaseTimestamp != 500 || h.MaxTimestamp != 900 {
		t.Fatalf("base/max timestamp = %d/%d, want 500/900 (first and largest)", h.BaseTimestamp, h.MaxTimestamp)
	}
	if h.ProducerID != NoProducerID || h.ProducerEpoch != NoProducerEpoch || h.BaseSequence != NoSequence {
		t.Fatalf("a batch without producer must carry -1s: %+v", h)
	}
	if got := decodeAll(t, b); got[2].Timestamp != 100 {
		t.Fatalf("negative timestamp delta lost: %d", got[2].Timestamp)
	}

	b, err = AppendBatch(nil, BatchOptions{TimestampType: LogAppendTime}, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range decodeAll(t, b) {
		if r.Timestamp != 900 {
			t.Fatalf("LogAppendTime record timestamp = %d, want the batch max 900", r.Timestamp)
		}
	}
}

func TestSetBaseOffsetKeepsTheCRCValid(t *testing.T) {
	b, err := AppendBatch(nil, BatchOptions{Codec: CodecLZ4}, testRecords(rand.New(rand.NewPCG(3, 4)), 5, 10))
	if err != nil {
		t.Fatal(err)
	}
	SetBaseOffset(b, 1<<40)
	SetPartitionLeaderEpoch(b, 12)
	h, err := VerifyCRC(b)
	if err != nil {
		t.Fatalf("VerifyCRC after SetBaseOffset: %v", err)
	}
	if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 12 {
		t.Fatalf("header = %+v", h)
	}
	if got := decodeAll(t, b); got[4].Offset != 1<<40+4 {
		t.Fatalf("offset of record 4 = %d", got[4].Offset)
	}
}

func TestEveryFlippedByteIsDetected(t *testing.T) {
	for _, codec := range allCodecs {
		b, err := AppendBatch(nil, BatchOptions{Codec: codec}, testRecords(rand.New(rand.NewPCG(5, 6)), 4, 30))
		if err != nil {
			t.Fatal(err)
		}
		for i := offMagic; i < len(b); i++ {
			c := bytes.Clone(b)
			c[i] ^= 0x40
			_, err := VerifyCRC(c)
			if err == nil {
				t.Fatalf("%s: flipping byte %d went unnoticed", codec, i)
			}
			if i >= offAttributes && !errors.Is(err, ErrCRC) {
				t.Fatalf("%s: flipping checksummed byte %d gave %v, want ErrCRC", codec, i, err)
			}
			if DecodeRecords(c, func(Record) error { return nil }) == nil {
				t.Fatalf("%s: DecodeRecords accepted a batch with byte %d flipped", codec, i)
			}
		}
	}
}

func TestTruncatedInputIsAnErrorNotAPanic(t *testing.T) {
	for _, codec := range allCodecs {
		b, err := AppendBatch(nil, BatchOptions{Codec: codec}, testRecords(rand.New(rand.NewPCG(7, 8)), 4, 30))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			if _, err := ParseHeader(b[:n]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s: ParseHeader of %d/%d bytes: %v, want ErrTruncated", codec, n, len(b), err)
			}
			if err := DecodeRecords(b[:n], func(Record) error { return nil }); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s: DecodeRecords of %d/%d bytes: %v, want ErrTruncated", codec, n, len(b), err)
			}
		}
	}
}

func TestParseHeaderRejectsBadFields(t *testing.T) {
	good, err := AppendBatch(nil, BatchOptions{}, []Record{{Value: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(b []byte)
		want error
	}{
		{"magic 1", func(b []byte) { b[offMagic] = 1 }, ErrMagic},
		{"length below the header", func(b []byte) { binary.BigEndian.PutUint32(b[offLength:], 10) }, ErrCorrupt},
		{"negative length", func(b []byte) { binary.BigEndian.PutUint32(b[offLength:], 0xffffffff) }, ErrCorrupt},
		{"length past the input", func(b []byte) { binary.BigEndian.PutUint32(b[offLength:], 1000) }, ErrTruncated},
		{"negative record count", func(b []byte) { binary.BigEndian.PutUint32(b[offNumRecords:], 0xfffffff0) }, ErrCorrupt},
		{"negative last offset delta", func(b []byte) { binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff) }, ErrCorrupt},
		{"last offset overflowing", func(b []byte) {
			binary.BigEndian.PutUint64(b[offBaseOffset:], 1<<63-1)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 5)
		}, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.edit(b)
			if _, err := ParseHeader(b); !errors.Is(err, tc.want) {
				t.Fatalf("ParseHeader: %v, want %v", err, tc.want)
			}
		})
	}
}

// rawBatch builds a batch around a hand-made records section (compressed
// with codec if not none) with a correct CRC, to test the record decoder.
func rawBatch(t testing.TB, codec Codec, numRecords, lastOffsetDelta int32, records []byte) []byte {
	t.Helper()
	body, err := compress(nil, codec, records)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	binary.BigEndian.PutUint32(b[offLength:], uint32(HeaderSize-lengthOverhead+len(body)))
	b[offMagic] = Magic
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(lastOffsetDelta))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(numRecords))
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// rec builds one record's bytes from zig-zag varints and raw byte strings.
func rec(fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch f := f.(type) {
		case int:
			body = binary.AppendVarint(body, int64(f))
		case string:
			body = append(body, f...)
		}
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func TestMalformedRecordsAreRejected(t *testing.T) {
	// attributes, tsDelta, offsetDelta, key, value, headers
	ok := rec(0, 0, 0, -1, 1, "v", 0)
	cases := []struct {
		name          string
		count, lastOD int32
		records       []byte
	}{
		{"bytes after the last record", 1, 0, append(bytes.Clone(ok), 0)},
		{"fewer records than counted", 2, 1, ok},
		{"record length longer than its fields", 1, 0, rec(0, 0, 0, -1, 1, "v", 0, "x")},
		{"value running past the record", 1, 0, rec(0, 0, 0, -1, 5, "v", 0)},
		{"null header key", 1, 0, rec(0, 0, 0, -1, -1, 1, -1, -1)},
		{"negative header count", 1, 0, rec(0, 0, 0, -1, -1, -3)},
		{"key length below -1", 1, 0, rec(0, 0, 0, -2, -1, 0)},
		{"offset delta overflowing int32", 1, 0, rec(0, 0, 1<<40, -1, -1, 0)},
		{"unterminated varint", 1, 0, []byte{0x0e, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
		{"negative record length", 1, 0, append(binary.AppendVarint(nil, -5), ok...)},
		{"absurd record count", 1 << 30, 0, ok},
	}
	for _, tc := range cases {
		for _, codec := range []Codec{CodecNone, CodecZstd} {
			t.Run(tc.name+"/"+codec.String(), func(t *testing.T) {
				b := rawBatch(t, codec, tc.count, tc.lastOD, tc.records)
				err := DecodeRecords(b, func(Record) error { return nil })
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("DecodeRecords: %v, want ErrCorrupt", err)
				}
			})
		}
	}
	if err := DecodeRecords(rawBatch(t, CodecNone, 1, 0, ok), func(Record) error { return nil }); err != nil {
		t.Fatalf("the well-formed control case failed: %v", err)
	}
}

func TestValidateRequiresDenseOffsetDeltas(t *testing.T) {
	r0, r1, r2 := rec(0, 0, 0, -1, -1, 0), rec(0, 0, 1, -1, -1, 0), rec(0, 0, 2, -1, -1, 0)
	cases := []struct {
		name          string
		count, lastOD int32
		records       []byte
		ok            bool
	}{
		{"deltas 0,1,2", 3, 2, slices(r0, r1, r2), true},
		{"deltas 0,2 (compacted)", 2, 2, slices(r0, r2), false},
		{"deltas 1,2", 2, 1, slices(r1, r2), false},
		{"count disagrees with last offset delta", 3, 5, slices(r0, r1, r2), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := rawBatch(t, CodecNone, tc.count, tc.lastOD, tc.records)
			if err := DecodeRecords(b, func(Record) error { return nil }); tc.count == int32(len(tc.records)/len(r0)) && err != nil {
				t.Fatalf("a consumer must still be able to decode it: %v", err)
			}
			_, err := Validate(b)
			if tc.ok != (err == nil) {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Validate: %v, want ErrCorrupt", err)
			}
		})
	}
}

func slices(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestSnappyIsReadRawAndXerialFramed(t *testing.T) {
	recs := testRecords(rand.New(rand.NewPCG(9, 10)), 50, 2000) // > 1 xerial chunk
	var section []byte
	for i := range recs {
		section = appendRecord(section, &recs[i], int64(i), recs[0].Timestamp)
	}
	if len(section) <= xerialChunk {
		t.Fatalf("test needs more than one xerial chunk, has %d bytes", len(section))
	}
	framed, err := AppendBatch(nil, BatchOptions{Codec: CodecSnappy}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(framed[HeaderSize:HeaderSize+8], xerialMagic) {
		t.Fatalf("snappy batches must be written xerial-framed, as Kafka does")
	}
	// A raw snappy block, as librdkafka, sarama and franz-go write.
	raw := rawBatch(t, CodecNone, int32(len(recs)), int32(len(recs)-1), nil)
	raw = append(raw, s2.EncodeSnappy(nil, section)...)
	binary.BigEndian.PutUint16(raw[offAttributes:], uint16(CodecSnappy))
	binary.BigEndian.PutUint64(raw[offBaseTimestamp:], uint64(recs[0].Timestamp))
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-lengthOverhead))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], castagnoli))
	for name, b := range map[string][]byte{"xerial": framed, "raw": raw} {
		if got := decodeAll(t, b); !reflect.DeepEqual(got, withOffsets(recs, 0)) {
			t.Fatalf("%s: decoded records differ", name)
		}
	}
}

func TestSplitBatches(t *testing.T) {
	var all []byte
	var want [][]byte
	for i, codec := range allCodecs {
		start := len(all)
		var err error
		all, err = AppendBatch(all, BatchOptions{BaseOffset: int64(i), Codec: codec}, []Record{{Value: []byte{byte(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, all[start:])
	}
	got, err := SplitBatches(nil, all)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SplitBatches = %d batches, want %d", len(got), len(want))
	}
	if _, err := SplitBatches(nil, all[:len(all)-1]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("a trailing partial batch: %v, want ErrTruncated", err)
	}
	if got, err := SplitBatches(nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty input: %v, %v", got, err)
	}
}

func TestReaderIsReusableAcrossBatches(t *testing.T) {
	var r Reader
	for i, codec := range append(allCodecs, allCodecs...) {
		recs := testRecords(rand.New(rand.NewPCG(uint64(i), 11)), 10+i, 50)
		b, err := AppendBatch(nil, BatchOptions{Codec: codec}, recs)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Reset(b); err != nil {
			t.Fatal(err)
		}
		n := 0
		for r.Next() {
			got, want := r.Record(), withOffsets(recs, 0)[n]
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s record %d differs", codec, n)
			}
			n++
		}
		if r.Err() != nil || n != len(recs) {
			t.Fatalf("%s: %d records, err %v", codec, n, r.Err())
		}
	}
	if err := r.Reset([]byte("short")); err == nil || r.Next() || r.Err() == nil {
		t.Fatal("a Reader reset to garbage must report the error")
	}
}

func TestAppendBatchRejectsBadInput(t *testing.T) {
	if _, err := AppendBatch(nil, BatchOptions{}, nil); !errors.Is(err, ErrNoRecords) {
		t.Fatalf("no records: %v", err)
	}
	dst := []byte("keep")
	out, err := AppendBatch(dst, BatchOptions{Codec: 6}, []Record{{}})
	if !errors.Is(err, ErrCodec) || string(out) != "keep" {
		t.Fatalf("codec 6: %v %q", err, out)
	}
	b := rawBatch(t, CodecNone, 0, 0, nil)
	binary.BigEndian.PutUint16(b[offAttributes:], 5)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	if err := DecodeRecords(b, func(Record) error { return nil }); !errors.Is(err, ErrCodec) {
		t.Fatalf("decoding codec 5: %v, want ErrCodec", err)
	}
}

func TestDecompressionIsBounded(t *testing.T) {
	// A snappy block claiming a huge decoded length must fail before
	// allocating it.
	body := binary.AppendUvarint(nil, MaxUncompressedSize+1)
	if _, err := decompress(nil, CodecSnappy, body); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("snappy: %v, want ErrTooLarge", err)
	}
	const limit = 1 << 20
	big := []byte(strings.Repeat("a", limit+1))
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		c, err := compress(nil, codec, big)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decompressLimit(nil, codec, c, limit); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: %v, want ErrTooLarge", codec, err)
		}
	}
}

func TestDecodeRecordsStopsAtCallbackError(t *testing.T) {
	b, _ := AppendBatch(nil, BatchOptions{}, make([]Record, 5))
	stop := errors.New("stop")
	n := 0
	err := DecodeRecords(b, func(Record) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("err %v after %d calls", err, n)
	}
}
