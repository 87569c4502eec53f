package segment

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

var allCodecs = []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}

var roundTrips = []struct {
	name     string
	spec     spec
	interval int
	steps    []int // maxBytes of the sequential reads
}{
	{"many small uncompressed batches", spec{entries: 600, batchesPerEntry: 1, recordsPerBatch: 3, valueSize: 20, codecs: []record.Codec{record.CodecNone}}, 1024, []int{1, 500, 4096, 1 << 20}},
	{"many small batches of every codec, several per entry", spec{entries: 150, batchesPerEntry: 4, recordsPerBatch: 5, valueSize: 40, codecs: allCodecs}, 2048, []int{1, 3000, 1 << 20}},
	{"a few large batches", spec{entries: 6, batchesPerEntry: 1, recordsPerBatch: 40, valueSize: 50 << 10, codecs: []record.Codec{record.CodecNone, record.CodecZstd}}, DefaultIndexInterval, []int{1, 100 << 10, 8 << 20}},
	{"offsets with gaps and clocks going back", spec{entries: 300, batchesPerEntry: 2, recordsPerBatch: 2, valueSize: 10, codecs: allCodecs, gap: 5, jitter: 50}, 512, []int{1, 700}},
}

func TestRoundTripReadsBackEveryBatchAsWritten(t *testing.T) {
	t.Parallel()
	for i, tc := range roundTrips {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entries, batches := build(t, tc.spec, 1000, uint64(i))
			obj, wf := writeObject(t, entries, WriterOptions{IndexInterval: tc.interval})
			r, _ := open(t, obj)
			ctx := context.Background()

			var data []byte
			var records int64
			minTS, maxTS := int64(math.MaxInt64), int64(math.MinInt64)
			for _, b := range batches {
				data = append(data, b.data...)
				h, _ := record.ParseHeader(b.data)
				records += int64(h.NumRecords)
				minTS, maxTS = min(minTS, h.BaseTimestamp, h.MaxTimestamp), max(maxTS, h.MaxTimestamp)
			}
			f := r.Footer()
			if f != wf {
				t.Fatalf("footer read %+v, written %+v", f, wf)
			}
			want := Footer{BaseOffset: batches[0].base, LastOffset: batches[len(batches)-1].last, RecordCount: records,
				BatchCount: uint32(len(batches)), MinTimestamp: minTS, MaxTimestamp: maxTS, DataLen: int64(len(data))}
			got := Footer{BaseOffset: f.BaseOffset, LastOffset: f.LastOffset, RecordCount: f.RecordCount,
				BatchCount: f.BatchCount, MinTimestamp: f.MinTimestamp, MaxTimestamp: f.MaxTimestamp, DataLen: f.DataLen}
			if got != want {
				t.Fatalf("footer says %+v, the batches %+v", got, want)
			}
			if !bytes.Equal(obj[:f.DataLen], data) {
				t.Fatal("the data section is not the batches as stored")
			}
			if err := r.VerifyData(ctx); err != nil {
				t.Fatal(err)
			}

			// Seek to every batch boundary and into every batch.
			pos := int64(0)
			for _, b := range batches {
				for _, off := range []int64{b.base, b.last, (b.base + b.last) / 2} {
					p, ok := r.Find(off)
					if !ok || p > pos || pos-p > int64(tc.interval) {
						t.Fatalf("Find(%d) = %d, %v; the batch is at %d, index interval %d", off, p, ok, pos, tc.interval)
					}
					got, next, err := r.ReadBatches(ctx, off, 1)
					if err != nil || !bytes.Equal(got, b.data) || next != b.last+1 {
						t.Fatalf("ReadBatches(%d, 1) = %d bytes, next %d, %v; want the batch %d..%d", off, len(got), next, err, b.base, b.last)
					}
				}
				pos += int64(len(b.data))
			}

			// Read the whole object in steps of maxBytes.
			for _, step := range tc.steps {
				var all []byte
				for off := f.BaseOffset; off <= f.LastOffset; {
					got, next, err := r.ReadBatches(ctx, off, step)
					if err != nil {
						t.Fatalf("ReadBatches(%d, %d): %v", off, step, err)
					}
					if h, _ := record.ParseHeader(got); len(got) > step && len(got) != h.Size() {
						t.Fatalf("ReadBatches(%d, %d) returned %d bytes: more than maxBytes and more than one batch", off, step, len(got))
					}
					all = append(all, got...)
					off = next
				}
				if !bytes.Equal(all, data) {
					t.Fatalf("reading in steps of %d bytes gave %d bytes, not the %d written", step, len(all), len(data))
				}
			}

			// Seek by time: the first batch whose max timestamp is at or
			// after ms, for every batch's timestamps and around them.
			for _, b := range batches {
				for _, ms := range []int64{b.maxTS - 1, b.maxTS, b.maxTS + 1} {
					wantOff, wantOK := int64(0), false
					for _, c := range batches {
						if c.maxTS >= ms {
							wantOff, wantOK = c.base, true
							break
						}
					}
					off, ok, err := r.OffsetForTime(ctx, ms)
					if err != nil || ok != wantOK || off != wantOff {
						t.Fatalf("OffsetForTime(%d) = %d, %v, %v; want %d, %v", ms, off, ok, err, wantOff, wantOK)
					}
					if fo, fp, fok := r.FindTime(ms); fok != wantOK || (ok && fo > wantOff) {
						t.Fatalf("FindTime(%d) = %d@%d, %v; the answer is %d, %v", ms, fo, fp, fok, wantOff, wantOK)
					}
				}
			}
		})
	}
}

func TestReadBatchesMakesOneSmallReadPerCall(t *testing.T) {
	t.Parallel()
	entries, batches := build(t, spec{entries: 2000, batchesPerEntry: 1, recordsPerBatch: 2, valueSize: 100, codecs: []record.Codec{record.CodecNone}}, 0, 1)
	obj, _ := writeObject(t, entries, WriterOptions{IndexInterval: 4096})
	r, cr := open(t, obj)
	if cr.reads != 2 {
		t.Fatalf("Open made %d reads, want 2 (footer, indexes)", cr.reads)
	}
	const maxBytes = 16 << 10
	for _, b := range everySeventh(batches) {
		cr.reads, cr.nbytes = 0, 0
		if _, _, err := r.ReadBatches(context.Background(), b.base, maxBytes); err != nil {
			t.Fatal(err)
		}
		if cr.reads != 1 || cr.nbytes > maxBytes+4096+int64(len(b.data)) {
			t.Fatalf("ReadBatches(%d) made %d reads of %d bytes, want one of at most maxBytes + an index interval", b.base, cr.reads, cr.nbytes)
		}
	}
}

func TestReadBatchesRefusesOffsetsOutsideTheSegment(t *testing.T) {
	t.Parallel()
	entries, _ := build(t, spec{entries: 3, batchesPerEntry: 1, recordsPerBatch: 2, valueSize: 1, codecs: []record.Codec{record.CodecNone}}, 10, 1)
	obj, f := writeObject(t, entries, WriterOptions{})
	r, _ := open(t, obj)
	for _, off := range []int64{-1, 0, f.BaseOffset - 1, f.LastOffset + 1, math.MaxInt64} {
		if _, _, err := r.ReadBatches(context.Background(), off, 100); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("ReadBatches(%d) in %d..%d: %v, want ErrOutOfRange", off, f.BaseOffset, f.LastOffset, err)
		}
		if _, ok := r.Find(off); ok {
			t.Errorf("Find(%d) found it in %d..%d", off, f.BaseOffset, f.LastOffset)
		}
	}
	if _, ok, err := r.OffsetForTime(context.Background(), f.MaxTimestamp+1); ok || err != nil {
		t.Errorf("OffsetForTime past the max timestamp: ok %v, %v; want none", ok, err)
	}
}

func TestTimeIndexKeepsOneEntryPerTimestamp(t *testing.T) {
	t.Parallel()
	// Every batch has the same timestamp: the time index has one entry,
	// the last boundary, however many boundaries the data has.
	var entries []entry
	for i := range int64(200) {
		b, err := record.AppendBatch(nil, record.BatchOptions{BaseOffset: i}, []record.Record{{Timestamp: 5, Value: make([]byte, 100)}})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, entry{i, i, b})
	}
	obj, f := writeObject(t, entries, WriterOptions{IndexInterval: 1000})
	if f.TimeIndexLen != TimeEntrySize || f.OffsetIndexLen < 10*OffsetEntrySize {
		t.Fatalf("time index of %d bytes, offset index of %d; want one time entry", f.TimeIndexLen, f.OffsetIndexLen)
	}
	r, _ := open(t, obj)
	if off, ok, err := r.OffsetForTime(context.Background(), 5); off != 0 || !ok || err != nil {
		t.Fatalf("OffsetForTime(5) = %d, %v, %v; want 0", off, ok, err)
	}
}

func everySeventh(b []batchInfo) []batchInfo {
	var out []batchInfo
	for i := 0; i < len(b); i += 7 {
		out = append(out, b[i])
	}
	return out
}
