package bookie

import "github.com/hashicorp/raft"

// DefaultMinFreeBytes is ShardConfig.MinFreeBytes's default.
const DefaultMinFreeBytes = 256 << 20

// checkDisk checks the shard's free space reserve (internal/diskspace) on
// the leader: Append and CreateSegment fail with ErrDiskFull below it,
// leaving room for what is already in flight, Raft's own entries, seals,
// deletes (which free space) and Pebble's flushes and compactions; reads
// never check. A follower lets the
// proposal fail with a *NotLeaderError instead, so clients follow the
// leader rather than give up on a shard whose leader has room.
func (s *Shard) checkDisk() error {
	err := s.disk.Check(ErrDiskFull)
	if err != nil && s.node.State() != raft.Leader {
		return nil
	}
	return err
}
