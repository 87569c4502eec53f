package bookie

import (
	"context"

	"github.com/cockroachdb/pebble/v2/vfs"
	dto "github.com/prometheus/client_model/go"
)

// OpenShardFS opens a shard whose Pebble databases live on fs.
func OpenShardFS(ctx context.Context, cfg ShardConfig, fs vfs.FS) (*Shard, error) {
	return openShard(ctx, cfg, fs)
}

// RaftLastIndex is the index of the shard's last Raft log entry.
func (s *Shard) RaftLastIndex() uint64 { return s.node.Raft().LastIndex() }

// WALSyncs is the number of fsyncs of the Raft log's Pebble WAL so far.
func (s *Shard) WALSyncs() uint64 {
	var m dto.Metric
	if err := s.logDB.Metrics().LogWriter.FsyncLatency.Write(&m); err != nil {
		panic(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// Snapshot makes Raft take a snapshot now (and truncate its log).
func (s *Shard) Snapshot() error { return s.node.Raft().Snapshot().Error() }
