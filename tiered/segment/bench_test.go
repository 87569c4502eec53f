package segment

import (
	"context"
	"io"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// benchSpec is 64 MiB-ish of 16 KiB batches of 1 KiB records, zstd and
// uncompressed mixed, as a producer's batches are.
var benchSpec = spec{entries: 2048, batchesPerEntry: 1, recordsPerBatch: 16, valueSize: 1 << 10, codecs: []record.Codec{record.CodecNone, record.CodecZstd}}

// BenchmarkWriter measures writing a segment object to io.Discard: header
// validation, CRC and indexing.
func BenchmarkWriter(b *testing.B) {
	entries, _ := build(b, benchSpec, 0, 1)
	var n int64
	for _, e := range entries {
		n += int64(len(e.data))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewWriter(io.Discard, WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if err := w.Append(e.base, e.last, e.data); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBatches measures reading a whole in-memory object in 1 MiB
// ReadBatches calls: the format's own cost, without the object store's.
func BenchmarkReadBatches(b *testing.B) {
	entries, _ := build(b, benchSpec, 0, 1)
	obj, f := writeObject(b, entries, WriterOptions{})
	ctx := context.Background()
	r, err := Open(ctx, ReaderAt{bytesReaderAt(obj)}, int64(len(obj)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(f.DataLen)
	b.ReportAllocs()
	for b.Loop() {
		for off := f.BaseOffset; off <= f.LastOffset; {
			_, next, err := r.ReadBatches(ctx, off, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			off = next
		}
	}
}

// bytesReaderAt is an io.ReaderAt over a byte slice.
type bytesReaderAt []byte

func (p bytesReaderAt) ReadAt(b []byte, off int64) (int, error) {
	if off >= int64(len(p)) {
		return 0, io.EOF
	}
	n := copy(b, p[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
