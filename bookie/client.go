package bookie

import (
	"context"
	"errors"
)

// Sentinel errors returned by every Client implementation.
var (
	// ErrSegmentNotFound means the segment does not exist on the shard.
	ErrSegmentNotFound = errors.New("bookie: segment not found")
	// ErrSegmentExists means CreateSegment named a segment that already exists.
	ErrSegmentExists = errors.New("bookie: segment already exists")
	// ErrSegmentSealed means an append reached a sealed segment.
	ErrSegmentSealed = errors.New("bookie: segment sealed")
	// ErrFenced means the writer's epoch is older than the segment's: another
	// writer has taken over.
	ErrFenced = errors.New("bookie: writer fenced")
	// ErrBadOffset means an entry's base offset is not the segment's next
	// offset: offsets within a segment are dense and gap-free.
	ErrBadOffset = errors.New("bookie: entry offset is not the next offset")
	// ErrCorrupt means an entry failed its checksum or could not be parsed.
	ErrCorrupt = errors.New("bookie: corrupt entry")
	// ErrClosed means the client or shard has been closed.
	ErrClosed = errors.New("bookie: closed")
	// ErrNotLeader means the replica asked is not its shard's Raft leader,
	// so it cannot take a write or serve a linearizable read; the call was
	// not executed. It comes wrapped in a *NotLeaderError naming the leader.
	ErrNotLeader = errors.New("bookie: not leader")
	// ErrDiskFull means the replica refused an append or a segment creation
	// because its disk has less free space than ShardConfig.MinFreeBytes;
	// nothing was written. Reads, seals and deletes still work.
	ErrDiskFull = errors.New("bookie: disk full")
	// ErrTimeout means a replica did not answer a call within its
	// deadline (ClientConfig): it is paused, overloaded or cut off. A
	// write that timed out comes wrapped in ErrUnknownOutcome.
	ErrTimeout = errors.New("bookie: replica did not answer in time")
	// ErrUnknownShard means the bookie asked hosts no replica of the shard
	// named, or no shard of that ID is registered.
	ErrUnknownShard = errors.New("bookie: unknown shard")
)

// SegmentState is where a segment is in its lifecycle.
type SegmentState int

const (
	// SegmentOpen accepts appends from the writer holding its epoch.
	SegmentOpen SegmentState = iota + 1
	// SegmentSealed is immutable; its end offset is final.
	SegmentSealed
)

func (s SegmentState) String() string {
	switch s {
	case SegmentOpen:
		return "open"
	case SegmentSealed:
		return "sealed"
	default:
		return "unknown"
	}
}

// SegmentInfo describes one segment on a shard.
type SegmentInfo struct {
	ID    uint64
	State SegmentState
	// Epoch is the writer epoch the segment was created or sealed with.
	Epoch uint64
	// StartOffset is the offset of the segment's first record.
	StartOffset int64
	// NextOffset is one past the last record stored: the base offset the
	// next append must carry. For a sealed segment it is the end offset.
	NextOffset int64
	// Bytes is the total size of the entries stored.
	Bytes int64
}

// AppendRequest appends entries to an open segment.
type AppendRequest struct {
	Segment uint64
	Epoch   uint64
	// Entries are Kafka RecordBatch v2 bytes whose base offsets are already
	// set; the first must start at the segment's next offset and each next
	// one right after the previous one's last offset.
	Entries [][]byte
}

// Entry is one stored record batch.
type Entry struct {
	// BaseOffset and LastOffset are the first and last offsets it holds.
	BaseOffset int64
	LastOffset int64
	// Data is the RecordBatch v2 bytes as stored. Callers must not modify it.
	Data []byte
}

// Client is how brokers talk to the segment store. Every call is
// linearizable on the shard: an append acknowledged before a seal is in the
// sealed segment; an append after it fails.
type Client interface {
	// CreateSegment creates an open segment starting at startOffset, owned by
	// the writer with the given epoch.
	CreateSegment(ctx context.Context, segment uint64, startOffset int64, epoch uint64) error
	// Append stores the entries once they are durable on the shard and
	// returns the segment's new next offset. It fails with ErrFenced if the
	// segment carries a newer epoch, ErrSegmentSealed if it is sealed, and
	// ErrBadOffset if the entries do not continue the segment densely.
	Append(ctx context.Context, req AppendRequest) (nextOffset int64, err error)
	// Seal makes the segment immutable at its last committed entry and
	// returns its final state. Sealing raises the segment's epoch to epoch
	// (if higher), so later appends from older writers fail. Sealing a
	// segment that does not exist records it as an empty sealed segment at
	// startOffset, so a writer that never managed to create it cannot
	// create it later. Sealing a sealed segment returns its state.
	Seal(ctx context.Context, segment uint64, epoch uint64, startOffset int64) (SegmentInfo, error)
	// Read returns entries of the segment holding fromOffset and after it,
	// up to about maxBytes (at least one entry if any exists). The first
	// entry may start before fromOffset when fromOffset is inside a batch.
	// An empty result means no entry at or after fromOffset exists yet.
	Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error)
	// Info returns the segment's state.
	Info(ctx context.Context, segment uint64) (SegmentInfo, error)
	// DeleteSegment removes the segment and its entries.
	DeleteSegment(ctx context.Context, segment uint64) error
	// ListSegments returns the segments whose ID is above after, in ID
	// order, at most limit of them (0 or less, or above MaxListSegments:
	// MaxListSegments). A page shorter than asked is the last.
	ListSegments(ctx context.Context, after uint64, limit int) ([]SegmentInfo, error)
}
