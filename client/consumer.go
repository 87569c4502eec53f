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
	// Failover lets one consumer per partition receive, in order; the
	// others stand by and take over when it leaves. Consumers are ordered
	// by Name, and partition i goes to the (i mod n)-th, so a partitioned
	// topic's partitions spread over the consumers.
	Failover
	// KeyShared spreads messages over the consumers by key: all messages
	// with one key go to one consumer, in order, also while consumers join
	// and leave. Messages without a key go to any consumer.
	KeyShared
)

var subscriptionTypes = [...]nativepb.SubscriptionType{
	Exclusive: nativepb.SubscriptionType_EXCLUSIVE,
	Shared:    nativepb.SubscriptionType_SHARED,
	Failover:  nativepb.SubscriptionType_FAILOVER,
	KeyShared: nativepb.SubscriptionType_KEY_SHARED,
}

// DeadLetterPolicy sends messages that keep failing to another topic.
type DeadLetterPolicy struct {
	// MaxRedeliveries is how often a message may be delivered again (after
	// a Nack or an ack timeout) before it goes to the dead-letter topic
	// instead: it is received at most MaxRedeliveries+1 times. At least 1.
	MaxRedeliveries uint32
	// Topic is the dead-letter topic; default <topic>-<subscription>-DLQ.
	// It is created on first use if the broker allows it.
	Topic string
}

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
	// Name identifies the consumer in the broker's logs and orders
	// Failover consumers. Optional.
	Name string
	// AckTimeout, when set, has the broker deliver a message again if it
	// is neither acknowledged nor negatively acknowledged that long after
	// it was delivered.
	AckTimeout time.Duration
	// NackRedeliveryDelay is how long a negatively acknowledged message
	// waits before it is delivered again; default 0 (at once). With
	// NackRedeliveryMaxDelay above it the delay doubles with each
	// redelivery of the message, up to NackRedeliveryMaxDelay.
	NackRedeliveryDelay, NackRedeliveryMaxDelay time.Duration
	// DeadLetter, when set, moves a message redelivered more than its
	// MaxRedeliveries to a dead-letter topic (with its key, value and
	// properties, plus the origin properties below) and acknowledges it.
	DeadLetter *DeadLetterPolicy
	// Retry, when set, enables ReconsumeLater: the consumer also receives
	// the subscription's retry topic (retry.go).
	Retry *RetryPolicy

	nonDurable bool       // a Reader's subscription
	start      *startFrom // a Reader's start
}

// Properties the client adds to a message it moves to a dead-letter topic.
const (
	PropertyOriginTopic        = "magnetar.origin-topic"
	PropertyOriginMessageID    = "magnetar.origin-message-id"
	PropertyOriginSubscription = "magnetar.origin-subscription"
)

// ConsumerMessage is a received message.
type ConsumerMessage struct {
	Message
	ID MessageID
	// PublishTime is when the broker stored it.
	PublishTime time.Time
	// RedeliveryCount is how many times it was negatively acknowledged or
	// timed out before this delivery.
	RedeliveryCount uint32

	gen  uint64    // stream generation it came on
	cons *Consumer // it came from: the Consumer, or its retry topic's
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
	dlq   *lazyProducer // with a DeadLetterPolicy or a RetryPolicy
	retry *retrying     // with a RetryPolicy

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
	if opts.Type < Exclusive || opts.Type > KeyShared {
		return nil, fmt.Errorf("client: unknown subscription type %d", opts.Type)
	}
	if dl := opts.DeadLetter; dl != nil && dl.MaxRedeliveries == 0 {
		return nil, errors.New("client: DeadLetterPolicy.MaxRedeliveries must be at least 1")
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
	if opts.DeadLetter != nil || opts.Retry != nil {
		cons.dlq = &lazyProducer{topic: info.Name + "-" + opts.Subscription + "-DLQ"}
		if dl := opts.DeadLetter; dl != nil && dl.Topic != "" {
			cons.dlq.topic = dl.Topic
		}
	}
	if err := cons.attach(ctx); err != nil {
		return nil, err
	}
	if opts.Retry != nil {
		if cons.retry, err = cons.subscribeRetry(ctx); err != nil {
			cons.Close()
			return nil, err
		}
	}
	return cons, nil
}

// attach opens a stream per partition.
func (cons *Consumer) attach(ctx context.Context) error {
	for i := int32(0); i < cons.topic.Partitions; i++ {
		pc := &partitionConsumer{cons: cons, partition: i, acks: make(chan int64, 1024), control: make(chan controlReq, 64), consumed: make(chan struct{}, 1)}
		s, err := pc.subscribe(ctx)
		if err != nil {
			cons.Close()
			return err
		}
		cons.parts = append(cons.parts, pc)
		cons.wg.Add(1)
		go func() {
			defer cons.wg.Done()
			pc.run(s)
		}()
	}
	return nil
}

// Topic returns the canonical topic name.
func (c *Consumer) Topic() string { return c.topic.Name }

// Receive returns the next message, waiting for one.
func (c *Consumer) Receive(ctx context.Context) (*ConsumerMessage, error) {
	for {
		select {
		case m := <-c.queue:
			pc := m.cons.parts[m.ID.Partition]
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

// of returns the consumer a received message belongs to: c, or the one of
// c's retry topic.
func (c *Consumer) of(m *ConsumerMessage) *Consumer {
	if m.cons != nil {
		return m.cons
	}
	return c
}

// Ack acknowledges a message. Acknowledgements are sent in batches, within
// a few milliseconds.
func (c *Consumer) Ack(m *ConsumerMessage) error { return c.of(m).AckID(m.ID) }

// AckID acknowledges a message of the consumer's topic by its ID (a
// message from the retry topic needs Ack).
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

// AckCumulative acknowledges m and every message before it on its
// partition (Exclusive and Failover subscriptions, which deliver in
// order; not messages from the retry topic, which is Shared).
func (c *Consumer) AckCumulative(m *ConsumerMessage) error {
	c = c.of(m)
	if c.opts.Type != Exclusive && c.opts.Type != Failover {
		return errors.New("client: AckCumulative needs an Exclusive or Failover subscription")
	}
	return c.control(m.ID.Partition, &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Ack{
		Ack: &nativepb.Ack{Offsets: []int64{m.ID.Offset}, Cumulative: true}}})
}

// Nack negatively acknowledges a message: it is delivered again (to this
// or, in Shared and Key_Shared subscriptions, another consumer) after
// NackRedeliveryDelay, and its RedeliveryCount goes up.
func (c *Consumer) Nack(m *ConsumerMessage) error {
	return c.of(m).control(m.ID.Partition, &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Nack{
		Nack: &nativepb.Nack{Offsets: []int64{m.ID.Offset}}}})
}

// Seek moves the subscription on every partition to the first message
// published at or after t: messages before it count as acknowledged, from
// it on as not. Messages received before the seek and not yet taken by
// Receive are dropped.
func (c *Consumer) Seek(ctx context.Context, t time.Time) error {
	return c.seek(ctx, -1, &nativepb.Seek{Target: &nativepb.Seek_TimeMs{TimeMs: t.UnixMilli()}}, nil)
}

// SeekID moves the subscription on id's partition to id.
func (c *Consumer) SeekID(ctx context.Context, id MessageID) error {
	return c.seek(ctx, id.Partition, &nativepb.Seek{Target: &nativepb.Seek_Offset{Offset: id.Offset}}, nil)
}

// seek sends sk on partition's stream (every partition's if partition is
// -1); resume is where a Reader resubscribes afterwards.
func (c *Consumer) seek(ctx context.Context, partition int32, sk *nativepb.Seek, resume *startFrom) error {
	for _, pc := range c.parts {
		if partition >= 0 && pc.partition != partition {
			continue
		}
		done := make(chan error, 1)
		select {
		case pc.control <- controlReq{req: &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Seek{Seek: sk}}, done: done, seek: true, resume: resume}:
		case <-c.closed:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if partition >= int32(len(c.parts)) {
		return fmt.Errorf("client: seek on partition %d: topic has %d", partition, len(c.parts))
	}
	return nil
}

// control queues a request for a partition's stream, after the acks
// queued before it.
func (c *Consumer) control(partition int32, req *nativepb.ConsumeRequest) error {
	if partition < 0 || int(partition) >= len(c.parts) {
		return fmt.Errorf("client: partition %d: topic has %d", partition, len(c.parts))
	}
	select {
	case c.parts[partition].control <- controlReq{req: req}:
		return nil
	case <-c.closed:
		return ErrClosed
	}
}

// Close sends pending acknowledgements and detaches the consumer.
func (c *Consumer) Close() error {
	c.dlq.flush() // their acknowledgements go out with the others
	var errs []error
	if c.retry != nil {
		c.retry.cons.detach()
		errs = append(errs, c.retry.producer.close())
	}
	c.detach()
	return errors.Join(append(errs, c.dlq.close())...)
}

// detach closes the streams after sending pending acknowledgements.
func (c *Consumer) detach() {
	c.closeOnce.Do(func() { close(c.closed) })
	c.wg.Wait()
}

// partitionConsumer keeps one partition's Consume stream: its run
// goroutine owns the stream's sending side (flow and acks) and reconnects
// when it breaks; a receive goroutine per stream queues messages.
type partitionConsumer struct {
	cons      *Consumer
	partition int32
	acks      chan int64
	control   chan controlReq // nacks, cumulative acks and seeks, in order after acks
	consumed  chan struct{}   // signalled when Receive takes a message
	gen       atomic.Uint64
	// A Reader's position to resubscribe at: after the last message
	// received, or where it last seeked to. resumeMu orders its updates
	// with the generation changes of seeks, so that a message of the
	// stream before a seek cannot move it back after the seek.
	resumeMu sync.Mutex
	resume   atomic.Pointer[startFrom]
	taken    atomic.Int64 // messages Receive took since the last flow
}

func (pc *partitionConsumer) delivered() {
	pc.taken.Add(1)
	select {
	case pc.consumed <- struct{}{}:
	default:
	}
}

// controlReq is a request for the stream other than an individual ack.
type controlReq struct {
	req  *nativepb.ConsumeRequest
	seek bool
	// resume is where a Reader resubscribes after the seek (nil: not a
	// Reader's seek).
	resume *startFrom
	done   chan error // optional: the outcome of sending it
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
	svc, err := pc.cons.c.service(ctx, pc.cons.topic.Name, pc.partition)
	var stream nativepb.Magnetar_ConsumeClient
	if err == nil {
		stream, err = svc.Consume(sctx)
	}
	if err == nil {
		err = stream.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: pc.subscribeRequest(pos)}})
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
				Message:         fromProto(m.GetMessage()),
				ID:              MessageID{Partition: pc.partition, Offset: m.GetOffset()},
				PublishTime:     time.UnixMilli(m.GetPublishTimeMs()),
				RedeliveryCount: m.GetRedeliveryCount(),
				gen:             gen,
				cons:            pc.cons,
			}
			if pc.deadLetter(cm) {
				continue
			}
			pc.received(gen, cm.ID.Offset)
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
		case cr := <-pc.control:
			// Acknowledgements queued before go first, so nothing overtakes
			// them. A nack lost with a broken stream needs no retry: the new
			// stream redelivers whatever is unacknowledged.
			acks = pc.takeQueuedAcks(acks)
			if acks, err = pc.sendAcks(s, acks); err == nil {
				err = s.stream.Send(cr.req)
			}
			if cr.seek && err == nil {
				pc.seeked(cr.resume)
			}
			if cr.done != nil {
				cr.done <- err
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

// takeQueuedAcks appends the acks waiting in the channel.
func (pc *partitionConsumer) takeQueuedAcks(acks []int64) []int64 {
	for {
		select {
		case off := <-pc.acks:
			acks = append(acks, off)
		default:
			return acks
		}
	}
}

// drainAcks sends every ack, nack and cumulative ack queued before Close.
func (pc *partitionConsumer) drainAcks(s *consumeStream, acks []int64) {
	_, err := pc.sendAcks(s, pc.takeQueuedAcks(acks))
	for err == nil {
		select {
		case cr := <-pc.control:
			err = s.stream.Send(cr.req)
			if cr.done != nil {
				cr.done <- ErrClosed
			}
			continue
		default:
		}
		return
	}
}

// subscribeRequest is the Subscribe that opens (or reopens) the stream.
func (pc *partitionConsumer) subscribeRequest(pos nativepb.InitialPosition) *nativepb.Subscribe {
	o := pc.cons.opts
	sub := &nativepb.Subscribe{
		Topic: pc.cons.topic.Name, Partition: pc.partition, Subscription: o.Subscription,
		Type: subscriptionTypes[o.Type], InitialPosition: pos, ConsumerName: o.Name,
		AckTimeoutMs:             o.AckTimeout.Milliseconds(),
		NackRedeliveryDelayMs:    o.NackRedeliveryDelay.Milliseconds(),
		NackRedeliveryMaxDelayMs: o.NackRedeliveryMaxDelay.Milliseconds(),
		NonDurable:               o.nonDurable,
	}
	if r := pc.resume.Load(); r != nil {
		r.apply(sub)
	} else if o.start != nil {
		o.start.apply(sub)
	}
	return sub
}

// received notes a Reader's progress, so a new stream resumes after it,
// unless the message came on a stream a seek has made stale.
func (pc *partitionConsumer) received(gen uint64, off int64) {
	if !pc.cons.opts.nonDurable {
		return
	}
	pc.resumeMu.Lock()
	defer pc.resumeMu.Unlock()
	if gen == pc.gen.Load() {
		pc.resume.Store(&startFrom{offset: off + 1})
	}
}

// seeked makes what was received before a seek stale (Receive drops it;
// the broker ends the stream so it is replaced) and, for a Reader, sets
// where the new stream resumes.
func (pc *partitionConsumer) seeked(resume *startFrom) {
	pc.resumeMu.Lock()
	defer pc.resumeMu.Unlock()
	pc.gen.Add(1)
	if resume != nil {
		pc.resume.Store(resume)
	}
}
