package bookie_test

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/nettest"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// openBenchShard opens a shard of rf replicas (1: a single voter, no
// network; 3: three replicas in this process, Raft over loopback TCP)
// with the default cache and memtable, and returns its leader.
func openBenchShard(b *testing.B, rf int) *bookie.Shard {
	b.Helper()
	if rf == 1 {
		return openDefaultShard(b)
	}
	var addrs, peers []string
	for i := range rf {
		addrs = append(addrs, nettest.FreeAddr(b))
		// No gRPC here: the client address is a placeholder.
		peers = append(peers, fmt.Sprintf("r%d=%s=127.0.0.1:1", i+1, addrs[i]))
	}
	ps, err := bookie.ParsePeers(strings.Join(peers, ","))
	if err != nil {
		b.Fatal(err)
	}
	shards := make([]*bookie.Shard, rf)
	errs := make([]error, rf)
	var wg sync.WaitGroup
	for i := range rf {
		cfg := testConfig(b.TempDir())
		cfg.CacheSize, cfg.MemTableSize = 0, 0
		cfg.NodeID, cfg.RaftAddr, cfg.Peers = fmt.Sprintf("r%d", i+1), addrs[i], ps
		// Generous: a benchmark saturates both cores, and a follower that
		// misses heartbeats would start an election mid-run.
		cfg.ElectionTimeout = 2 * time.Second
		wg.Go(func() { shards[i], errs[i] = bookie.OpenShard(ctx, cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("replica %d: %v", i+1, err)
		}
		b.Cleanup(func() { _ = shards[i].Close() })
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) { // poll
		for _, s := range shards {
			if s.Status().Leader {
				return s
			}
		}
	}
	b.Fatal("no leader")
	return nil
}

// BenchmarkClusterAppend measures durable appends of one-record entries
// (1 KiB and 64 KiB values) on RF1 and RF3 shards from 16 concurrent
// writers, each on its own segment, in process on the leader: MB/s and
// entries/s of acknowledged appends, p50 and p99 latency of one append,
// and appends per fsync of the leader's Raft log (group commit). On RF3
// an append is acknowledged once a majority (the leader and one
// follower) has it on disk.
//
//	go test -run '^$' -bench BenchmarkClusterAppend -benchtime 10s ./bookie/
func BenchmarkClusterAppend(b *testing.B) {
	for _, rf := range []int{1, 3} {
		for _, size := range []int{1 << 10, 64 << 10} {
			for _, writers := range []int{1, 16} {
				b.Run(fmt.Sprintf("rf=%d/entry=%dKiB/writers=%d", rf, size>>10, writers), func(b *testing.B) {
					benchAppends(b, openBenchShard(b, rf), size, writers)
				})
			}
		}
	}
}

func benchAppends(b *testing.B, s *bookie.Shard, size, writers int) {
	// Random bytes: payloads that producers compressed, or that do not
	// compress; zeros would flatter any compression on the way to disk.
	value := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(value)
	entry, err := record.AppendBatch(nil, record.BatchOptions{}, []record.Record{{Value: value}})
	if err != nil {
		b.Fatal(err)
	}
	for w := range writers {
		if err := s.CreateSegment(ctx, uint64(w+1), 0, 1); err != nil {
			b.Fatal(err)
		}
	}
	var (
		left      atomic.Int64 // appends still to make
		wg        sync.WaitGroup
		latencies = make([][]time.Duration, writers)
		failed    atomic.Bool
	)
	left.Store(int64(b.N))
	b.SetBytes(int64(len(entry)))
	startSyncs := s.WALSyncs()
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			e := slices.Clone(entry)
			seg := uint64(w + 1)
			for next := int64(0); left.Add(-1) >= 0; next++ {
				record.SetBaseOffset(e, next)
				t0 := time.Now()
				if _, err := s.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}}); err != nil {
					if failed.CompareAndSwap(false, true) {
						b.Error(err)
					}
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(len(all))/float64(max(s.WALSyncs()-startSyncs, 1)), "appends/fsync")
}
