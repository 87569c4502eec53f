package bookie

import (
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/types"
)

// compactChunkBytes bounds the entries log compaction copies into one
// Pebble batch, committed under fsm.mu (appends wait for the commit).
const compactChunkBytes = 4 << 20

// logCompactor keeps the Raft log from growing without bound behind the
// entries it holds. Entries stay in the log segment they were first
// written to (logref.go) until their segment is deleted; a segment kept
// longer pins the log from its oldest referenced entry on, and raft-wal
// truncates only whole files from the head. When the log files that Raft
// asked to truncate but the pins held back pass maxHeld bytes, the
// compactor copies the oldest referenced entries into the state (where they
// are flushed like any other write), until the files held back are at
// most half of maxHeld, and then truncates. So an entry is written once if
// its segment is deleted (offloaded, past retention) within about maxHeld
// bytes of log, and twice otherwise: never more.
type logCompactor struct {
	f   *fsm
	wal *raftwal.WAL
	// raftLog is the log as Raft's LogStore: its truncations stop at the
	// pins and kick the compactor. trunc truncates the same way for the
	// compactor itself, without kicking it again.
	raftLog, trunc walLog
	meta           *walMeta
	maxHeld        int64
	logger         *slog.Logger

	kick chan uint64 // the last index Raft asked to truncate up to
	stop chan struct{}
	done chan struct{}

	// copied counts the entry bytes copied into the state.
	copied atomic.Int64
}

func newLogCompactor(f *fsm, st storage, maxHeld int64, logger *slog.Logger) *logCompactor {
	c := &logCompactor{f: f, wal: st.wal, meta: st.meta, maxHeld: maxHeld, logger: logger,
		kick: make(chan uint64, 1), stop: make(chan struct{}), done: make(chan struct{})}
	c.raftLog, c.trunc = st.log(f.pins, c.heldBack), st.log(f.pins, nil)
	go c.run()
	return c
}

// heldBack is told by walLog.DeleteRange that pins kept it from truncating
// up to requested.
func (c *logCompactor) heldBack(requested uint64) {
	if c.maxHeld < 0 {
		return
	}
	select {
	case c.kick <- requested:
	default: // a round is pending; Raft asks again after its next snapshot
	}
}

func (c *logCompactor) close() {
	close(c.stop)
	<-c.done
}

func (c *logCompactor) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case requested := <-c.kick:
			if err := c.compact(requested); err != nil {
				c.logger.Error("raft log compaction failed; the log stays untruncated until the next attempt", "err", err)
			}
		}
	}
}

// compact copies the entries that hold back more than maxHeld of the log
// truncation Raft asked for (up to requested) into the state, makes the
// copies durable, and truncates.
func (c *logCompactor) compact(requested uint64) error {
	limit := c.limit(requested)
	if limit == 0 {
		return nil
	}
	var entries, bytes int64
	segments := c.f.pins.pinnedBelow(limit)
	slices.Sort(segments)
	for _, seg := range segments {
		for {
			select {
			case <-c.stop:
				return nil
			default:
			}
			n, b, more, err := c.f.inlineRefs(seg, limit)
			entries, bytes = entries+n, bytes+b
			c.copied.Add(b)
			if err != nil {
				return fmt.Errorf("segment %d: %w", seg, err)
			}
			if !more {
				break
			}
		}
	}
	if err := c.f.flush(); err != nil {
		return err
	}
	first, err := c.wal.FirstIndex()
	if err != nil {
		return err
	}
	c.logger.Info("raft log compaction copied entries still in use into the state", "segments", len(segments),
		"entries", entries, "bytes", bytes, "below_index", limit)
	return c.trunc.DeleteRange(first, requested)
}

// limit returns the Raft index below which referenced entries must move to
// the state, or 0 if the log held back is within maxHeld.
func (c *logCompactor) limit(requested uint64) uint64 {
	floor := c.f.pins.floor()
	var held []types.SegmentInfo // the files held back, oldest first
	var heldBytes int64
	for _, s := range c.meta.segments() {
		if s.MaxIndex != 0 && s.MaxIndex >= floor && s.MaxIndex <= requested {
			held = append(held, s)
			heldBytes += int64(s.SizeLimit)
		}
	}
	if heldBytes <= c.maxHeld {
		return 0
	}
	for _, s := range held {
		heldBytes -= int64(s.SizeLimit)
		if heldBytes <= c.maxHeld/2 {
			return s.MaxIndex + 1
		}
	}
	return requested + 1
}

// inlineRefs copies the entries of segment referenced in the log below
// index limit into the state, from the segment's pin on, up to
// compactChunkBytes, and moves the pin past them (or drops it). more
// reports that the segment has more to copy.
//
// The entries are read and copied from a snapshot of the state without
// holding f.mu, so appends go on meanwhile: the references from the pin on
// never change while the pin stands (appends add entries after them), and
// the commit, under f.mu, checks that it still does (the segment was not
// deleted meanwhile).
func (f *fsm) inlineRefs(segment uint64, limit uint64) (entries, bytes int64, more bool, err error) {
	f.mu.Lock()
	f.settle()
	pn, ok := f.pins.get(segment)
	var snap *pebble.Snapshot
	if ok && pn.index < limit {
		snap = f.db.NewSnapshot()
	}
	f.mu.Unlock()
	if snap == nil {
		return 0, 0, false, nil
	}
	defer snap.Close()
	b := f.db.NewBatch()
	defer b.Close()
	next, entries, bytes, err := copyRefs(b, snap, f.wal, segment, pn, limit)
	if err != nil {
		return 0, 0, false, err
	}
	if next != nil {
		err = b.Set(pinKey(segment), appendPin(nil, *next), nil)
	} else {
		err = b.Delete(pinKey(segment), nil)
	}
	if err != nil {
		return 0, 0, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	if cur, ok := f.pins.get(segment); !ok || cur != pn {
		return 0, 0, false, nil // deleted meanwhile
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, 0, false, err
	}
	if next != nil {
		f.pins.set(segment, *next)
		return entries, bytes, next.index < limit, nil
	}
	f.pins.release(segment)
	return entries, bytes, false, nil
}

// copyRefs adds to b the entries of segment, read from r and the log wal,
// that are referenced below index limit, from the pin pn on, up to about
// compactChunkBytes. next is the new pin: the first reference left (nil:
// none).
func copyRefs(b *pebble.Batch, r pebble.Reader, wal logGetter, segment uint64, pn pin, limit uint64) (next *pin, entries, bytes int64, err error) {
	_, hi := entrySpan(segment)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: entryKey(segment, pn.base), UpperBound: hi})
	if err != nil {
		return nil, 0, 0, err
	}
	defer it.Close()
	res := entryResolver{log: wal}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, 0, 0, err
		}
		ref, isRef := parseLogRef(v)
		if !isRef {
			continue
		}
		if ref.index >= limit || bytes >= compactChunkBytes {
			return &pin{index: ref.index, base: entryKeyOffset(it.Key())}, entries, bytes, nil
		}
		e, err := res.resolve(v)
		if err != nil {
			return nil, 0, 0, err
		}
		if err := b.Set(it.Key(), e, nil); err != nil {
			return nil, 0, 0, err
		}
		entries++
		bytes += int64(len(e))
	}
	return nil, entries, bytes, it.Error()
}

// flush makes every change to the state so far durable, and lets go of the
// pins released before it.
func (f *fsm) flush() error {
	f.mu.Lock()
	f.settle()
	token := f.pins.startFlush()
	f.mu.Unlock()
	if err := f.db.Flush(); err != nil {
		return err
	}
	f.pins.flushed(token)
	return nil
}
