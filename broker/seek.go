package broker

import (
	"context"
	"fmt"
	"time"
)

// Position is a point in a partition: Offset, or, when Time is set, the
// first message published at or after Time. A position past the end means
// the end; one before the first retained message means that message.
type Position struct {
	Offset int64
	Time   time.Time
}

// startFor returns how to find where a new subscription of opts starts.
func (p *partition) startFor(opts SubscribeOptions) func(context.Context) (int64, error) {
	if opts.Start == nil {
		return p.at(opts.Initial)
	}
	pos := *opts.Start
	return func(ctx context.Context) (int64, error) { return p.resolve(ctx, pos) }
}

// resolve turns a position into an offset within [start, end].
func (p *partition) resolve(ctx context.Context, pos Position) (int64, error) {
	p.mu.Lock()
	start, end := p.startOffsetLocked(), p.mu.next
	p.mu.Unlock()
	if pos.Time.IsZero() {
		return min(max(pos.Offset, start), end), nil
	}
	off, _, found, err := p.b.OffsetForTimestamp(ctx, p.name, p.index, pos.Time.UnixMilli())
	if err != nil {
		return 0, err
	}
	if !found {
		return end, nil
	}
	return off, nil
}

// Seek moves the consumer's subscription to pos (see ResetSubscription).
// The consumer is closed by it, like every other consumer of the
// subscription: Next returns ErrSubscriptionReset.
func (c *Consumer) Seek(ctx context.Context, pos Position) (int64, error) {
	return c.sub.reset(ctx, pos)
}

// ResetSubscription moves subscription sub of a partition to pos: every
// message before it counts as acknowledged, every message from it on as
// not, and redelivery counts start again. Attached consumers are closed
// with ErrSubscriptionReset so they resubscribe from the new position. It
// returns the new cursor once it is durable.
func (b *Broker) ResetSubscription(ctx context.Context, name TopicName, partition int32, sub string, pos Position) (int64, error) {
	s, err := b.existingSubscription(ctx, name, partition, sub)
	if err != nil {
		return 0, err
	}
	return s.reset(ctx, pos)
}

// SkipMessages acknowledges the next n unacknowledged messages of
// subscription sub on a partition, in offset order, and returns the new
// cursor once it is durable.
func (b *Broker) SkipMessages(ctx context.Context, name TopicName, partition int32, sub string, n int64) (int64, error) {
	if n < 0 {
		return 0, fmt.Errorf("%w: cannot skip %d messages", ErrInvalidArgument, n)
	}
	s, err := b.existingSubscription(ctx, name, partition, sub)
	if err != nil {
		return 0, err
	}
	s.p.mu.Lock()
	end := s.p.mu.next
	s.p.mu.Unlock()
	s.mu.Lock()
	// Walk the unacknowledged offsets: gaps between acked ranges.
	next, skipped := s.mu.next, int64(0)
	for start, end := range s.mu.acks.runs() {
		gap := start - next
		if skipped+gap >= n {
			break
		}
		skipped += gap
		next = end
	}
	target := min(next+(n-skipped), end)
	s.moveCursorLocked(target, false)
	cur := s.mu.next
	s.mu.Unlock()
	s.disconnect(ErrSubscriptionReset)
	return cur, s.flush(ctx)
}

// ExpireMessages acknowledges every message of subscription sub on a
// partition published before cutoff (moving the cursor forward only) and
// returns the new cursor once it is durable.
func (b *Broker) ExpireMessages(ctx context.Context, name TopicName, partition int32, sub string, cutoff time.Time) (int64, error) {
	s, err := b.existingSubscription(ctx, name, partition, sub)
	if err != nil {
		return 0, err
	}
	off, err := s.p.resolve(ctx, Position{Time: cutoff})
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	moved := off > s.mu.next
	s.moveCursorLocked(off, false)
	cur := s.mu.next
	s.mu.Unlock()
	if moved {
		s.disconnect(ErrSubscriptionReset)
	}
	return cur, s.flush(ctx)
}

// existingSubscription loads a durable subscription that must exist.
func (b *Broker) existingSubscription(ctx context.Context, name TopicName, partition int32, sub string) (*subscription, error) {
	p, err := b.partitionFor(ctx, name, partition)
	if err != nil {
		return nil, err
	}
	return p.subscription(ctx, sub, false, func(context.Context) (int64, error) {
		return 0, fmt.Errorf("%w: subscription %s on %s-%d", ErrSubscriptionNotFound, sub, name, partition)
	})
}

// reset moves the cursor to pos and closes the consumers.
func (s *subscription) reset(ctx context.Context, pos Position) (int64, error) {
	off, err := s.p.resolve(ctx, pos)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.moveCursorLocked(off, true)
	s.mu.Unlock()
	s.disconnect(ErrSubscriptionReset)
	return off, s.flush(ctx)
}
