package record

import (
	"math/rand/v2"
	"testing"
)

// benchRecords is 100 records of 1 KiB values, compressible like text.
func benchRecords() []Record {
	return testRecords(rand.New(rand.NewPCG(13, 14)), 100, 1024)
}

func BenchmarkAppendBatch(b *testing.B) {
	recs := benchRecords()
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			var buf []byte
			b.SetBytes(100 * 1024)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendBatch(buf[:0], BatchOptions{Codec: codec}, recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReader(b *testing.B) {
	recs := benchRecords()
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			batch, err := AppendBatch(nil, BatchOptions{Codec: codec}, recs)
			if err != nil {
				b.Fatal(err)
			}
			var r Reader
			b.SetBytes(100 * 1024)
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Reset(batch); err != nil {
					b.Fatal(err)
				}
				n := 0
				for r.Next() {
					n++
				}
				if r.Err() != nil || n != 100 {
					b.Fatal(n, r.Err())
				}
			}
		})
	}
}

func BenchmarkDecodeRecords(b *testing.B) {
	recs := benchRecords()
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			batch, err := AppendBatch(nil, BatchOptions{Codec: codec}, recs)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(100 * 1024)
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodeRecords(batch, func(Record) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCRC(b *testing.B) {
	batch, err := AppendBatch(nil, BatchOptions{}, benchRecords())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := VerifyCRC(batch); err != nil {
			b.Fatal(err)
		}
	}
}
