package bookie_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// entryOf returns an entry holding one record with a value of size bytes.
func entryOf(b *testing.B, size int) []byte {
	value := make([]byte, size)
	for i := range value {
		value[i] = byte(i * 7)
	}
	e, err := record.AppendBatch(nil, record.BatchOptions{}, []record.Record{{Value: value}})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// openDefaultShard opens a single-replica shard on disk with the default
// cache and memtable, closed when the benchmark ends.
func openDefaultShard(b *testing.B) *bookie.Shard {
	b.Helper()
	cfg := testConfig(b.TempDir())
	cfg.CacheSize, cfg.MemTableSize = 0, 0 // the defaults
	s, err := bookie.OpenShard(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkShardAppend appends one-record entries to a shard on disk from
// 1 and 16 goroutines (each writing its own segment). Every append is
// durable (fsync via the Raft log) when it returns; concurrent appends
// share Raft batches and so fsyncs, which appends/fsync shows.
func BenchmarkShardAppend(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("entry=%dKiB/goroutines=%d", size>>10, writers), func(b *testing.B) {
				s := openDefaultShard(b)
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
					if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
						b.Error(err)
						return
					}
					for next := int64(0); pb.Next(); next++ {
						record.SetBaseOffset(e, next)
						if _, err := s.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}}); err != nil {
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

// BenchmarkShardRead reads a segment of 64 MiB back from a shard on disk,
// 1 MiB per Read (as a broker catching up does), after appending it in
// appends of 16 entries (a broker's group of waiting batches): entries of
// 1 KiB and 64 KiB. Every entry read is CRC-checked and copied out.
//
//	go test -run '^$' -bench BenchmarkShardRead -benchmem ./bookie/
func BenchmarkShardRead(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("entry=%dKiB", size>>10), func(b *testing.B) {
			s := openDefaultShard(b)
			if err := s.CreateSegment(ctx, 1, 0, 1); err != nil {
				b.Fatal(err)
			}
			const perAppend = 16
			n := (64 << 20) / size
			var next int64
			for next < int64(n) {
				entries := make([][]byte, perAppend)
				for i := range entries {
					entries[i] = entryOf(b, size)
					record.SetBaseOffset(entries[i], next+int64(i))
				}
				var err error
				if next, err = s.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: entries}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(entryOf(b, size))) * next)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for from := int64(0); from < next; {
					es, err := s.Read(ctx, 1, from, 1<<20)
					if err != nil {
						b.Fatal(err)
					}
					from = es[len(es)-1].LastOffset + 1
				}
			}
		})
	}
}
