package bookie

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// DefaultMinFreeBytes is ShardConfig.MinFreeBytes's default.
const DefaultMinFreeBytes = 256 << 20

// diskGuard refuses new data while the shard's disk has less than min
// bytes available. Pebble cannot survive a failed write: its commit
// pipeline calls Fatalf on a WAL write error (ENOSPC included), which
// crashes the process, and Raft's log lives in that Pebble. So a full
// disk must be avoided, not handled: Append and CreateSegment check the
// free space first and fail with ErrDiskFull below the reserve, leaving
// room for what is already in flight, Raft's own entries, seals, deletes
// (which free space) and Pebble's flushes and compactions. Reads never
// check.
type diskGuard struct {
	fs  vfs.FS
	dir string
	min uint64 // 0: no check
}

// check returns ErrDiskFull if the disk is below the reserve. A file
// system that cannot report its usage (an in-memory one) passes.
func (g diskGuard) check() error {
	if g.min == 0 || g.fs == nil {
		return nil
	}
	u, err := g.fs.GetDiskUsage(g.dir)
	if err != nil || u.AvailBytes >= g.min {
		return nil
	}
	return fmt.Errorf("%w: %d bytes available in %s, under the %d-byte reserve", ErrDiskFull, u.AvailBytes, g.dir, g.min)
}

// checkDisk is diskGuard.check on the leader. A follower lets the
// proposal fail with a *NotLeaderError instead, so clients follow the
// leader rather than give up on a shard whose leader has room.
func (s *Shard) checkDisk() error {
	err := s.disk.check()
	if err != nil && s.node.State() != raft.Leader {
		return nil
	}
	return err
}
