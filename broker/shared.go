package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// Shared subscriptions: every consumer attached gets a share of the
// messages, each message going to one consumer at a time.
//
// The subscription keeps a dispatch position (the next offset never
// handed out), the messages handed out and not yet acknowledged (pending,
// by offset, with the consumer holding each) and the messages to hand out
// again first (redeliver, sorted): those of a consumer that closed, and
// those negatively acknowledged. One consumer dispatches at a time
// (dispatchMu), so two consumers never claim the same offset. All of this
// is in memory: after a broker restart every unacknowledged message is
// delivered again from the cursor, which is durable.

// SubscriptionType is how a subscription hands messages to its consumers.
type SubscriptionType int

const (
	// Exclusive allows one consumer at a time (the default).
	Exclusive SubscriptionType = iota
	// Shared spreads messages over every attached consumer; ordering
	// across consumers is not kept.
	Shared
)

func (t SubscriptionType) String() string {
	if t == Shared {
		return "Shared"
	}
	return "Exclusive"
}

// sharedState is the dispatch state of a Shared subscription, guarded by
// subscription.mu.
type sharedState struct {
	consumers map[*Consumer]struct{}
	readPos   int64               // the next offset never handed out
	pending   map[int64]*Consumer // handed out, not yet acknowledged
	redeliver []int64             // to hand out again first, sorted
	wake      chan struct{}       // closed and replaced when redeliver grows
}

// attachSharedLocked adds c to the subscription's shared consumers (s.mu held).
func (s *subscription) attachSharedLocked(c *Consumer) {
	sh := s.mu.shared
	if sh == nil {
		sh = &sharedState{consumers: make(map[*Consumer]struct{}), readPos: s.mu.next,
			pending: make(map[int64]*Consumer), wake: make(chan struct{})}
		s.mu.shared = sh
	}
	sh.consumers[c] = struct{}{}
	c.readPos = s.mu.next
}

// detachShared removes c: what it held unacknowledged is delivered again
// to the others. The last consumer leaving drops the dispatch state; the
// next one starts again from the cursor.
func (s *subscription) detachShared(c *Consumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.mu.shared
	if sh == nil {
		return
	}
	if _, ok := sh.consumers[c]; !ok {
		return // closed before
	}
	delete(sh.consumers, c)
	if len(sh.consumers) == 0 {
		s.mu.shared, s.mu.typ = nil, Exclusive
		close(sh.wake)
		return
	}
	var back []int64
	for off, holder := range sh.pending {
		if holder == c {
			back = append(back, off)
			delete(sh.pending, off)
		}
	}
	sh.requeueLocked(back)
}

// requeueLocked adds offsets to the redelivery set and wakes dispatchers.
func (sh *sharedState) requeueLocked(offsets []int64) {
	if len(offsets) == 0 {
		return
	}
	sh.redeliver = append(sh.redeliver, offsets...)
	slices.Sort(sh.redeliver)
	sh.redeliver = slices.Compact(sh.redeliver)
	close(sh.wake)
	sh.wake = make(chan struct{})
}

// Nack negatively acknowledges offsets this consumer holds: they are
// delivered again, to any consumer of a Shared subscription. On an
// Exclusive subscription the consumer must reconnect to get them again
// (Pulsar's redelivery of unacknowledged messages), so Nack there is
// ErrInvalidArgument.
func (c *Consumer) Nack(offsets []int64) error {
	s := c.sub
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.mu.shared
	if sh == nil || s.mu.typ != Shared {
		return fmt.Errorf("%w: negative acknowledgement needs a Shared subscription", ErrInvalidArgument)
	}
	var back []int64
	for _, off := range offsets {
		if sh.pending[off] == c {
			delete(sh.pending, off)
			back = append(back, off)
		}
	}
	sh.requeueLocked(back)
	return nil
}

// nextShared is Next for a Shared subscription.
func (c *Consumer) nextShared(ctx context.Context) ([]Delivery, error) {
	s := c.sub
	for {
		permits, err := c.waitPermits(ctx)
		if err != nil {
			return nil, err
		}
		out, wait, err := c.claimShared(ctx, permits)
		if err != nil {
			return nil, c.closedOr(err)
		}
		if len(out) > 0 {
			c.mu.Lock()
			c.mu.permits -= int64(len(out))
			c.mu.Unlock()
			s.p.b.metrics.messagesOut.Add(float64(len(out)))
			return out, nil
		}
		select {
		case <-wait.redelivery:
		case <-wait.data:
		case <-ctx.Done():
			return nil, c.closedOr(ctx.Err())
		case <-s.p.ctx.Done():
			return nil, c.closedOr(s.p.closedErr())
		}
	}
}

type sharedWait struct{ redelivery, data <-chan struct{} }

// claimShared hands this consumer up to permits messages: redeliveries
// first, then new ones. With nothing to hand out it returns what to wait
// on.
func (c *Consumer) claimShared(ctx context.Context, permits int64) ([]Delivery, sharedWait, error) {
	s, p := c.sub, c.sub.p
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()

	s.mu.Lock()
	sh := s.mu.shared
	if sh == nil {
		s.mu.Unlock()
		return nil, sharedWait{}, ErrClosed
	}
	var again []int64
	for len(sh.redeliver) > 0 && int64(len(again)) < permits {
		off := sh.redeliver[0]
		sh.redeliver = sh.redeliver[1:]
		if off >= s.mu.next && !isAcked(s.mu.acked, off) {
			again = append(again, off)
		}
	}
	readPos, wake := sh.readPos, sh.wake
	s.mu.Unlock()

	var out []Delivery
	for i := 0; i < len(again); {
		// One read serves every redelivered offset in the batches it got.
		entries, err := p.read(ctx, again[i], maxReadBytes)
		if err != nil {
			s.requeue(again[i:])
			return nil, sharedWait{}, err
		}
		start := i
		out, i, err = pickOffsets(out, entries, again, i)
		if err != nil {
			s.requeue(again[start:])
			return nil, sharedWait{}, err
		}
		if i == start { // the offset is gone (retention): skip it
			i++
		}
	}

	var data <-chan struct{}
	if remaining := permits - int64(len(out)); remaining > 0 {
		p.mu.Lock()
		end, changed := p.mu.next, p.mu.changed
		p.mu.Unlock()
		if readPos < end {
			entries, err := p.read(ctx, readPos, maxReadBytes)
			if err != nil {
				return nil, sharedWait{}, err
			}
			if out, readPos, err = s.collect(out, entries, readPos, permits); err != nil {
				return nil, sharedWait{}, err
			}
		} else {
			data = changed
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.shared != sh {
		return nil, sharedWait{}, ErrClosed // the last consumer left: all restarts from the cursor
	}
	sh.readPos = max(sh.readPos, readPos)
	if _, attached := sh.consumers[c]; !attached {
		// c closed while reading: what it claimed goes to the others.
		back := make([]int64, len(out))
		for i, d := range out {
			back[i] = d.Offset
		}
		sh.requeueLocked(back)
		return nil, sharedWait{}, ErrClosed
	}
	for _, d := range out {
		sh.pending[d.Offset] = c
	}
	if len(out) == 0 && data == nil {
		// Everything read was acknowledged already: look again at once.
		closed := make(chan struct{})
		close(closed)
		data = closed
	}
	return out, sharedWait{redelivery: wake, data: data}, nil
}

// requeue puts offsets back for redelivery after a failed read.
func (s *subscription) requeue(offsets []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh := s.mu.shared; sh != nil {
		sh.requeueLocked(offsets)
	}
}

// pickOffsets appends the records of want[i:] found in entries (stored
// batches in offset order), in order, and returns the index of the first
// offset not found.
func pickOffsets(out []Delivery, entries []bookie.Entry, want []int64, i int) ([]Delivery, int, error) {
	for _, e := range entries {
		if i == len(want) {
			break
		}
		if e.LastOffset < want[i] {
			continue
		}
		if e.BaseOffset > want[i] {
			break // not in what was read: the caller reads again from want[i]
		}
		err := record.DecodeRecords(e.Data, func(r record.Record) error {
			if i < len(want) && r.Offset == want[i] {
				out = append(out, Delivery{Offset: r.Offset, Record: r})
				i++
			}
			return nil
		})
		if err != nil {
			return out, i, fmt.Errorf("broker: decoding batch at offset %d: %w", e.BaseOffset, err)
		}
	}
	return out, i, nil
}
