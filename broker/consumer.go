package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// maxReadBytes is how much one dispatch reads from a partition.
const maxReadBytes = 1 << 20

// maxClaimBytes bounds the bytes (keys, values, headers) of the messages
// one Next hands out, beyond its first message. maxReadBytes bounds what is
// read as stored, and compressed batches may hold far more: 40 batches of
// one 4 MiB record each, gzipped to a few kilobytes, made one 160 MiB
// answer that a client could not take, and asked again for without end.
const maxClaimBytes = 4 << 20

// deliveryBytes is what a message weighs against maxClaimBytes.
func deliveryBytes(r record.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// SubscribeOptions describe a consumer attaching to a subscription.
type SubscribeOptions struct {
	Topic        TopicName
	Partition    int32
	Subscription string
	// Initial is where a new subscription starts, unless Start is set.
	Initial InitialPosition
	// Start, if set, is where a new subscription starts.
	Start *Position
	// Type is the subscription type; every consumer attached at once must
	// ask for the same one.
	Type SubscriptionType
	// ConsumerName orders Failover consumers; optional. Both names follow
	// the rule of names.go.
	ConsumerName string
	// AckTimeout, when positive, hands a message out again if it is
	// neither acknowledged nor negatively acknowledged that long after its
	// delivery.
	AckTimeout time.Duration
	// NackDelay is how long a negatively acknowledged message waits before
	// it is handed out again. With NackMaxDelay above it, the delay doubles
	// with each redelivery of the message, up to NackMaxDelay.
	NackDelay, NackMaxDelay time.Duration
	// NonDurable makes a subscription that keeps no cursor in the metadata
	// store and vanishes with its last consumer (a Reader).
	NonDurable bool
}

// Delivery is one message handed to a consumer.
type Delivery struct {
	Offset int64
	// Record's byte slices alias stored or cached bytes: do not modify them.
	Record record.Record
	// RedeliveryCount is how many times the message was negatively
	// acknowledged or timed out before.
	RedeliveryCount uint32

	hash uint32 // Key_Shared: the key's hash
}

// consumerIDs numbers consumers, unique within the process.
var consumerIDs atomic.Uint64

// Consumer is one consumer attached to a subscription on one partition. It
// receives messages only within the permits granted by Flow. Next must be
// called from one goroutine at a time; Flow, Ack and Close from any.
type Consumer struct {
	sub  *subscription
	id   uint64
	name string
	opts SubscribeOptions

	startOffset int64

	ctx    context.Context // canceled by Close
	cancel context.CancelCauseFunc

	mu struct {
		sync.Mutex
		permits int64
		wake    chan struct{} // closed and replaced when permits grow
	}
}

// Subscribe attaches a consumer to a subscription, creating the
// subscription at opts.Initial (or opts.Start) if it does not exist.
// Delivery resumes at the subscription's first unacknowledged message.
func (b *Broker) Subscribe(ctx context.Context, opts SubscribeOptions) (*Consumer, error) {
	if err := b.CheckName(SubscriptionName, opts.Subscription); err != nil {
		return nil, err
	}
	if opts.ConsumerName != "" {
		if err := b.CheckName(ConsumerName, opts.ConsumerName); err != nil {
			return nil, err
		}
	}
	if opts.Type < Exclusive || opts.Type > KeyShared {
		return nil, fmt.Errorf("%w: unknown subscription type %d", ErrInvalidArgument, opts.Type)
	}
	if opts.AckTimeout < 0 || opts.NackDelay < 0 || opts.NackMaxDelay < 0 {
		return nil, fmt.Errorf("%w: negative ack timeout or nack delay", ErrInvalidArgument)
	}
	p, err := b.partitionFor(ctx, opts.Topic, opts.Partition)
	if err != nil {
		return nil, err
	}
	s, err := p.subscription(ctx, opts.Subscription, opts.NonDurable, p.startFor(opts))
	if err != nil {
		return nil, err
	}
	c := &Consumer{sub: s, id: consumerIDs.Add(1), name: opts.ConsumerName, opts: opts}
	c.ctx, c.cancel = context.WithCancelCause(p.ctx)
	c.mu.wake = make(chan struct{})

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.deleted {
		c.cancel(nil)
		return nil, fmt.Errorf("%w: subscription %s was just removed; subscribe again", ErrClosed, opts.Subscription)
	}
	if d := s.mu.disp; d != nil && (d.typ != opts.Type || d.typ == Exclusive) {
		c.cancel(nil)
		return nil, fmt.Errorf("%w: %s on %s-%d has a consumer (%s); asked for %s", ErrConsumerBusy,
			opts.Subscription, opts.Topic, opts.Partition, d.typ, opts.Type)
	}
	c.startOffset = s.mu.next
	s.attachLocked(c, opts.Type)
	return c, nil
}

// StartOffset is the subscription's cursor when the consumer attached:
// every offset below it was acknowledged.
func (c *Consumer) StartOffset() int64 { return c.startOffset }

// Flow grants n more permits.
func (c *Consumer) Flow(n uint32) {
	c.mu.Lock()
	c.mu.permits += int64(n)
	close(c.mu.wake)
	c.mu.wake = make(chan struct{})
	c.mu.Unlock()
}

// Ack acknowledges offsets individually. Offsets not published yet were
// never delivered: they are ignored.
func (c *Consumer) Ack(offsets []int64) { c.sub.ack(offsets, c.sub.p.end()) }

// AckCumulative acknowledges every offset up to and including off, or up
// to the partition's end if off is past it: messages published later are
// not acknowledged by it. Only Exclusive and Failover subscriptions
// deliver in order, so only they may.
func (c *Consumer) AckCumulative(off int64) error {
	if !c.opts.Type.ordered() {
		return fmt.Errorf("%w: cumulative acknowledgement needs an Exclusive or Failover subscription", ErrInvalidArgument)
	}
	c.sub.ackUpTo(min(off, c.sub.p.end()-1))
	return nil
}

// Close detaches the consumer; unacknowledged messages will be delivered
// to the next consumer of the subscription.
func (c *Consumer) Close() { c.close(nil) }

func (c *Consumer) close(cause error) {
	c.cancel(cause)
	s := c.sub
	s.detach(c)
	if s.nonDurable {
		s.p.dropIfUnused(s)
		return
	}
	// Persist what this consumer acknowledged now rather than at the next
	// tick, so a consumer that closes and reconnects resumes exactly.
	ctx, cancel := context.WithTimeout(context.Background(), defaultFlushTimeout)
	defer cancel()
	if err := s.flush(ctx); err != nil {
		s.p.log.Warn("persisting cursor on consumer close", "subscription", QuoteName(s.name), "err", err)
	}
}

// Next waits until the consumer has permits and messages are available,
// then returns up to the permits' worth of messages, skipping those
// already acknowledged. It returns ErrClosed once the consumer or its
// partition is closed, ErrSubscriptionReset after a seek.
func (c *Consumer) Next(ctx context.Context) ([]Delivery, error) {
	ctx, stop := mergeCancel(ctx, c.ctx)
	defer stop()
	s := c.sub
	for {
		permits, err := c.waitPermits(ctx)
		if err != nil {
			return nil, err
		}
		out, w, err := c.claim(ctx, permits)
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
		if err := w.wait(ctx, s.p); err != nil {
			return nil, c.closedOr(err)
		}
	}
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

// closedOr returns why the consumer was closed (ErrClosed unless a seek
// closed it) if it was, else err.
func (c *Consumer) closedOr(err error) error {
	if c.ctx.Err() != nil && !errors.Is(err, ErrPartitionFailed) {
		if cause := context.Cause(c.ctx); errors.Is(cause, ErrSubscriptionReset) {
			return cause
		}
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
