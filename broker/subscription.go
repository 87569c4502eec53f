package broker

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// InitialPosition is where a new subscription starts.
type InitialPosition int

const (
	// Latest starts after the last message (Pulsar's default).
	Latest InitialPosition = iota
	// Earliest starts at the first retained message.
	Earliest
)

// subscription is a durable cursor on one partition and its (for now,
// exclusive) consumer. The cursor is the next offset (everything below it
// is acknowledged) plus the ranges acknowledged individually above it; it
// is persisted in batches, so a crash may redeliver but never lose.
type subscription struct {
	p    *partition
	name string
	cn   catalog.CursorName

	flushMu    sync.Mutex // serialises flushes so an older state never overwrites a newer one
	dispatchMu sync.Mutex // Shared: one consumer claims messages at a time (shared.go)

	mu struct {
		sync.Mutex
		next     int64
		acked    []*catalogpb.OffsetRange // sorted, disjoint, all above next
		meta     string                   // the last Kafka commit's metadata
		dirty    bool
		deleted  bool // by DeleteSubscription: never flushed again
		typ      SubscriptionType
		consumer *Consumer    // Exclusive: the one consumer
		shared   *sharedState // Shared: the consumers and dispatch state
	}
}

// subscription returns the partition's subscription, loading it from the
// metadata store or creating it at the initial position.
func (p *partition) subscription(ctx context.Context, name string, pos InitialPosition) (*subscription, error) {
	p.mu.Lock()
	if s, ok := p.mu.subs[name]; ok {
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()

	s := &subscription{p: p, name: name, cn: catalog.CursorName{Partition: p.pname, Subscription: name}}
	e, ok, err := p.b.cat.Cursors.Get(ctx, s.cn)
	if err != nil {
		return nil, wrapMeta("load cursor", err)
	}
	if ok {
		s.mu.next, s.mu.acked, s.mu.meta = e.Value.NextOffset, e.Value.Acked, e.Value.CommitMetadata
	} else {
		p.mu.Lock()
		if pos == Earliest {
			s.mu.next = p.startOffsetLocked()
		} else {
			s.mu.next = p.mu.next
		}
		p.mu.Unlock()
		s.mu.dirty = true
		if err := s.flush(ctx); err != nil {
			return nil, err
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if existing, ok := p.mu.subs[name]; ok {
		return existing, nil // lost a race with another loader
	}
	p.mu.subs[name] = s
	return s, nil
}

// ack records individually acknowledged offsets and moves next past every
// contiguous acknowledged offset.
func (s *subscription) ack(offsets []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, off := range offsets {
		if sh := s.mu.shared; sh != nil {
			delete(sh.pending, off)
		}
		if off < s.mu.next || isAcked(s.mu.acked, off) {
			continue
		}
		s.mu.acked = addRange(s.mu.acked, off)
		s.mu.dirty = true
	}
	for len(s.mu.acked) > 0 && s.mu.acked[0].Start == s.mu.next {
		s.mu.next = s.mu.acked[0].End
		s.mu.acked = s.mu.acked[1:]
	}
}

// isAcked reports whether off lies in one of the sorted ranges.
func isAcked(ranges []*catalogpb.OffsetRange, off int64) bool {
	i := sort.Search(len(ranges), func(i int) bool { return ranges[i].End > off })
	return i < len(ranges) && ranges[i].Start <= off
}

// addRange adds the single offset off (not yet in ranges) to the sorted,
// disjoint ranges, merging neighbours.
func addRange(ranges []*catalogpb.OffsetRange, off int64) []*catalogpb.OffsetRange {
	i := sort.Search(len(ranges), func(i int) bool { return ranges[i].Start > off })
	joinPrev := i > 0 && ranges[i-1].End == off
	joinNext := i < len(ranges) && ranges[i].Start == off+1
	switch {
	case joinPrev && joinNext:
		ranges[i-1].End = ranges[i].End
		return append(ranges[:i], ranges[i+1:]...)
	case joinPrev:
		ranges[i-1].End = off + 1
	case joinNext:
		ranges[i].Start = off
	default:
		ranges = append(ranges, nil)
		copy(ranges[i+1:], ranges[i:])
		ranges[i] = &catalogpb.OffsetRange{Start: off, End: off + 1}
	}
	return ranges
}

// flush persists the cursor if it changed since the last flush.
func (s *subscription) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	if !s.mu.dirty || s.mu.deleted {
		s.mu.Unlock()
		return nil
	}
	c := &catalogpb.Cursor{NextOffset: s.mu.next, Acked: make([]*catalogpb.OffsetRange, len(s.mu.acked)),
		CommitMetadata: s.mu.meta}
	for i, r := range s.mu.acked {
		c.Acked[i] = &catalogpb.OffsetRange{Start: r.Start, End: r.End}
	}
	s.mu.dirty = false
	s.mu.Unlock()
	if _, err := s.p.b.cat.Cursors.Set(ctx, s.cn, c); err != nil {
		s.mu.Lock()
		s.mu.dirty = true
		s.mu.Unlock()
		return wrapMeta("persist cursor", err)
	}
	return nil
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
	n := end - s.mu.next
	for _, r := range s.mu.acked {
		n -= min(r.End, end) - min(r.Start, end)
	}
	return max(n, 0)
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
		s, err := p.subscription(ctx, name, Latest)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		st := SubscriptionStats{Name: name, Partition: p.index, NextOffset: s.mu.next, Backlog: s.backlogLocked(end)}
		if s.mu.consumer != nil {
			st.Consumers = 1
		}
		if s.mu.shared != nil {
			st.Consumers = len(s.mu.shared.consumers)
		}
		st.Type = s.mu.typ.String()
		s.mu.Unlock()
		out = append(out, st)
	}
	return out, nil
}

// disconnect closes the subscription's consumers, if any.
func (s *subscription) disconnect() {
	s.mu.Lock()
	var cs []*Consumer
	if s.mu.consumer != nil {
		cs = append(cs, s.mu.consumer)
	}
	if s.mu.shared != nil {
		for c := range s.mu.shared.consumers {
			cs = append(cs, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}
