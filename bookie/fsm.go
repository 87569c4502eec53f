package bookie

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// errRestoreInterrupted means a previous snapshot restore did not finish,
// so the state on disk is a mix of old and new.
var errRestoreInterrupted = errors.New("bookie: a snapshot restore was interrupted; the shard's state is incomplete")

// fsm is a shard's Raft state machine. hashicorp/raft calls ApplyBatch,
// Apply, Snapshot and Restore from one goroutine, so applied needs no lock;
// FSMSnapshot.Persist runs concurrently with them on a Pebble snapshot.
type fsm struct {
	db  *pebble.DB
	log *slog.Logger
	// applied is the last Raft index whose effects are in db.
	applied uint64
}

var _ raft.BatchingFSM = (*fsm)(nil)

// newFSM loads the state machine's applied index from db.
func newFSM(db *pebble.DB, log *slog.Logger) (*fsm, error) {
	if _, closer, err := db.Get(keyRestoring); err == nil {
		closer.Close()
		return nil, errRestoreInterrupted
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	f := &fsm{db: db, log: log}
	v, closer, err := db.Get(keyApplied)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		defer closer.Close()
		if len(v) != 8 {
			return nil, fmt.Errorf("%w: applied index is %d bytes", ErrCorrupt, len(v))
		}
		f.applied = binary.BigEndian.Uint64(v)
	}
	return f, nil
}

// Apply applies one committed log entry.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed log entries in one Pebble batch, together
// with the new applied index, committed to the state database, which has
// no WAL: the Raft log already holds the entries durably and is replayed
// after a crash over whatever prefix of batches had been flushed. Entries at or
// below the stored applied index were applied before a restart and are
// skipped. Each response is the command's result: an error, the segment's
// next offset (append) or its SegmentInfo (seal).
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	// Size the batch for the entries up front: growing it copies them
	// again and again (64 KiB entries, ten to a batch).
	size := 0
	for _, l := range logs {
		size += len(l.Data)
	}
	a := applier{f: f, b: f.db.NewBatchWithSize(size + 1024), metas: make(map[uint64]metaState)}
	defer a.b.Close()
	last := f.applied
	for i, l := range logs {
		if l.Index <= f.applied {
			continue
		}
		last = max(last, l.Index)
		if l.Type != raft.LogCommand {
			continue
		}
		c, err := decodeCommand(l.Data)
		if err != nil {
			f.log.Error("skipping malformed command", "index", l.Index, "err", err)
			resp[i] = err
			continue
		}
		resp[i] = a.apply(c)
	}
	if last == f.applied {
		return resp
	}
	if err := a.b.Set(keyApplied, binary.BigEndian.AppendUint64(nil, last), nil); err != nil {
		panic(fmt.Sprintf("bookie: building apply batch: %v", err))
	}
	if err := a.b.Commit(pebble.NoSync); err != nil {
		// The state machine cannot go on without its writes: Raft would
		// believe them applied. Pebble fails only when the disk does.
		panic(fmt.Sprintf("bookie: committing applied state at index %d: %v", last, err))
	}
	f.applied = last
	return resp
}

// metaState is a segment's metadata as of the commands applied so far in
// the current batch; exists is false for a segment deleted in it.
type metaState struct {
	info   SegmentInfo
	exists bool
}

// applier applies the commands of one Raft batch. Commands later in the
// batch see the metadata written by earlier ones through metas.
type applier struct {
	f     *fsm
	b     *pebble.Batch
	metas map[uint64]metaState
}

func (a *applier) meta(segment uint64) (SegmentInfo, bool, error) {
	if m, ok := a.metas[segment]; ok {
		return m.info, m.exists, nil
	}
	info, ok, err := getMeta(a.f.db, segment)
	if err == nil {
		a.metas[segment] = metaState{info, ok}
	}
	return info, ok, err
}

func (a *applier) putMeta(info SegmentInfo) {
	a.metas[info.ID] = metaState{info, true}
	a.set(metaKey(info.ID), appendMeta(nil, info))
}

func (a *applier) set(k, v []byte) {
	if err := a.b.Set(k, v, nil); err != nil {
		panic(fmt.Sprintf("bookie: building apply batch: %v", err))
	}
}

func (a *applier) apply(c command) any {
	info, exists, err := a.meta(c.segment)
	if err != nil {
		return err
	}
	switch c.op {
	case opCreate:
		if exists {
			return fmt.Errorf("%w: segment %d", ErrSegmentExists, c.segment)
		}
		if c.start < 0 {
			return fmt.Errorf("%w: negative start offset %d", ErrBadOffset, c.start)
		}
		a.putMeta(SegmentInfo{ID: c.segment, State: SegmentOpen, Epoch: c.epoch, StartOffset: c.start, NextOffset: c.start})
		return nil

	case opAppend:
		if !exists {
			return fmt.Errorf("%w: segment %d", ErrSegmentNotFound, c.segment)
		}
		if c.epoch < info.Epoch {
			return fmt.Errorf("%w: segment %d has epoch %d, writer %d", ErrFenced, c.segment, info.Epoch, c.epoch)
		}
		if info.State == SegmentSealed {
			return fmt.Errorf("%w: segment %d", ErrSegmentSealed, c.segment)
		}
		next, size, err := checkEntries(info.NextOffset, c.entries, false)
		if err != nil {
			return fmt.Errorf("segment %d: %w", c.segment, err)
		}
		for _, e := range c.entries {
			h, _ := record.ParseHeader(e)
			a.set(entryKey(c.segment, h.BaseOffset), e)
		}
		// A newer writer appending fences older ones.
		info.Epoch = max(info.Epoch, c.epoch)
		info.NextOffset = next
		info.Bytes += size
		a.putMeta(info)
		return next

	case opSeal:
		if !exists {
			if c.start < 0 {
				return fmt.Errorf("%w: negative start offset %d", ErrBadOffset, c.start)
			}
			info = SegmentInfo{ID: c.segment, State: SegmentSealed, Epoch: c.epoch, StartOffset: c.start, NextOffset: c.start}
			a.putMeta(info)
			return info
		}
		if info.State == SegmentOpen && c.epoch < info.Epoch {
			return fmt.Errorf("%w: segment %d has epoch %d, sealer %d", ErrFenced, c.segment, info.Epoch, c.epoch)
		}
		if info.State == SegmentSealed && c.epoch <= info.Epoch {
			return info
		}
		info.State = SegmentSealed
		info.Epoch = max(info.Epoch, c.epoch)
		a.putMeta(info)
		return info

	case opDelete:
		if !exists {
			return fmt.Errorf("%w: segment %d", ErrSegmentNotFound, c.segment)
		}
		a.metas[c.segment] = metaState{}
		if err := a.b.Delete(metaKey(c.segment), nil); err != nil {
			panic(fmt.Sprintf("bookie: building apply batch: %v", err))
		}
		start, end := entrySpan(c.segment)
		if err := a.b.DeleteRange(start, end, nil); err != nil {
			panic(fmt.Sprintf("bookie: building apply batch: %v", err))
		}
		return nil
	}
	return fmt.Errorf("%w: unknown op %d", errBadCommand, byte(c.op))
}

// checkEntries checks that entries are record batches continuing a segment
// whose next offset is next, densely, and returns the new next offset and
// the entries' total size. It verifies CRCs only if verifyCRC is set: Append
// checks them before proposing, so the state machine, which applies
// commands one at a time, need not do it again.
func checkEntries(next int64, entries [][]byte, verifyCRC bool) (newNext, size int64, err error) {
	for i, e := range entries {
		var h record.BatchHeader
		if verifyCRC {
			h, err = record.VerifyCRC(e)
		} else {
			h, err = record.ParseHeader(e)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
		}
		if h.Size() != len(e) {
			return 0, 0, fmt.Errorf("%w: entry %d is %d bytes, its batch %d", ErrCorrupt, i, len(e), h.Size())
		}
		if h.BaseOffset != next {
			return 0, 0, fmt.Errorf("%w: entry %d starts at %d, next offset is %d", ErrBadOffset, i, h.BaseOffset, next)
		}
		next = h.NextOffset()
		size += int64(len(e))
	}
	return next, size, nil
}

// getMeta reads a segment's metadata from r.
func getMeta(r pebble.Reader, segment uint64) (SegmentInfo, bool, error) {
	v, closer, err := r.Get(metaKey(segment))
	if errors.Is(err, pebble.ErrNotFound) {
		return SegmentInfo{}, false, nil
	}
	if err != nil {
		return SegmentInfo{}, false, err
	}
	defer closer.Close()
	info, err := decodeMeta(segment, v)
	return info, err == nil, err
}
