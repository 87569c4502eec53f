package metadata_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// Benchmarks of the service as clients see it: through the gRPC client, on
// a single node and on an in-process 3-node cluster (Raft over loopback
// TCP, every write fsynced on a majority). BenchmarkGRPCPut
// (grpc_bench_test.go) measures Puts the same way.

// benchNodes starts a single node (nodes=1) or a 3-node cluster and returns
// the nodes (with the leader first) and their gRPC addresses.
func benchNodes(b *testing.B, size int) []*node {
	b.Helper()
	if size == 1 {
		svc := openService(b, b.TempDir(), 1000)
		addr, _ := serve(b, svc)
		return []*node{{svc: svc, grpcAddr: addr}}
	}
	nodes := startCluster(b)
	l := leaderIndex(b, nodes)
	nodes[0], nodes[l] = nodes[l], nodes[0]
	return nodes
}

// BenchmarkGRPCTxn measures compare-and-swap Txns through the gRPC client
// from 16×GOMAXPROCS callers: each checks that a key is missing and creates
// it and a second key (100-byte values), one Raft entry and one revision.
func BenchmarkGRPCTxn(b *testing.B) {
	val := make([]byte, 100)
	for _, size := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			nodes := benchNodes(b, size)
			c := dial(b, nodes[0].grpcAddr)
			var n atomic.Int64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := fmt.Sprintf("bench/%08d", n.Add(1))
					resp, err := c.Txn(context.Background(), metadata.TxnRequest{
						Compares: []metadata.Compare{metadata.KeyMissing(k)},
						Then:     []metadata.Op{metadata.PutOp(k, val), metadata.PutOp(k+"/meta", val)},
					})
					if err != nil || !resp.Succeeded {
						b.Errorf("Txn = %+v, %v", resp, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
		})
	}
}

// BenchmarkWatchLatency measures how long after a Put returns to its
// caller the event reaches a watcher of the key (0 if it already had):
// one Put at a time through the gRPC client, 100-byte values, p50 and p99
// reported in microseconds. On 3 nodes the watcher is either the client's
// (its stream follows the leader) or a gRPC stream opened on a follower,
// which sees the event once the follower has applied the entry.
func BenchmarkWatchLatency(b *testing.B) {
	for _, tc := range []struct {
		name     string
		size     int
		follower bool
	}{
		{"nodes=1", 1, false},
		{"nodes=3/watch=leader", 3, false},
		{"nodes=3/watch=follower", 3, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			nodes := benchNodes(b, tc.size)
			c := dial(b, nodes[0].grpcAddr)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			next := clientWatch(b, ctx, c)
			if tc.follower {
				next = followerWatch(b, ctx, nodes[1].grpcAddr)
			}
			val := make([]byte, 100)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				kv, err := c.Put(ctx, "lat/key", val, metadata.AnyVersion)
				if err != nil {
					b.Fatal(err)
				}
				returned := time.Now()
				for next() < kv.ModRevision {
					// an event of an earlier Put, delivered late
				}
				lat = append(lat, time.Since(returned))
			}
			b.StopTimer()
			slices.Sort(lat)
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
			b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
		})
	}
}

// clientWatch watches "lat/" through the client; next returns the revision
// of the next event.
func clientWatch(b *testing.B, ctx context.Context, c *metadata.Client) func() int64 {
	b.Helper()
	ch, err := c.Watch(ctx, "lat/", 0)
	if err != nil {
		b.Fatal(err)
	}
	return func() int64 {
		ev, ok := <-ch
		if !ok {
			b.Fatal("watch closed")
		}
		return ev.KV.ModRevision
	}
}

// followerWatch opens a watch stream of "lat/" on the node at addr itself,
// without the client's leader following.
func followerWatch(b *testing.B, ctx context.Context, addr string) func() int64 {
	b.Helper()
	stream, err := metadatapb.NewMetadataClient(dialRaw(b, addr)).Watch(ctx, &metadatapb.WatchRequest{Prefix: "lat/"})
	if err != nil {
		b.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || !first.Created {
		b.Fatalf("watch on a follower: %v, %v", first, err)
	}
	var pending []*metadatapb.Event
	return func() int64 {
		for len(pending) == 0 {
			resp, err := stream.Recv()
			if err != nil {
				b.Fatal(err)
			}
			pending = resp.Events
		}
		ev := pending[0]
		pending = pending[1:]
		return ev.Kv.ModRevision
	}
}
