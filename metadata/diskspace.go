package metadata

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// ErrDiskFull means the leader refused a write that adds data because its
// disk has less free space than Config.MinFreeBytes. Nothing was written;
// the write may succeed once space is freed. Reads, deletes, lease
// keep-alives and revokes still work.
var ErrDiskFull = errors.New("metadata: disk full")

// DefaultMinFreeBytes is Config.MinFreeBytes's default.
const DefaultMinFreeBytes = 256 << 20

// diskGuard refuses new data while the service's disk has less than min
// bytes available. Pebble cannot survive a failed write: a WAL write or
// MANIFEST creation that fails (ENOSPC included) is fatal, which crashes
// the process, and the Raft log lives in that Pebble; a node that crashed
// so could not even start again (opening writes a new MANIFEST and
// flushes the WAL) until space was freed. So a full disk must be avoided,
// not handled: writes that add data (Put, Grant, a Txn with a put) check
// the free space first and fail with ErrDiskFull below the reserve,
// leaving room for what is already in flight, deletes and revokes (which
// shrink the state once compacted and are how space is given back), Raft's
// own entries, and Pebble's flushes and compactions. Reads and lease
// keep-alives write nothing.
type diskGuard struct {
	fs  vfs.FS
	dir string
	min uint64 // 0: no check
}

// check returns ErrDiskFull if the disk is below the reserve. A file
// system that cannot report its usage passes.
func (g diskGuard) check() error {
	if g.min == 0 || g.fs == nil {
		return nil
	}
	u, err := g.fs.GetDiskUsage(g.dir)
	if err != nil || u.AvailBytes >= g.min {
		return nil
	}
	return fmt.Errorf("%w: %d bytes available in %s, under the %d-byte reserve (--min-free-bytes); reads, deletes and lease keep-alives still work", ErrDiskFull, u.AvailBytes, g.dir, g.min)
}

// addsData reports whether the command may grow the state: a put, a
// grant, or a txn with a put in either branch. Deletes and revokes do not.
func (c *command) addsData() bool {
	switch c.op {
	case opPut, opGrant:
		return true
	case opTxn:
		for _, ops := range [][]Op{c.txn.Then, c.txn.Else} {
			for _, o := range ops {
				if o.Type != OpDelete {
					return true
				}
			}
		}
	}
	return false
}

// checkDisk is diskGuard.check for a command on the leader. A follower
// lets the proposal fail with a *NotLeaderError instead, so clients
// follow the leader rather than give up on a cluster whose leader has
// room.
func (s *Service) checkDisk(cmd *command) error {
	if !cmd.addsData() {
		return nil
	}
	err := s.disk.check()
	if err != nil && s.node.State() != raft.Leader {
		return nil
	}
	return err
}
