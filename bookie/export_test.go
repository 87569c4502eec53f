package bookie

import (
	"context"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// OpenShardFS opens a shard whose storage (Raft log and state) lives on fs.
func OpenShardFS(ctx context.Context, cfg ShardConfig, fs vfs.FS) (*Shard, error) {
	return openShard(ctx, cfg, fs)
}

// RaftLastIndex is the index of the shard's last Raft log entry.
func (s *Shard) RaftLastIndex() uint64 { return s.node.Raft().LastIndex() }

// WALSyncs is the number of fsyncs of the Raft log's segment files so far.
func (s *Shard) WALSyncs() uint64 { return s.store.walSyncs.Load() }

// Snapshot makes Raft take a snapshot now (and truncate its log).
func (s *Shard) Snapshot() error { return s.node.Raft().Snapshot().Error() }

// InflightStats returns the most bytes of appends ever in flight and how
// many appends waited for room.
func (s *Shard) InflightStats() (peak, waits int64) {
	return s.inflight.peak.Load(), s.inflight.waits.Load()
}

// RaftFirstIndex is the index of the shard's first Raft log entry.
func (s *Shard) RaftFirstIndex() (uint64, error) { return s.store.wal.FirstIndex() }
