package record

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"testing"
)

// seedBatches are real encoded batches: the Kafka-written golden batch and
// one per codec.
func seedBatches(f *testing.F) [][]byte {
	golden, err := hex.DecodeString(kafkaMetadataBatch)
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{golden}
	for i, codec := range allCodecs {
		b, err := AppendBatch(nil, BatchOptions{Codec: codec}, testRecords(rand.New(rand.NewPCG(uint64(i), 12)), 5, 20))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzParseBatch checks that header parsing, CRC checking and splitting
// never panic and agree with each other.
func FuzzParseBatch(f *testing.F) {
	seeds := seedBatches(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add(bytes.Join(seeds, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err == nil && (h.Size() > len(b) || h.Size() < HeaderSize || h.LastOffset() < h.BaseOffset) {
			t.Fatalf("ParseHeader accepted an impossible header %+v for %d bytes", h, len(b))
		}
		if _, crcErr := VerifyCRC(b); err != nil && crcErr == nil {
			t.Fatal("VerifyCRC accepted what ParseHeader rejected")
		}
		batches, err := SplitBatches(nil, b)
		total := 0
		for _, batch := range batches {
			total += len(batch)
		}
		if err == nil && total != len(b) {
			t.Fatalf("SplitBatches covered %d of %d bytes", total, len(b))
		}
	})
}

// FuzzDecodeRecords decodes arbitrary batches. It repairs the CRC first so
// the fuzzer reaches the decompressors and the record decoder, and checks
// that whatever decodes re-encodes to the same records.
func FuzzDecodeRecords(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseHeader(b); err == nil {
			b = bytes.Clone(b[:h.Size()])
			binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
		}
		var recs []Record
		err := DecodeRecords(b, func(r Record) error { recs = append(recs, r); return nil })
		if err != nil {
			for _, sentinel := range []error{ErrTruncated, ErrMagic, ErrCorrupt, ErrCodec, ErrTooLarge} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		h, _ := ParseHeader(b)
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("decoded %d records, header says %d", len(recs), h.NumRecords)
		}
		_, verr := Validate(b)
		if len(recs) == 0 || verr != nil {
			return
		}
		// A batch that validates has records at base, base+1, ...: encoding
		// them again must give the same records back.
		opts := BatchOptions{BaseOffset: h.BaseOffset, Codec: h.Codec()}
		if h.TimestampType() == LogAppendTime {
			opts.TimestampType = LogAppendTime
		}
		enc, err := AppendBatch(nil, opts, recs)
		if err != nil {
			t.Fatalf("re-encoding decoded records: %v", err)
		}
		var again []Record
		if err := DecodeRecords(enc, func(r Record) error { again = append(again, r); return nil }); err != nil {
			t.Fatalf("decoding re-encoded records: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(recs)) {
			t.Fatal("records changed through a re-encode")
		}
	})
}

// normalize makes empty header lists comparable.
func normalize(recs []Record) []Record {
	for i := range recs {
		if len(recs[i].Headers) == 0 {
			recs[i].Headers = nil
		}
	}
	return recs
}
