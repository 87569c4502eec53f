package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// maxReadBytes is how much one dispatch reads from a partition.
const maxReadBytes = 1 << 20

// SubscribeOptions describe a consumer attaching to a subscription.
type SubscribeOptions struct {
	Topic        TopicName
	Partition    int32
	Subscription string
	Initial      InitialPosition
	// Type is the subscription type; every consumer attached at once must
	// ask for the same one.
	Type SubscriptionType
}

// Delivery is one message handed to a consumer.
type Delivery struct {
	Offset int64
	// Record's byte slices alias stored or cached bytes: do not modify them.
	Record record.Record
}

// Consumer is one consumer attached to a subscription on one partition. It
// receives messages only within the permits granted by Flow. Next must be
// called from one goroutine at a time; Flow, Ack and Close from any.
type Consumer struct {
	sub    *subscription
	shared bool // of a Shared subscription (shared.go)

	readPos int64 // owned by the Next caller

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu struct {
		sync.Mutex
		permits int64
		wake    chan struct{} // closed and replaced when permits grow
	}
}

// Subscribe attaches a consumer to a subscription, creating the
// subscription at opts.Initial if it does not exist. Delivery resumes at
// the subscription's first unacknowledged message.
func (b *Broker) Subscribe(ctx context.Context, opts SubscribeOptions) (*Consumer, error) {
	if opts.Subscription == "" {
		return nil, fmt.Errorf("%w: subscription name is empty", ErrInvalidArgument)
	}
	p, err := b.partitionFor(ctx, opts.Topic, opts.Partition)
	if err != nil {
		return nil, err
	}
	s, err := p.subscription(ctx, opts.Subscription, opts.Initial)
	if err != nil {
		return nil, err
	}
	c := &Consumer{sub: s}
	c.ctx, c.cancel = context.WithCancel(p.ctx)
	c.mu.wake = make(chan struct{})

	s.mu.Lock()
	defer s.mu.Unlock()
	attached := s.mu.consumer != nil || s.mu.shared != nil
	if attached && (opts.Type != Shared || s.mu.typ != Shared) {
		c.cancel()
		return nil, fmt.Errorf("%w: %s on %s-%d has a consumer (%s); asked for %s", ErrConsumerBusy,
			opts.Subscription, opts.Topic, opts.Partition, s.mu.typ, opts.Type)
	}
	s.mu.typ = opts.Type
	if opts.Type == Shared {
		c.shared = true
		s.attachSharedLocked(c)
		return c, nil
	}
	s.mu.consumer = c
	c.readPos = s.mu.next
	return c, nil
}

// StartOffset is where delivery resumed when the consumer attached.
func (c *Consumer) StartOffset() int64 { return c.readPos }

// Flow grants n more permits.
func (c *Consumer) Flow(n uint32) {
	c.mu.Lock()
	c.mu.permits += int64(n)
	close(c.mu.wake)
	c.mu.wake = make(chan struct{})
	c.mu.Unlock()
}

// Ack acknowledges offsets individually.
func (c *Consumer) Ack(offsets []int64) { c.sub.ack(offsets) }

// Close detaches the consumer; unacknowledged messages will be delivered
// to the next consumer of the subscription.
func (c *Consumer) Close() {
	c.cancel()
	s := c.sub
	if c.shared {
		s.detachShared(c)
	} else {
		s.mu.Lock()
		if s.mu.consumer == c {
			s.mu.consumer = nil
		}
		s.mu.Unlock()
	}
	// Persist what this consumer acknowledged now rather than at the next
	// tick, so a consumer that closes and reconnects resumes exactly.
	ctx, cancel := context.WithTimeout(context.Background(), defaultFlushTimeout)
	defer cancel()
	if err := s.flush(ctx); err != nil {
		s.p.log.Warn("persisting cursor on consumer close", "subscription", s.name, "err", err)
	}
}

// Next waits until the consumer has permits and messages are available,
// then returns up to the permits' worth of messages in offset order,
// skipping those already acknowledged. It returns ErrClosed once the
// consumer or its partition is closed.
func (c *Consumer) Next(ctx context.Context) ([]Delivery, error) {
	ctx, stop := mergeCancel(ctx, c.ctx)
	defer stop()
	if c.shared {
		return c.nextShared(ctx)
	}
	for {
		permits, err := c.waitPermits(ctx)
		if err != nil {
			return nil, err
		}
		entries, err := c.sub.p.read(ctx, c.readPos, maxReadBytes)
		if err != nil {
			return nil, c.closedOr(err)
		}
		out, readPos, err := c.sub.collect(nil, entries, c.readPos, permits)
		c.readPos = readPos
		if err != nil {
			return nil, err
		}
		if len(out) == 0 {
			continue // everything read was acknowledged already
		}
		c.mu.Lock()
		c.mu.permits -= int64(len(out))
		c.mu.Unlock()
		c.sub.p.b.metrics.messagesOut.Add(float64(len(out)))
		return out, nil
	}
}

// collect appends to out the records of entries (stored batches in offset
// order) at or after offset from that the subscription has not
// acknowledged, until out holds limit deliveries. It returns out and the
// offset after the last record it looked at. The cursor is read under s.mu
// for each batch: ack changes it in place.
func (s *subscription) collect(out []Delivery, entries []bookie.Entry, from, limit int64) ([]Delivery, int64, error) {
	for _, e := range entries {
		if int64(len(out)) >= limit {
			break
		}
		if e.LastOffset < from {
			continue
		}
		h, err := record.ParseHeader(e.Data)
		if err != nil {
			return out, from, err
		}
		if h.IsControl() {
			from = e.LastOffset + 1
			continue
		}
		s.mu.Lock()
		err = record.DecodeRecords(e.Data, func(r record.Record) error {
			if r.Offset < from || int64(len(out)) >= limit {
				return nil
			}
			from = r.Offset + 1
			if r.Offset >= s.mu.next && !isAcked(s.mu.acked, r.Offset) {
				out = append(out, Delivery{Offset: r.Offset, Record: r})
			}
			return nil
		})
		s.mu.Unlock()
		if err != nil {
			return out, from, fmt.Errorf("broker: decoding batch at offset %d: %w", e.BaseOffset, err)
		}
	}
	return out, from, nil
}

func (c *Consumer) waitPermits(ctx context.Context) (int64, error) {
	for {
		c.mu.Lock()
		permits, wake := c.mu.permits, c.mu.wake
		c.mu.Unlock()
		if permits > 0 {
			return permits, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, c.closedOr(ctx.Err())
		}
	}
}

// closedOr returns ErrClosed if the consumer was closed, else err.
func (c *Consumer) closedOr(err error) error {
	if c.ctx.Err() != nil && !errors.Is(err, ErrPartitionFailed) {
		return ErrClosed
	}
	return err
}

// mergeCancel returns a context canceled when either a or b is.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
