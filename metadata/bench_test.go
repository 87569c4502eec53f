package metadata_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/metadata"
)

// BenchmarkPut measures Put through Raft on a real directory: each command is
// one Raft entry; concurrent Puts share fsyncs (Raft batches them into one
// synced Pebble write). Values are 100 bytes.
func BenchmarkPut(b *testing.B) {
	val := make([]byte, 100)
	b.Run("sequential", func(b *testing.B) {
		s := openService(b, b.TempDir(), 0)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if _, err := s.Put(ctx, fmt.Sprintf("bench/%08d", i), val, metadata.AnyVersion); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	})
	b.Run("parallel", func(b *testing.B) {
		s := openService(b, b.TempDir(), 0)
		ctx := context.Background()
		var n atomic.Int64
		b.SetParallelism(16) // 16 × GOMAXPROCS writers
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Put(ctx, fmt.Sprintf("bench/%08d", n.Add(1)), val, metadata.AnyVersion); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	})
}
