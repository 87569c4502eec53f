package client

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// ProducerOptions configure a Producer.
type ProducerOptions struct {
	// Topic to produce to; created with one partition if it does not exist
	// and the broker allows automatic creation.
	Topic string
	// Name identifies the producer in the broker's logs. Optional.
	Name string
	// BatchingMaxMessages, BatchingMaxBytes and BatchingMaxDelay bound a
	// batch: SendAsync groups messages per partition and sends a batch when
	// one of them is reached. Defaults: 1000 messages, 128 KiB, 5 ms.
	BatchingMaxMessages int
	BatchingMaxBytes    int
	BatchingMaxDelay    time.Duration
	// MaxPendingMessages bounds the messages sent but not yet acknowledged;
	// SendAsync blocks past it. Default 10,000.
	MaxPendingMessages int
	// AccessMode: SharedAccess (default) lets any number of producers
	// publish; ExclusiveAccess fails CreateProducer while another producer
	// is attached to a partition and keeps others out while it is;
	// WaitForExclusiveAccess waits for the others to go first.
	AccessMode ProducerAccessMode
}

// ProducerAccessMode says how a producer shares a topic with other
// producers.
type ProducerAccessMode int

const (
	SharedAccess ProducerAccessMode = iota
	ExclusiveAccess
	WaitForExclusiveAccess
)

func (o *ProducerOptions) setDefaults() {
	if o.BatchingMaxMessages <= 0 {
		o.BatchingMaxMessages = 1000
	}
	if o.BatchingMaxBytes <= 0 {
		o.BatchingMaxBytes = 128 << 10
	}
	if o.BatchingMaxDelay <= 0 {
		o.BatchingMaxDelay = 5 * time.Millisecond
	}
	if o.MaxPendingMessages <= 0 {
		o.MaxPendingMessages = 10000
	}
}

// Producer sends messages to one topic. Messages with a key go to the
// partition of that key; messages without one are spread round-robin, a
// batch at a time. Within a partition, messages are stored in the order
// SendAsync was called. It is safe for concurrent use.
type Producer struct {
	c     *Client
	opts  ProducerOptions
	topic TopicInfo
	parts []*partitionProducer
	sem   chan struct{} // one token per pending message
	rr    atomic.Uint32
	id    atomic.Int64 // the producer ID the broker gave, shared by the partitions

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// CreateProducer looks the topic up (creating it if allowed) and returns a
// producer for it.
func (c *Client) CreateProducer(ctx context.Context, opts ProducerOptions) (*Producer, error) {
	opts.setDefaults()
	info, err := c.Lookup(ctx, opts.Topic, true)
	if err != nil {
		return nil, err
	}
	p := &Producer{
		c:      c,
		opts:   opts,
		topic:  info,
		sem:    make(chan struct{}, opts.MaxPendingMessages),
		closed: make(chan struct{}),
	}
	for i := int32(0); i < info.Partitions; i++ {
		pp := &partitionProducer{p: p, partition: i, in: make(chan *pendingMsg, opts.BatchingMaxMessages), flushes: make(chan chan struct{})}
		if opts.AccessMode != SharedAccess {
			// Exclusive access is decided now, not at the first send.
			s, err := pp.connect(ctx)
			if err != nil {
				p.Close()
				return nil, err
			}
			pp.stream = s
		}
		p.parts = append(p.parts, pp)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			pp.run()
		}()
	}
	return p, nil
}

// Topic returns the canonical topic name.
func (p *Producer) Topic() string { return p.topic.Name }

// Send sends one message and waits until it is durably stored.
func (p *Producer) Send(ctx context.Context, m *Message) (MessageID, error) {
	type result struct {
		id  MessageID
		err error
	}
	done := make(chan result, 1)
	p.SendAsync(ctx, m, func(id MessageID, _ *Message, err error) { done <- result{id, err} })
	// Do not wait for a whole batching delay: a synchronous send goes now.
	if err := p.flushPartitions(ctx, false); err != nil {
		return MessageID{}, err
	}
	select {
	case r := <-done:
		return r.id, r.err
	case <-ctx.Done():
		return MessageID{}, ctx.Err()
	}
}

// SendAsync queues a message and calls callback once it is stored or has
// failed. It blocks while MaxPendingMessages are pending. Callbacks run on
// the producer's goroutines: keep them short.
//
// The producer is idempotent: when its stream breaks (the broker died or
// shut down, the partition moved or failed) it sends the unanswered
// batches again, to the partition's owner, for up to 30 seconds, and the
// broker stores each batch once. A message that still fails with
// ErrConnectionLost may have been stored. A MessageID's Offset is -1 in
// the rare case the broker recognises a batch sent again only as stored
// long ago, without its offset.
func (p *Producer) SendAsync(ctx context.Context, m *Message, callback func(MessageID, *Message, error)) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		callback(MessageID{}, m, ctx.Err())
		return
	case <-p.closed:
		callback(MessageID{}, m, ErrClosed)
		return
	}
	var part int32
	if len(m.Key) > 0 {
		part = keyPartition(m.Key, p.topic.Partitions)
	} else {
		part = int32(p.rr.Add(1) % uint32(p.topic.Partitions))
	}
	pm := &pendingMsg{msg: m, pb: toProto(m), callback: callback}
	select {
	case p.parts[part].in <- pm:
	case <-ctx.Done():
		<-p.sem
		callback(MessageID{}, m, ctx.Err())
	case <-p.closed:
		<-p.sem
		callback(MessageID{}, m, ErrClosed)
	}
}

// Flush sends every queued message now and waits until all messages sent
// before it are acknowledged or failed.
func (p *Producer) Flush(ctx context.Context) error { return p.flushPartitions(ctx, true) }

func (p *Producer) flushPartitions(ctx context.Context, wait bool) error {
	dones := make([]chan struct{}, 0, len(p.parts))
	for _, pp := range p.parts {
		done := make(chan struct{})
		select {
		case pp.flushes <- done:
			dones = append(dones, done)
		case <-ctx.Done():
			return ctx.Err()
		case <-p.closed:
			return ErrClosed
		}
	}
	if !wait {
		return nil
	}
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close sends what is queued, waits for its receipts and closes the
// producer's streams.
func (p *Producer) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	p.wg.Wait()
	return nil
}

type pendingMsg struct {
	msg      *Message
	pb       *nativepb.Message
	callback func(MessageID, *Message, error)
}

type sentBatch struct {
	seq     uint64
	msgs    []*pendingMsg
	waiters []chan struct{} // flushes waiting for this batch
}

// partitionProducer batches and sends one partition's messages. Its run
// goroutine owns the batch and the stream; a receiver goroutine per stream
// completes the batches in order.
type partitionProducer struct {
	p         *Producer
	partition int32
	in        chan *pendingMsg
	flushes   chan chan struct{}

	// Owned by run.
	batch      []*pendingMsg
	batchBytes int
	nextSeq    uint64 // the sequence number of the next message sent
	// producerID is the broker's ID of this producer on the partition: 0
	// until the first stream is opened (it then takes the producer's), -1
	// when the next stream must ask for a new one (renew).
	producerID int64
	stream     *produceStream
}

// renew makes the next stream ask for a new producer ID and number from 0.
// It follows batches that failed without an answer (their stream broke for
// good, or never opened): they may or may not have been stored, and the
// broker takes no gap in a producer's numbers, so the next batch could
// not follow them under the old ID.
func (pp *partitionProducer) renew() {
	pp.producerID, pp.nextSeq = -1, 0
}

func (pp *partitionProducer) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer func() {
		if pp.stream != nil {
			pp.stream.close()
		}
	}()
	for {
		select {
		case m := <-pp.in:
			if len(pp.batch) == 0 {
				timer.Reset(pp.p.opts.BatchingMaxDelay)
			}
			pp.batch = append(pp.batch, m)
			pp.batchBytes += len(m.msg.Value) + len(m.msg.Key)
			if len(pp.batch) >= pp.p.opts.BatchingMaxMessages || pp.batchBytes >= pp.p.opts.BatchingMaxBytes {
				pp.sendBatch(nil)
			}
		case <-timer.C:
			pp.sendBatch(nil)
		case done := <-pp.flushes:
			pp.sendBatch(done)
		case <-pp.p.closed:
			// Take what SendAsync already queued, send it, wait for receipts.
			for {
				select {
				case m := <-pp.in:
					pp.batch = append(pp.batch, m)
					continue
				default:
				}
				break
			}
			done := make(chan struct{})
			pp.sendBatch(done)
			<-done
			return
		}
	}
}

// sendBatch sends the current batch (if any) and arranges for done (if
// not nil) to be closed once everything sent so far is acknowledged.
func (pp *partitionProducer) sendBatch(done chan struct{}) {
	if len(pp.batch) == 0 {
		if done != nil {
			if pp.stream == nil || !pp.stream.addWaiter(done) {
				close(done)
			}
		}
		return
	}
	if pp.stream != nil && pp.stream.outOfOrder.Load() && !pp.stream.broken() {
		// The broker refused a batch as out of order: the ID's numbers
		// are no longer the producer's to follow. The stream's other
		// batches are answered first.
		pp.stream.close()
		pp.stream = nil
		pp.renew()
	}
	if pp.stream != nil && pp.stream.broken() {
		pp.renew()
	}
	msgs := pp.batch
	pp.batch, pp.batchBytes = nil, 0
	b := &sentBatch{seq: pp.nextSeq, msgs: msgs}
	pp.nextSeq += uint64(len(msgs))
	if done != nil {
		b.waiters = append(b.waiters, done)
	}
	if pp.stream == nil || pp.stream.broken() {
		s, err := pp.connect(context.Background())
		if err != nil {
			pp.p.completeBatch(b, 0, pp.partition, err)
			pp.renew()
			return
		}
		pp.stream = s
	}
	pp.stream.send(b)
}

// connect opens a stream; hctx bounds the handshake only.
func (pp *partitionProducer) connect(hctx context.Context) (*produceStream, error) {
	if pp.stream != nil {
		pp.stream.close()
		pp.stream = nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(hctx, cancel)
	defer stop()
	svc, err := pp.p.c.service(ctx, pp.p.topic.Name, pp.partition)
	var stream nativepb.Magnetar_ProduceClient
	if err == nil {
		stream, err = svc.Produce(ctx)
	}
	id := pp.producerID
	switch {
	case id == 0:
		id = pp.p.id.Load()
	case id < 0:
		id = 0 // ask for a new one
	}
	if err == nil {
		err = stream.Send(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{
			Topic: pp.p.topic.Name, Partition: pp.partition, ProducerName: pp.p.opts.Name,
			AccessMode: nativepb.ProducerAccessMode(pp.p.opts.AccessMode), ProducerId: id,
		}}})
	}
	var resp *nativepb.ProduceResponse
	if err == nil {
		resp, err = stream.Recv()
	}
	if err == nil && resp.GetOpened() == nil {
		err = status.Error(codes.Internal, "client: broker did not confirm the producer")
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: opening producer on %s-%d: %w", pp.p.topic.Name, pp.partition, err)
	}
	if id := resp.GetOpened().GetProducerId(); id != 0 {
		// Keep the ID (and the sequence numbers) for good: a batch sent
		// again on a later stream is then recognised.
		pp.producerID = id
		pp.p.id.CompareAndSwap(0, id)
	}
	s := &produceStream{p: pp.p, partition: pp.partition, stream: stream, cancel: cancel, done: make(chan struct{})}
	go s.receive()
	return s, nil
}

// completeBatch reports the outcome of a batch that never reached a
// stream's queue to its callbacks and waiters.
func (p *Producer) completeBatch(b *sentBatch, base int64, partition int32, err error) {
	p.runCallbacks(b, base, partition, err)
	for _, w := range b.waiters {
		close(w)
	}
}

// runCallbacks reports a batch's outcome to its messages' callbacks.
func (p *Producer) runCallbacks(b *sentBatch, base int64, partition int32, err error) {
	for i, m := range b.msgs {
		id := MessageID{}
		switch {
		case err == nil && base < 0: // stored long ago, offset unknown
			id = MessageID{Partition: partition, Offset: -1}
		case err == nil:
			id = MessageID{Partition: partition, Offset: base + int64(i)}
		}
		m.callback(id, m.msg, err)
		<-p.sem
	}
}

// produceStream is one open Produce stream and the batches awaiting their
// receipts on it, in order.
type produceStream struct {
	p         *Producer
	partition int32
	stream    nativepb.Magnetar_ProduceClient
	cancel    context.CancelFunc
	done      chan struct{} // closed when receive returns
	// outOfOrder is set when the broker refused a batch as out of
	// sequence (ABORTED): the producer goes on under a new ID.
	outOfOrder atomic.Bool

	// completeMu serialises completions (receipts and failure), so a batch
	// is completed once and batches complete in order.
	completeMu sync.Mutex

	// A batch stays in queue until its callbacks have run: a flush waiter
	// attached to it (addWaiter) is released only after them.
	mu struct {
		sync.Mutex
		queue  []*sentBatch
		failed error
	}
}

func (s *produceStream) broken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.failed != nil
}

// addWaiter attaches a flush waiter to the last batch awaiting its
// receipt; false if there is none.
func (s *produceStream) addWaiter(done chan struct{}) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.mu.queue); n > 0 {
		s.mu.queue[n-1].waiters = append(s.mu.queue[n-1].waiters, done)
		return true
	}
	return false
}

func (s *produceStream) send(b *sentBatch) {
	s.mu.Lock()
	if err := s.mu.failed; err != nil {
		s.mu.Unlock()
		s.p.completeBatch(b, 0, s.partition, err)
		return
	}
	s.mu.queue = append(s.mu.queue, b) // before Send: the receipt may be quick
	s.mu.Unlock()
	req := &nativepb.SendBatch{SequenceId: b.seq, Messages: make([]*nativepb.Message, len(b.msgs))}
	for i, m := range b.msgs {
		req.Messages[i] = m.pb
	}
	if err := s.stream.Send(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Send{Send: req}}); err != nil {
		s.fail(fmt.Errorf("%w: %w", ErrConnectionLost, err))
	}
}

// fail marks the stream broken and fails every batch awaiting a receipt.
func (s *produceStream) fail(err error) {
	s.mu.Lock()
	if s.mu.failed == nil {
		s.mu.failed = err
	}
	s.mu.Unlock()
	s.cancel()
	for s.completeHead(nil, 0, err) {
	}
}

// completeHead completes the oldest batch awaiting a receipt (if seq is
// not nil, only if it is that batch): its callbacks run first, then it
// leaves the queue and its waiters are released. It reports whether a
// batch was completed.
func (s *produceStream) completeHead(seq *uint64, base int64, err error) bool {
	s.completeMu.Lock()
	defer s.completeMu.Unlock()
	s.mu.Lock()
	if len(s.mu.queue) == 0 || (seq != nil && s.mu.queue[0].seq != *seq) {
		s.mu.Unlock()
		return false
	}
	b := s.mu.queue[0]
	s.mu.Unlock()
	s.p.runCallbacks(b, base, s.partition, err)
	s.mu.Lock()
	s.mu.queue = s.mu.queue[1:]
	waiters := b.waiters
	s.mu.Unlock()
	for _, w := range waiters {
		close(w)
	}
	return true
}

func (s *produceStream) receive() {
	defer close(s.done)
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			s.fail(fmt.Errorf("%w: %w", ErrConnectionLost, err))
			return
		}
		var seq uint64
		var base int64
		var rerr error
		switch k := resp.GetKind().(type) {
		case *nativepb.ProduceResponse_Receipt:
			seq, base = k.Receipt.GetSequenceId(), k.Receipt.GetBaseOffset()
		case *nativepb.ProduceResponse_Error:
			seq = k.Error.GetSequenceId()
			rerr = status.Error(codes.Code(k.Error.GetCode()), k.Error.GetMessage())
			if codes.Code(k.Error.GetCode()) == codes.Aborted {
				s.outOfOrder.Store(true)
			}
		default:
			s.fail(status.Error(codes.Internal, "client: unexpected produce response"))
			return
		}
		if !s.completeHead(&seq, base, rerr) {
			s.fail(status.Errorf(codes.Internal, "client: receipt for batch %d out of order", seq))
			return
		}
	}
}

// close ends the stream after the batches sent on it are answered.
func (s *produceStream) close() {
	_ = s.stream.CloseSend()
	<-s.done
	s.cancel()
}
