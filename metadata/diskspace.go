package metadata

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/diskspace"
)

// ErrDiskFull means the leader refused a write that adds data because its
// disk has less free space than Config.MinFreeBytes. Nothing was written;
// the write may succeed once space is freed. Reads, deletes, lease
// keep-alives and revokes still work.
var ErrDiskFull = errors.New("metadata: disk full")

// DefaultMinFreeBytes is Config.MinFreeBytes's default.
const DefaultMinFreeBytes = 256 << 20

// The service keeps a free space reserve (internal/diskspace): Pebble
// holds its Raft log and state, and a node that crashed on a full disk
// could not even start again (opening writes a new MANIFEST and flushes
// the WAL) until space was freed. Writes that add data (Put, Grant, a Txn
// with a put) check it first and fail with ErrDiskFull below it, leaving
// room for what is already in flight, deletes and revokes (which shrink
// the state once compacted and are how space is given back), Raft's own
// entries, and Pebble's flushes and compactions. Reads and lease
// keep-alives write nothing.

// checkReserve is the reserve's check, with what still works below it.
func checkReserve(r diskspace.Reserve) error {
	if err := r.Check(ErrDiskFull); err != nil {
		return fmt.Errorf("%w (--min-free-bytes); reads, deletes and lease keep-alives still work", err)
	}
	return nil
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
	err := checkReserve(s.disk)
	if err != nil && s.node.State() != raft.Leader {
		return nil
	}
	return err
}
