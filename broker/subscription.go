package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// InitialPosition is where a new subscription starts.
type InitialPosition int

const (
	// Latest starts after the last message (Pulsar's default).
	Latest InitialPosition = iota
	// Earliest starts at the first retained message.
	Earliest
)

// subscription is a cursor on one partition and its consumers. The cursor
// is the next offset (everything below it is acknowledged) plus the ranges
// acknowledged individually above it; a durable one is persisted in
// batches, so a crash may redeliver but never lose.
type subscription struct {
	p          *partition
	name       string
	cn         catalog.CursorName
	nonDurable bool // a Reader's: never persisted, dropped with its last consumer

	flushMu    sync.Mutex // serialises flushes so an older state never overwrites a newer one
	dispatchMu sync.Mutex // one consumer claims messages at a time (dispatch.go)

	mu struct {
		sync.Mutex
		next    int64
		acks    ackSet // acknowledged individually, all above next
		epoch   int64  // of the persisted acks (catalogpb.Cursor.acks_epoch); 0: none yet
		meta    string // the last Kafka commit's metadata
		dirty   bool
		deleted bool        // removed from the partition: never flushed again
		disp    *dispatcher // while consumers are attached
		// Times each unacknowledged offset was nacked or timed out; it
		// outlives the dispatcher, so a consumer that keeps failing a
		// message and reconnecting still counts up.
		redeliveries map[int64]uint32
	}
}

// subscription returns the partition's subscription, loading it from the
// metadata store or, if it does not exist, creating it at the offset start
// returns. A non-durable one is only created, never loaded.
func (p *partition) subscription(ctx context.Context, name string, nonDurable bool, start func(context.Context) (int64, error)) (*subscription, error) {
	p.mu.Lock()
	if s, ok := p.mu.subs[name]; ok {
		p.mu.Unlock()
		if s.nonDurable != nonDurable {
			return nil, fmt.Errorf("%w: subscription %s exists and is %s", ErrInvalidArgument, QuoteName(name), durability(s.nonDurable))
		}
		return s, nil
	}
	p.mu.Unlock()

	s := &subscription{p: p, name: name, cn: catalog.CursorName{Partition: p.pname, Subscription: name}, nonDurable: nonDurable}
	e, ok, err := p.b.cat.Cursors.Get(ctx, s.cn)
	if err != nil {
		return nil, wrapMeta("load cursor", err)
	}
	switch {
	case ok && nonDurable:
		return nil, fmt.Errorf("%w: subscription %s exists and is durable", ErrInvalidArgument, QuoteName(name))
	case ok:
		if err := s.loadLocked(ctx, e.Value); err != nil {
			return nil, err
		}
	default:
		// A new cursor: its name ends its metadata key (names.go). A
		// stored one is loaded whatever its name.
		if err := p.b.CheckName(SubscriptionName, name); err != nil {
			return nil, err
		}
		if s.mu.next, err = start(ctx); err != nil {
			return nil, err
		}
		s.mu.dirty = true
		if err := s.flush(ctx); err != nil {
			return nil, err
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if existing, ok := p.mu.subs[name]; ok {
		if existing.nonDurable != nonDurable {
			return nil, fmt.Errorf("%w: subscription %s exists and is %s", ErrInvalidArgument, QuoteName(name), durability(existing.nonDurable))
		}
		return existing, nil // lost a race with another loader
	}
	p.mu.subs[name] = s
	return s, nil
}

func durability(nonDurable bool) string {
	if nonDurable {
		return "non-durable"
	}
	return "durable"
}

// at returns a start function for a fixed initial position.
func (p *partition) at(pos InitialPosition) func(context.Context) (int64, error) {
	return func(context.Context) (int64, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if pos == Earliest {
			return p.startOffsetLocked(), nil
		}
		return p.mu.next, nil
	}
}

// dropIfUnused removes a non-durable subscription once no consumer is
// attached.
func (p *partition) dropIfUnused(s *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.disp == nil && p.mu.subs[s.name] == s {
		delete(p.mu.subs, s.name)
		s.mu.deleted = true
	}
}

// ack records individually acknowledged offsets and moves next past every
// contiguous acknowledged offset. Offsets at or past end, the partition's
// end, were never delivered and are ignored (each would take a bitmap and
// a metadata row).
func (s *subscription) ack(offsets []int64, end int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.mu.disp
	for _, off := range offsets {
		if off >= end {
			continue
		}
		if d != nil {
			if pm, ok := d.pending[off]; ok {
				d.releaseLocked(off, pm)
			}
		}
		if s.mu.redeliveries != nil {
			delete(s.mu.redeliveries, off)
		}
		switch {
		case off < s.mu.next:
			continue
		case off == s.mu.next: // in order: no bitmap needed
			s.mu.next++
		case !s.mu.acks.add(off):
			continue
		}
		s.mu.dirty = true
	}
	if len(s.mu.acks.keys) > 0 {
		s.mu.next = s.mu.acks.firstAbsent(s.mu.next)
		s.mu.acks.dropBelow(s.mu.next)
	}
}

// ackUpTo acknowledges every offset up to and including off.
func (s *subscription) ackUpTo(off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moveCursorLocked(off+1, false)
}

// end is one past the partition's last offset.
func (p *partition) end() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.next
}

// moveCursorLocked sets the cursor to next: with back, everything from
// next on becomes unacknowledged (a seek); else only forward moves count.
// Pending messages below the new cursor are forgotten.
func (s *subscription) moveCursorLocked(next int64, back bool) {
	if !back && next <= s.mu.next {
		return
	}
	if back {
		s.resetAcksLocked()
	} else {
		next = s.mu.acks.firstAbsent(next)
		s.mu.acks.dropBelow(next)
	}
	s.mu.next, s.mu.dirty = next, true
	for off := range s.mu.redeliveries {
		if back || off < next {
			delete(s.mu.redeliveries, off)
		}
	}
	if d := s.mu.disp; d != nil {
		for off, pm := range d.pending {
			if off < next {
				d.releaseLocked(off, pm)
			}
		}
	}
}

func (p *partition) flushCursors(ctx context.Context) error {
	p.mu.Lock()
	subs := make([]*subscription, 0, len(p.mu.subs))
	for _, s := range p.mu.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.flush(ctx))
	}
	return errors.Join(errs...)
}

// backlogLocked counts the unacknowledged messages below end.
func (s *subscription) backlogLocked(end int64) int64 {
	return max(end-s.mu.next-s.mu.acks.countBelow(end), 0)
}

// subscriptionStats reports every subscription of the partition, loading
// the durable ones that are not loaded yet.
func (p *partition) subscriptionStats(ctx context.Context, end int64) ([]SubscriptionStats, error) {
	var names []string
	var page catalog.Page
	for {
		l, err := p.b.cat.Cursors.List(ctx, p.pname, page)
		if err != nil {
			return nil, wrapMeta("list cursors", err)
		}
		for _, e := range l.Entries {
			names = append(names, e.Name.Subscription)
		}
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	out := make([]SubscriptionStats, 0, len(names))
	for _, name := range names {
		s, err := p.subscription(ctx, name, false, p.at(Latest))
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		st := SubscriptionStats{Name: name, Partition: p.index, NextOffset: s.mu.next, Backlog: s.backlogLocked(end)}
		if d := s.mu.disp; d != nil {
			st.Type, st.Consumers, st.Unacked, st.Delayed = d.typ.String(), len(d.consumers), len(d.pending), d.delayed
		}
		s.mu.Unlock()
		out = append(out, st)
	}
	return out, nil
}

// disconnect closes the subscription's consumers, if any, with cause
// (nil: ErrClosed).
func (s *subscription) disconnect(cause error) {
	s.mu.Lock()
	var cs []*Consumer
	if d := s.mu.disp; d != nil {
		cs = slices.Clone(d.consumers)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.close(cause)
	}
}
