package segment

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// entry is one stored entry, as the segment store hands it over.
type entry struct {
	base, last int64
	data       []byte
}

// batchInfo is what the tests know of each batch they built.
type batchInfo struct {
	base, last, maxTS int64
	data              []byte
}

// spec describes a run of entries to build.
type spec struct {
	entries         int
	batchesPerEntry int
	recordsPerBatch int
	valueSize       int
	codecs          []record.Codec
	// gap leaves that many offsets unused between entries (as compaction
	// would).
	gap int64
	// jitter makes max timestamps go back by up to this many ms now and
	// then, as producers' clocks do.
	jitter int64
}

// build makes the entries of s, starting at offset base, with timestamps
// from 1_700_000_000_000 ms.
func build(t testing.TB, s spec, base int64, seed uint64) ([]entry, []batchInfo) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	ts := int64(1_700_000_000_000)
	var entries []entry
	var batches []batchInfo
	off := base
	for range s.entries {
		e := entry{base: off}
		for range s.batchesPerEntry {
			recs := make([]record.Record, s.recordsPerBatch)
			maxTS := int64(0)
			for i := range recs {
				ts += int64(rng.IntN(3))
				rts := ts
				if s.jitter > 0 && rng.IntN(4) == 0 {
					rts -= rng.Int64N(s.jitter)
				}
				v := make([]byte, s.valueSize)
				for j := range v {
					v[j] = byte('a' + rng.IntN(4)) // compressible
				}
				recs[i] = record.Record{Timestamp: rts, Key: fmt.Appendf(nil, "k%d", off+int64(i)), Value: v}
				if i == 0 || rts > maxTS {
					maxTS = rts
				}
			}
			codec := s.codecs[rng.IntN(len(s.codecs))]
			start := len(e.data)
			var err error
			e.data, err = record.AppendBatch(e.data, record.BatchOptions{BaseOffset: off, Codec: codec}, recs)
			if err != nil {
				t.Fatal(err)
			}
			batches = append(batches, batchInfo{base: off, last: off + int64(len(recs)) - 1, maxTS: maxTS, data: e.data[start:]})
			off += int64(len(recs))
		}
		e.last = off - 1
		entries = append(entries, e)
		off += s.gap
	}
	return entries, batches
}

// writeObject writes entries as one object.
func writeObject(t testing.TB, entries []entry, opts WriterOptions) ([]byte, Footer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := w.Append(e.base, e.last, e.data); err != nil {
			t.Fatal(err)
		}
	}
	f, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), f
}

// countingReader is a RangeReader over b that fails the test on a read
// outside b and counts reads and bytes read.
type countingReader struct {
	t      testing.TB
	b      []byte
	reads  int
	nbytes int64
}

func (c *countingReader) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > int64(len(c.b)) || n > int64(len(c.b))-off {
		c.t.Fatalf("read of %d bytes at %d outside an object of %d bytes", n, off, len(c.b))
	}
	c.reads++
	c.nbytes += n
	return ReaderAt{bytes.NewReader(c.b)}.ReadRange(ctx, off, n)
}

func open(t testing.TB, obj []byte) (*Reader, *countingReader) {
	t.Helper()
	cr := &countingReader{t: t, b: obj}
	r, err := Open(context.Background(), cr, int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	return r, cr
}
