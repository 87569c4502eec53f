package metadata_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/metadata"
)

// BenchmarkGRPCPut measures unconditional Puts through the gRPC client,
// from parallel callers, on a single node and on an in-process 3-node
// cluster (Raft over loopback TCP): every Put is fsynced on a majority.
func BenchmarkGRPCPut(b *testing.B) {
	for _, size := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			var addr string
			if size == 1 {
				svc := openService(b, b.TempDir(), 1000)
				addr, _ = serve(b, svc)
			} else {
				nodes := startCluster(b)
				addr = nodes[leaderIndex(b, nodes)].grpcAddr
			}
			c := dial(b, addr)
			val := make([]byte, 100)
			var n atomic.Int64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("bench/%d", n.Add(1)%1000)
					if _, err := c.Put(context.Background(), key, val, metadata.AnyVersion); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
