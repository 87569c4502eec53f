package bookie

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// errRestoreInterrupted means a previous snapshot restore did not finish,
// so the state on disk is a mix of old and new.
var errRestoreInterrupted = errors.New("bookie: a snapshot restore was interrupted; the shard's state is incomplete")

// fsm is a shard's Raft state machine. hashicorp/raft calls ApplyBatch,
// Apply, Snapshot and Restore from one goroutine; log compaction
// (logcompact.go) changes the state too, so each holds mu. applied is
// only changed under mu. FSMSnapshot.Persist runs concurrently with them.
type fsm struct {
	db  *pebble.DB
	log *slog.Logger
	// wal is the Raft log, which appended entries are referenced in
	// (logref.go), and pins what of it they need.
	wal  logGetter
	pins *pinSet
	mu   sync.Mutex
	// applied is the last Raft index applied: its effects are in db, or in
	// the batch being committed (async).
	applied uint64
	// async makes ApplyBatch hand each batch's Pebble commit to a goroutine
	// and return (see ApplyBatch); readers of db call settle first. Off,
	// ApplyBatch commits before it returns.
	async bool
	// committing is closed when the batch last handed off is in db.
	committing struct {
		sync.Mutex
		done chan struct{}
	}
}

var _ raft.BatchingFSM = (*fsm)(nil)

// newFSM loads the state machine's applied index and log pins from db;
// wal is the Raft log.
func newFSM(db *pebble.DB, wal logGetter, log *slog.Logger) (*fsm, error) {
	if _, closer, err := db.Get(keyRestoring); err == nil {
		closer.Close()
		return nil, errRestoreInterrupted
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	f := &fsm{db: db, log: log, wal: wal, pins: newPinSet()}
	if err := f.loadPins(); err != nil {
		return nil, err
	}
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
//
// The commands are checked and their responses computed against the state
// first, their writes collected (segment metadata, and for appends
// references to the entries in the log, not the entries: see doc.go,
// "Entries are written once"); then the writes are committed as one
// batch. With async set, that commit runs on a goroutine of its own and ApplyBatch
// returns at once, so Raft answers the appends and stores its next batch
// meanwhile: the commit was on the path of every append. What the change
// of order has to keep:
//   - the next ApplyBatch reads the state this one wrote (segment
//     metadata): it waits for this commit first (settle). The commit takes
//     less time than the fsync of Raft's next batch, so it rarely waits.
//   - a read served after an append is acknowledged sees it: the shard's
//     readers call settle before reading db; so do Snapshot and Restore,
//     and Close (settle) before the state is flushed and closed.
//   - durability is unchanged: an acknowledged append is in Raft's log on
//     disk; the state reaches the disk only on a flush, after its commit,
//     as before, and a crash replays the log past the applied index
//     stored with it.
//   - a failed commit panics, as it did: the state machine cannot go on
//     without its writes.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	resp := make([]any, len(logs))
	a := applier{f: f, metas: make(map[uint64]metaState)}
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
		resp[i] = a.apply(c, l.Index)
	}
	if last == f.applied {
		return resp
	}
	a.set(keyApplied, binary.BigEndian.AppendUint64(nil, last))
	f.applied = last
	if !f.async {
		f.commit(a.writes, last)
		return resp
	}
	done := make(chan struct{})
	f.committing.Lock()
	f.committing.done = done
	f.committing.Unlock()
	go func() {
		defer close(done)
		f.commit(a.writes, last)
	}()
	return resp
}

// settle waits until the batch last handed to a goroutine by ApplyBatch is
// committed to db (a commit takes about a millisecond at most).
func (f *fsm) settle() {
	f.committing.Lock()
	done := f.committing.done
	f.committing.Unlock()
	if done != nil {
		<-done
	}
}

// write is one change of an apply batch.
type write struct {
	op   byte // 's': set, 'd': delete, 'r': delete range [key, value)
	k, v []byte
}

// commit writes one apply batch to db, whose last Raft index is last.
func (f *fsm) commit(writes []write, last uint64) {
	// Size the batch up front: growing it copies what it holds again.
	size := 64
	for _, w := range writes {
		size += len(w.k) + len(w.v) + 16
	}
	b := f.db.NewBatchWithSize(size)
	defer b.Close()
	for _, w := range writes {
		var err error
		switch w.op {
		case 's':
			err = b.Set(w.k, w.v, nil)
		case 'd':
			err = b.Delete(w.k, nil)
		case 'r':
			err = b.DeleteRange(w.k, w.v, nil)
		}
		if err != nil {
			panic(fmt.Sprintf("bookie: building apply batch: %v", err))
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		// The state machine cannot go on without its writes: Raft would
		// believe them applied. Pebble fails only when the disk does.
		panic(fmt.Sprintf("bookie: committing applied state at index %d: %v", last, err))
	}
	f.pins.committed()
}

// metaState is a segment's metadata as of the commands applied so far in
// the current batch; exists is false for a segment deleted in it.
type metaState struct {
	info   SegmentInfo
	exists bool
}

// applier applies the commands of one Raft batch, collecting their writes.
// Commands later in the batch see the metadata written by earlier ones
// through metas.
type applier struct {
	f      *fsm
	writes []write
	metas  map[uint64]metaState
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

func (a *applier) set(k, v []byte) { a.writes = append(a.writes, write{'s', k, v}) }

// setRefs stores the entries of c, an append at Raft index index, as
// references into the log (logref.go), and pins the log for the segment
// unless it is pinned already.
func (a *applier) setRefs(c command, index uint64) {
	refs := make([]byte, 0, logRefSize*len(c.entries))
	for i, e := range c.entries {
		h, _ := record.ParseHeader(e)
		refs = logRef{index: index, offset: uint32(c.at[i]), length: uint32(len(e))}.append(refs)
		a.set(entryKey(c.segment, h.BaseOffset), refs[len(refs)-logRefSize:])
		if i > 0 {
			continue
		}
		if _, ok := a.f.pins.get(c.segment); !ok {
			pn := pin{index: index, base: h.BaseOffset}
			a.f.pins.set(c.segment, pn)
			a.set(pinKey(c.segment), appendPin(nil, pn))
		}
	}
}

// apply applies c, the command at Raft index index.
func (a *applier) apply(c command, index uint64) any {
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
		a.setRefs(c, index)
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
		a.writes = append(a.writes, write{'d', metaKey(c.segment), nil})
		start, end := entrySpan(c.segment)
		a.writes = append(a.writes, write{'r', start, end}, write{'d', pinKey(c.segment), nil})
		a.f.pins.releaseUncommitted(c.segment)
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

// loadPins reads the log pins stored in the state.
func (f *fsm) loadPins() error {
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: prefixPin, UpperBound: endPin})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		pn, err := decodePin(v)
		if err != nil || len(it.Key()) != len(prefixPin)+8 {
			return fmt.Errorf("%w: log pin %q: %v", ErrCorrupt, it.Key(), err)
		}
		f.pins.set(binary.BigEndian.Uint64(it.Key()[len(prefixPin):]), pn)
	}
	return it.Error()
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
