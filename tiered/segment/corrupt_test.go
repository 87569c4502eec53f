package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

func TestWriterRefusesBadEntriesAndStaysUsable(t *testing.T) {
	t.Parallel()
	batch := func(base int64, n int) []byte {
		recs := make([]record.Record, n)
		b, err := record.AppendBatch(nil, record.BatchOptions{BaseOffset: base}, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Finish with no entries: %v, want ErrEmpty", err)
	}
	if err := w.Append(10, 11, batch(10, 2)); err != nil {
		t.Fatal(err)
	}
	two := append(batch(12, 1), batch(13, 1)...)
	bad := []struct {
		name       string
		base, last int64
		data       []byte
	}{
		{"no data", 12, 12, nil},
		{"not a batch", 12, 12, bytes.Repeat([]byte{1}, 80)},
		{"a truncated batch", 12, 12, batch(12, 1)[:70]},
		{"a batch based elsewhere than the entry", 12, 12, batch(13, 1)},
		{"a last offset the batches do not end at", 12, 14, batch(12, 2)},
		{"offsets before the segment's end", 11, 11, batch(11, 1)},
		{"batches out of order within the entry", 12, 12, append(batch(12, 1), batch(12, 1)...)},
		{"a last offset before the base", 12, 11, batch(12, 1)},
		{"the largest offset", math.MaxInt64 - 1, math.MaxInt64, batch(math.MaxInt64-1, 2)},
		{"two batches with trailing bytes", 12, 13, append(two[:len(two):len(two)], 0)},
	}
	for _, b := range bad {
		if err := w.Append(b.base, b.last, b.data); !errors.Is(err, ErrBadEntry) {
			t.Errorf("Append of %s: %v, want ErrBadEntry", b.name, err)
		}
	}
	if err := w.Append(12, 13, two); err != nil {
		t.Fatal(err)
	}
	f, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if f.BaseOffset != 10 || f.LastOffset != 13 || f.BatchCount != 3 || f.DataLen != int64(len(batch(10, 2))+len(two)) {
		t.Fatalf("footer %+v, want the two good entries only", f)
	}
	if _, err := w.Finish(); err == nil {
		t.Fatal("a second Finish succeeded")
	}
}

func TestWriterOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, 1, 60, MaxIndexInterval + 1} {
		if _, err := NewWriter(&bytes.Buffer{}, WriterOptions{IndexInterval: n}); err == nil {
			t.Errorf("index interval %d accepted", n)
		}
	}
}

// sampleObject is a small object with several index entries of each kind.
func sampleObject(t testing.TB) []byte {
	entries, _ := build(t, spec{entries: 60, batchesPerEntry: 1, recordsPerBatch: 2, valueSize: 30, codecs: allCodecs, jitter: 3}, 100, 3)
	obj, _ := writeObject(t, entries, WriterOptions{IndexInterval: 512})
	return obj
}

func TestOpenRefusesAnyDamagedByteOfTheFooterAndIndexes(t *testing.T) {
	t.Parallel()
	obj := sampleObject(t)
	r, _ := open(t, obj)
	f := r.Footer()
	for i := f.DataLen; i < int64(len(obj)); i++ {
		bad := bytes.Clone(obj)
		bad[i] ^= 0x10
		_, err := Open(context.Background(), &countingReader{t: t, b: bad}, int64(len(bad)))
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d of %d flipped: %v, want ErrCorrupt", i, len(obj), err)
		}
	}
}

func TestOpenRefusesTruncatedObjects(t *testing.T) {
	t.Parallel()
	obj := sampleObject(t)
	for _, n := range []int{0, 1, FooterSize - 1, FooterSize, FooterSize + 100, len(obj) / 2, len(obj) - FooterSize, len(obj) - 1} {
		if _, err := Open(context.Background(), &countingReader{t: t, b: obj[:n]}, int64(n)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("object cut to %d of %d bytes: %v, want ErrCorrupt", n, len(obj), err)
		}
		// The tail of the object moved to the front: the footer is whole
		// but the layout does not fit.
		if n > FooterSize {
			cut := append(bytes.Clone(obj[:n-FooterSize]), obj[len(obj)-FooterSize:]...)
			if _, err := Open(context.Background(), &countingReader{t: t, b: cut}, int64(len(cut))); !errors.Is(err, ErrCorrupt) {
				t.Errorf("data cut to %d bytes under the original footer: %v, want ErrCorrupt", len(cut), err)
			}
		}
	}
}

// refooter rewrites obj's footer with edit applied, with a good footer CRC:
// a footer that lies.
func refooter(t *testing.T, obj []byte, edit func(b []byte)) []byte {
	t.Helper()
	out := bytes.Clone(obj)
	ft := out[len(out)-FooterSize:]
	edit(ft)
	binary.BigEndian.PutUint32(ft[ftFooterCRC:], crc32.Checksum(ft[:ftFooterCRC], castagnoli))
	return out
}

func TestOpenRefusesFootersThatLie(t *testing.T) {
	t.Parallel()
	obj := sampleObject(t)
	be := binary.BigEndian
	lies := []struct {
		name string
		edit func(b []byte)
		want error
	}{
		{"a newer version", func(b []byte) { be.PutUint16(b[ftVersion:], Version+1) }, ErrVersion},
		{"unknown flags", func(b []byte) { be.PutUint16(b[ftFlags:], 1) }, ErrCorrupt},
		{"another footer size", func(b []byte) { be.PutUint32(b[ftFooterSize:], 256) }, ErrCorrupt},
		{"data not at 0", func(b []byte) { be.PutUint64(b[ftDataPos:], 1) }, ErrCorrupt},
		{"a huge data length", func(b []byte) { be.PutUint64(b[ftDataLen:], math.MaxInt64) }, ErrCorrupt},
		{"a negative data length", func(b []byte) { be.PutUint64(b[ftDataLen:], math.MaxUint64) }, ErrCorrupt},
		{"a huge offset index", func(b []byte) { be.PutUint32(b[ftOffsetIdxLen:], math.MaxUint32) }, ErrCorrupt},
		{"a huge time index", func(b []byte) { be.PutUint32(b[ftTimeIdxLen:], math.MaxUint32) }, ErrCorrupt},
		{"an offset index past the object", func(b []byte) { be.PutUint64(b[ftOffsetIdxPos:], math.MaxInt64) }, ErrCorrupt},
		{"a time index at a negative position", func(b []byte) { be.PutUint64(b[ftTimeIdxPos:], math.MaxUint64-5) }, ErrCorrupt},
		{"a bad offset index CRC", func(b []byte) { b[ftOffsetIdxCRC] ^= 1 }, ErrCorrupt},
		{"a bad time index CRC", func(b []byte) { b[ftTimeIdxCRC] ^= 1 }, ErrCorrupt},
		{"a negative base offset", func(b []byte) { be.PutUint64(b[ftBaseOffset:], math.MaxUint64) }, ErrCorrupt},
		{"another base offset", func(b []byte) { be.PutUint64(b[ftBaseOffset:], 99) }, ErrCorrupt},
		{"a last offset before the base", func(b []byte) { be.PutUint64(b[ftLastOffset:], 1) }, ErrCorrupt},
		{"the largest last offset", func(b []byte) { be.PutUint64(b[ftLastOffset:], math.MaxInt64) }, ErrCorrupt},
		{"min timestamp after max", func(b []byte) { be.PutUint64(b[ftMinTimestamp:], math.MaxInt64) }, ErrCorrupt},
		{"max timestamp below the time index", func(b []byte) { be.PutUint64(b[ftMaxTimestamp:], be.Uint64(b[ftMinTimestamp:])) }, ErrCorrupt},
		{"a negative record count", func(b []byte) { be.PutUint64(b[ftRecordCount:], math.MaxUint64) }, ErrCorrupt},
		{"no batches", func(b []byte) { be.PutUint32(b[ftBatchCount:], 0) }, ErrCorrupt},
		{"more batches than the data holds", func(b []byte) { be.PutUint32(b[ftBatchCount:], math.MaxUint32) }, ErrCorrupt},
		{"no index interval", func(b []byte) { be.PutUint32(b[ftIndexInterval:], 0) }, ErrCorrupt},
		{"a bad closing magic", func(b []byte) { b[ftMagicEnd] = 'X' }, ErrCorrupt},
	}
	for _, l := range lies {
		bad := refooter(t, obj, l.edit)
		if _, err := Open(context.Background(), &countingReader{t: t, b: bad}, int64(len(bad))); !errors.Is(err, l.want) {
			t.Errorf("a footer with %s: %v, want %v", l.name, err, l.want)
		}
	}
}

func TestReadsRefuseDamagedData(t *testing.T) {
	t.Parallel()
	obj := sampleObject(t)
	r, _ := open(t, obj)
	f := r.Footer()
	ctx := context.Background()
	h, _ := record.ParseHeader(obj)
	second := int64(h.Size()) // position of the second batch
	damages := []struct {
		name string
		at   int64
		put  func(b []byte)
	}{
		{"a batch length past the data", second + 8, func(b []byte) { binary.BigEndian.PutUint32(b, math.MaxInt32) }},
		{"a batch length below a header", second + 8, func(b []byte) { binary.BigEndian.PutUint32(b, 3) }},
		{"a negative batch length", second + 8, func(b []byte) { binary.BigEndian.PutUint32(b, math.MaxUint32) }},
		{"a bad magic", second + 16, func(b []byte) { b[0] = 1 }},
		{"an offset going back", second, func(b []byte) { binary.BigEndian.PutUint64(b, uint64(f.BaseOffset)) }},
		{"an offset past the segment", second, func(b []byte) { binary.BigEndian.PutUint64(b, uint64(f.LastOffset)) }},
		{"a first batch other than the index says", 0, func(b []byte) { binary.BigEndian.PutUint64(b, uint64(f.BaseOffset+1)) }},
	}
	for _, d := range damages {
		bad := bytes.Clone(obj)
		d.put(bad[d.at:])
		// The footer and indexes are intact, so Open succeeds; the reads
		// must not.
		r, err := Open(ctx, &countingReader{t: t, b: bad}, int64(len(bad)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.ReadBatches(ctx, f.BaseOffset, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("data with %s: ReadBatches: %v, want ErrCorrupt", d.name, err)
		}
		if err := r.VerifyData(ctx); !errors.Is(err, ErrCorrupt) {
			t.Errorf("data with %s: VerifyData: %v, want ErrCorrupt", d.name, err)
		}
	}
}
