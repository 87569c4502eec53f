package broker

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// Delayed delivery keeps no message in memory and needs no store of its
// own: a delayed message is an unacknowledged message in the log, so the
// durable cursor already keeps it through restarts, and a new dispatcher
// finds it again by reading from the cursor. What lives in memory is an
// index of (time, offset) timers — bounded:
//
// The index holds the delayed messages due before a horizon (none at
// first). When it outgrows maxDelayedIndex, the horizon moves down to the
// median time of what it holds and every entry at or after it is dropped,
// remembering the lowest offset dropped (rescanFrom). Delayed messages read
// later that are due at or after the horizon are not indexed either. When
// the index has drained to a quarter, or time nears the horizon, the
// dispatcher reads the log again from rescanFrom, a chunk per claim, and
// indexes what is due at or after the old horizon, raising it. So memory is
// bounded by maxDelayedIndex entries whatever the number of delayed
// messages, and the price of millions of them is re-reading the log
// between their offsets, not holding them.

// maxDelayedIndex bounds the delayed-delivery entries a dispatcher keeps in
// memory (a variable so tests can shrink it).
var maxDelayedIndex = 200_000

// rescanLead is how long before the horizon a rescan starts, so messages
// due just after it are indexed in time.
const rescanLead = 2 * time.Second

// delayIndex is the bounded delayed-delivery state of a dispatcher.
type delayIndex struct {
	horizon    time.Time // messages due at or after it are not indexed; zero: no limit
	rescanFrom int64     // lowest offset of a delayed message not indexed; -1: none
	// A rescan in progress: it indexes what is due in [horizon, next),
	// from pos up to the dispatch position.
	rescanning bool
	pos        int64
	next       time.Time // zero: no limit
	nextFrom   int64     // what the rescan leaves unindexed
}

func newDelayIndex() delayIndex { return delayIndex{rescanFrom: -1, nextFrom: -1} }

// indexedBy reports whether a message due at is indexed under horizon h.
func indexedBy(h, at time.Time) bool { return h.IsZero() || at.Before(h) }

// limit is the horizon for messages read past the dispatch position: during
// a rescan that has lowered its target, the lower of the two.
func (di *delayIndex) limit() time.Time {
	if di.rescanning && !di.next.IsZero() && (di.horizon.IsZero() || di.next.Before(di.horizon)) {
		return di.next
	}
	return di.horizon
}

// addDelayedLocked indexes a delayed message read past the dispatch
// position, or notes that the rescan must find it.
func (d *dispatcher) addDelayedLocked(off int64, at time.Time, hash uint32) {
	if !indexedBy(d.delay.limit(), at) {
		// A rescan in progress reaches it: it chases the dispatch position.
		if !d.delay.rescanning {
			d.delay.rescanFrom = minOffset(d.delay.rescanFrom, off)
		}
		return
	}
	d.pushDelayedLocked(off, at, hash)
}

func (d *dispatcher) pushDelayedLocked(off int64, at time.Time, hash uint32) {
	d.timers.push(timer{at: at, kind: timerDelayed, off: off, hash: hash})
	d.delayed++
	if d.delayed > maxDelayedIndex {
		d.shrinkDelayedLocked()
	}
}

// shrinkDelayedLocked halves the index: the horizon (or, during a rescan,
// its target) moves to the median due time, and later entries are dropped.
func (d *dispatcher) shrinkDelayedLocked() {
	times := make([]time.Time, 0, d.delayed)
	for _, t := range d.timers {
		if t.kind == timerDelayed {
			times = append(times, t.at)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	cut := times[len(times)/2]
	if !cut.After(times[0]) {
		cut = times[0].Add(time.Millisecond) // all equal: keep the earliest
	}
	lowest := int64(-1)
	kept := d.timers[:0]
	for _, t := range d.timers {
		if t.kind == timerDelayed && !t.at.Before(cut) {
			d.delayed--
			if lowest < 0 || t.off < lowest {
				lowest = t.off
			}
			continue
		}
		kept = append(kept, t)
	}
	clear(d.timers[len(kept):])
	d.timers = kept
	heap.Init(&d.timers)
	di := &d.delay
	if di.rescanning {
		di.next = cut
		di.nextFrom = minOffset(di.nextFrom, lowest)
		return
	}
	di.horizon = cut
	di.rescanFrom = minOffset(di.rescanFrom, lowest)
}

func minOffset(a, b int64) int64 {
	if a < 0 || (b >= 0 && b < a) {
		return b
	}
	return a
}

// rescanDueLocked reports whether a rescan should start, and when one
// will be due otherwise (zero: never).
func (d *dispatcher) rescanDueLocked(now time.Time) (bool, time.Time) {
	di := &d.delay
	if di.rescanning {
		return true, time.Time{}
	}
	if di.rescanFrom < 0 {
		return false, time.Time{}
	}
	at := di.horizon.Add(-rescanLead)
	return d.delayed <= maxDelayedIndex/4 || !now.Before(at), at
}

// rescanDelayed runs one chunk of a due rescan (dispatchMu held).
func (s *subscription) rescanDelayed(ctx context.Context, d *dispatcher, now time.Time) error {
	s.mu.Lock()
	due, _ := d.rescanDueLocked(now)
	di := &d.delay
	if !due || s.mu.disp != d {
		s.mu.Unlock()
		return nil
	}
	if !di.rescanning {
		di.rescanning, di.pos, di.next, di.nextFrom = true, max(di.rescanFrom, s.mu.next), time.Time{}, -1
	}
	from := di.pos
	s.mu.Unlock()

	entries, err := s.p.read(ctx, from, maxReadBytes)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.disp != d {
		return nil
	}
	for _, e := range entries {
		if e.LastOffset < di.pos || e.BaseOffset >= d.readPos {
			continue
		}
		h, err := record.ParseHeader(e.Data)
		if err != nil {
			return err
		}
		if h.IsControl() {
			di.pos = e.LastOffset + 1
			continue
		}
		err = record.DecodeRecords(e.Data, func(r record.Record) error {
			if r.Offset < di.pos || r.Offset >= d.readPos {
				return nil
			}
			di.pos = r.Offset + 1
			ms := DeliverAt(r)
			if ms == 0 || r.Offset < s.mu.next || s.mu.acks.has(r.Offset) {
				return nil
			}
			at := time.UnixMilli(ms)
			if indexedBy(di.horizon, at) {
				return nil // indexed before, or delivered already
			}
			if !indexedBy(di.next, at) {
				di.nextFrom = minOffset(di.nextFrom, r.Offset)
				return nil
			}
			hash := noKeyHash
			if d.keys != nil {
				hash = keyHash(r.Key)
			}
			d.pushDelayedLocked(r.Offset, at, hash)
			return nil
		})
		if err != nil {
			return fmt.Errorf("broker: decoding batch at offset %d: %w", e.BaseOffset, err)
		}
	}
	if di.pos >= d.readPos || len(entries) == 0 {
		// Caught up with the dispatch position: the new horizon holds.
		di.rescanning, di.horizon, di.rescanFrom = false, di.next, di.nextFrom
	}
	return nil
}
