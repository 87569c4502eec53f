package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// InitialPosition is where a new subscription starts.
type InitialPosition int

const (
	// Latest starts after the last message (the default).
	Latest InitialPosition = iota
	// Earliest starts at the first retained message.
	Earliest
)

// SubscriptionType is how a subscription hands messages to its consumers.
type SubscriptionType int

const (
	// Exclusive allows one consumer at a time; another is refused (the
	// default).
	Exclusive SubscriptionType = iota
	// Shared spreads messages over every consumer attached; a message a
	// consumer leaves unacknowledged (it closes or disconnects) or Nacks
	// goes to another. There is no ordering across consumers.
	Shared
)

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	Topic string
	// Subscription names the durable cursor; required.
	Subscription string
	// Type is the subscription type; every consumer of a subscription must
	// use the same one.
	Type SubscriptionType
	// InitialPosition applies when the subscription does not exist yet.
	InitialPosition InitialPosition
	// ReceiverQueueSize is how many messages per partition may be buffered
	// ahead of Receive (the permits granted to the broker). Default 1000.
	ReceiverQueueSize int
	// Name identifies the consumer in the broker's logs. Optional.
	Name string
}

// ConsumerMessage is a received message.
type ConsumerMessage struct {
	Message
	ID MessageID
	// PublishTime is when the broker stored it.
	PublishTime time.Time

	gen uint64 // stream generation it came on
}

// Consumer receives the messages of one subscription on every partition of
// a topic: all of them (Exclusive, a second consumer is refused) or a
// share (Shared). It is safe for concurrent use. Delivery is at least once: messages not
// acknowledged when a connection breaks are delivered again.
type Consumer struct {
	c     *Client
	opts  ConsumerOptions
	topic TopicInfo
	parts []*partitionConsumer
	queue chan *ConsumerMessage

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// Subscribe attaches a consumer to the subscription on every partition of
// the topic, creating the subscription if needed.
func (c *Client) Subscribe(ctx context.Context, opts ConsumerOptions) (*Consumer, error) {
	if opts.Subscription == "" {
		return nil, errors.New("client: ConsumerOptions.Subscription is required")
	}
	if opts.ReceiverQueueSize <= 0 {
		opts.ReceiverQueueSize = 1000
	}
	info, err := c.Lookup(ctx, opts.Topic, true)
	if err != nil {
		return nil, err
	}
	cons := &Consumer{
		c:      c,
		opts:   opts,
		topic:  info,
		queue:  make(chan *ConsumerMessage, opts.ReceiverQueueSize*int(info.Partitions)),
		closed: make(chan struct{}),
	}
	for i := int32(0); i < info.Partitions; i++ {
		pc := &partitionConsumer{cons: cons, partition: i, acks: make(chan int64, 1024), nacks: make(chan int64, 64), consumed: make(chan struct{}, 1)}
		s, err := pc.subscribe(ctx)
		if err != nil {
			cons.Close()
			return nil, err
		}
		cons.parts = append(cons.parts, pc)
		cons.wg.Add(1)
		go func() {
			defer cons.wg.Done()
			pc.run(s)
		}()
	}
	return cons, nil
}

// Topic returns the canonical topic name.
func (c *Consumer) Topic() string { return c.topic.Name }

// Receive returns the next message, waiting for one.
func (c *Consumer) Receive(ctx context.Context) (*ConsumerMessage, error) {
	for {
		select {
		case m := <-c.queue:
			pc := c.parts[m.ID.Partition]
			if m.gen != pc.gen.Load() {
				continue // from a broken stream: it will be delivered again
			}
			pc.delivered()
			return m, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, ErrClosed
		}
	}
}

// Ack acknowledges a message. Acknowledgements are sent in batches, within
// a few milliseconds.
func (c *Consumer) Ack(m *ConsumerMessage) error { return c.AckID(m.ID) }

// AckID acknowledges a message by its ID.
func (c *Consumer) AckID(id MessageID) error {
	if id.Partition < 0 || int(id.Partition) >= len(c.parts) {
		return fmt.Errorf("client: ack of partition %d: topic has %d", id.Partition, len(c.parts))
	}
	select {
	case c.parts[id.Partition].acks <- id.Offset:
		return nil
	case <-c.closed:
		return ErrClosed
	}
}

// Nack negatively acknowledges a message of a Shared subscription: it is
// delivered again, to this or another consumer.
func (c *Consumer) Nack(m *ConsumerMessage) error {
	if c.opts.Type != Shared {
		return errors.New("client: Nack needs a Shared subscription")
	}
	if m.ID.Partition < 0 || int(m.ID.Partition) >= len(c.parts) {
		return fmt.Errorf("client: nack of partition %d: topic has %d", m.ID.Partition, len(c.parts))
	}
	select {
	case c.parts[m.ID.Partition].nacks <- m.ID.Offset:
		return nil
	case <-c.closed:
		return ErrClosed
	}
}

// Close sends pending acknowledgements and detaches the consumer.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	c.wg.Wait()
	return nil
}

// partitionConsumer keeps one partition's Consume stream: its run
// goroutine owns the stream's sending side (flow and acks) and reconnects
// when it breaks; a receive goroutine per stream queues messages.
type partitionConsumer struct {
	cons      *Consumer
	partition int32
	acks      chan int64
	nacks     chan int64
	consumed  chan struct{} // signalled when Receive takes a message
	gen       atomic.Uint64
	taken     atomic.Int64 // messages Receive took since the last flow
}

func (pc *partitionConsumer) delivered() {
	pc.taken.Add(1)
	select {
	case pc.consumed <- struct{}{}:
	default:
	}
}

type consumeStream struct {
	stream nativepb.Magnetar_ConsumeClient
	cancel context.CancelFunc
	done   chan struct{} // closed when receive returns
	err    error         // set before done is closed
}

// subscribe opens a stream and grants the initial permits.
func (pc *partitionConsumer) subscribe(ctx context.Context) (*consumeStream, error) {
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel) // ctx bounds only the handshake
	defer stop()
	o := pc.cons.opts
	pos := nativepb.InitialPosition_LATEST
	if o.InitialPosition == Earliest {
		pos = nativepb.InitialPosition_EARLIEST
	}
	typ := nativepb.SubscriptionType_EXCLUSIVE
	if o.Type == Shared {
		typ = nativepb.SubscriptionType_SHARED
	}
	svc, err := pc.cons.c.service(ctx, pc.cons.topic.Name, pc.partition)
	var stream nativepb.Magnetar_ConsumeClient
	if err == nil {
		stream, err = svc.Consume(sctx)
	}
	if err == nil {
		err = stream.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: &nativepb.Subscribe{
			Topic: pc.cons.topic.Name, Partition: pc.partition, Subscription: o.Subscription,
			Type: typ, InitialPosition: pos, ConsumerName: o.Name,
		}}})
	}
	var resp *nativepb.ConsumeResponse
	if err == nil {
		resp, err = stream.Recv()
	}
	if err == nil && resp.GetSubscribed() == nil {
		err = status.Error(codes.Internal, "client: broker did not confirm the subscription")
	}
	if err == nil {
		pc.taken.Store(0)
		err = stream.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Flow{Flow: &nativepb.Flow{Permits: uint32(o.ReceiverQueueSize)}}})
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: subscribing %s on %s-%d: %w", o.Subscription, pc.cons.topic.Name, pc.partition, err)
	}
	s := &consumeStream{stream: stream, cancel: cancel, done: make(chan struct{})}
	gen := pc.gen.Add(1)
	go pc.receive(s, gen)
	return s, nil
}

func (pc *partitionConsumer) receive(s *consumeStream, gen uint64) {
	defer close(s.done)
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			s.err = err
			return
		}
		for _, m := range resp.GetMessages().GetMessages() {
			cm := &ConsumerMessage{
				Message:     fromProto(m.GetMessage()),
				ID:          MessageID{Partition: pc.partition, Offset: m.GetOffset()},
				PublishTime: time.UnixMilli(m.GetPublishTimeMs()),
				gen:         gen,
			}
			select {
			case pc.cons.queue <- cm:
			case <-pc.cons.closed:
				s.err = ErrClosed
				return
			}
		}
	}
}

const (
	ackFlushInterval = 5 * time.Millisecond
	ackBatchMax      = 1000
)

// run owns the stream's sending side: it batches acks, grants permits as
// Receive takes messages, and reconnects with backoff when the stream
// breaks.
func (pc *partitionConsumer) run(s *consumeStream) {
	ticker := time.NewTicker(ackFlushInterval)
	defer ticker.Stop()
	var acks []int64
	half := int64(max(pc.cons.opts.ReceiverQueueSize/2, 1))
	backoff := 50 * time.Millisecond
	for {
		var err error
		select {
		case off := <-pc.acks:
			acks = append(acks, off)
			if len(acks) >= ackBatchMax {
				acks, err = pc.sendAcks(s, acks)
			}
		case <-ticker.C:
			acks, err = pc.sendAcks(s, acks)
		case off := <-pc.nacks:
			// Acknowledgements queued before go first, so a nack never
			// overtakes them. A nack lost with a broken stream needs no
			// retry: the new stream redelivers whatever is unacknowledged.
			if acks, err = pc.sendAcks(s, acks); err == nil {
				err = s.stream.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Nack{Nack: &nativepb.Nack{Offsets: []int64{off}}}})
			}
		case <-pc.consumed:
			if n := pc.taken.Load(); n >= half {
				pc.taken.Add(-n)
				err = s.stream.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Flow{Flow: &nativepb.Flow{Permits: uint32(n)}}})
			}
		case <-s.done:
			err = s.err
		case <-pc.cons.closed:
			pc.drainAcks(s, acks)
			_ = s.stream.CloseSend()
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
			}
			s.cancel()
			return
		}
		if err == nil {
			backoff = 50 * time.Millisecond
			continue
		}
		// The stream broke: reconnect. Acks not sent are kept and sent on
		// the new stream (the broker accepts acks for any offset).
		s.cancel()
		pc.cons.c.log.Warn("consumer stream broke; reconnecting", "topic", pc.cons.topic.Name, "partition", pc.partition, "err", err)
		for {
			select {
			case <-pc.cons.closed:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			ns, serr := pc.subscribe(ctx)
			cancel()
			if serr == nil {
				s = ns
				break
			}
			pc.cons.c.log.Warn("resubscribing failed", "topic", pc.cons.topic.Name, "partition", pc.partition, "err", serr)
		}
	}
}

func (pc *partitionConsumer) sendAcks(s *consumeStream, acks []int64) ([]int64, error) {
	if len(acks) == 0 {
		return acks, nil
	}
	err := s.stream.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Ack{Ack: &nativepb.Ack{Offsets: acks}}})
	if err != nil {
		return acks, err
	}
	return acks[:0], nil
}

// drainAcks sends every ack queued before Close.
func (pc *partitionConsumer) drainAcks(s *consumeStream, acks []int64) {
	for {
		select {
		case off := <-pc.acks:
			acks = append(acks, off)
			continue
		default:
		}
		break
	}
	_, _ = pc.sendAcks(s, acks)
}
