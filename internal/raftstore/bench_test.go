package raftstore

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// BenchmarkStoreLogsSynced measures StoreLogs on a real directory, where every
// call is one fsync'd Pebble batch: batches of 1, 16 and 128 1-KiB entries.
func BenchmarkStoreLogsSynced(b *testing.B) {
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s, err := New(db, []byte("raft/"))
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 1024)
			logs := make([]*raft.Log, n)
			for i := range logs {
				logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data}
			}
			b.SetBytes(int64(n * len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			var next uint64 = 1
			for b.Loop() {
				for _, l := range logs {
					l.Index = next
					next++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "logs/s")
		})
	}
}
