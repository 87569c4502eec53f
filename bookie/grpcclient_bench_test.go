package bookie_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// BenchmarkGRPCAppend is BenchmarkShardAppend through a RemoteClient: the
// same shard on disk, served over gRPC on loopback TCP, with every
// goroutine sharing one connection. The gap to the in-process figures is
// the cost of the transport; appends/fsync shows whether concurrent
// appends still share Raft batches (they would not if the connection
// serialized them).
func BenchmarkGRPCAppend(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("entry=%dKiB/goroutines=%d", size>>10, writers), func(b *testing.B) {
				s := openDefaultShard(b)
				c := dialTCP(b, s)
				var segments atomic.Uint64
				startSyncs := s.WALSyncs()
				b.SetBytes(int64(len(entryOf(b, size))))
				b.SetParallelism((writers + 1) / 2) // x GOMAXPROCS goroutines
				if writers == 1 {
					b.SetParallelism(1)
				}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					seg := segments.Add(1)
					e := entryOf(b, size)
					if err := c.CreateSegment(ctx, seg, 0, 1); err != nil {
						b.Error(err)
						return
					}
					for next := int64(0); pb.Next(); next++ {
						record.SetBaseOffset(e, next)
						if _, err := c.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				syncs := s.WALSyncs() - startSyncs
				b.ReportMetric(float64(b.N)/float64(max(syncs, 1)), "appends/fsync")
			})
		}
	}
}
