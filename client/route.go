package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// Routing: which broker serves a partition.
//
// Each partition is served by the broker that owns its bundle. Lookup
// answers the owner of every partition and the live brokers; the client
// keeps the answer per topic, one gRPC connection per broker address, and
// the addresses to send lookups to (those it was given and those it
// learnt). A broker that does not own a partition ends a Produce or
// Consume with FAILED_PRECONDITION and the owner's address in the trailer
// "magnetar-owner": the stream is opened again there, or, when the owner
// is not known yet (its bundle is moving), after a new lookup.
//
// Streams opened through service follow owners by themselves:
//   - Until a stream's first answer, a redirect or an unreachable broker
//     (UNAVAILABLE) makes it look the partition up again and open the
//     stream on the owner, with backoff, for up to handshakeTimeout.
//     After an unreachable broker it gives up at once when no broker
//     answers the lookup, or when the lookup names the broker just found
//     unreachable (a dead owner keeps its bundles until its lease
//     expires): the caller's own retries decide how long to wait for
//     that. After a redirect it goes on looking: the bundle is moving, or
//     the metadata service is electing a leader.
//   - A Produce stream keeps the sends not answered yet. When a broker
//     ends the stream with a redirect, or the stream breaks in any way
//     that may pass (UNAVAILABLE: the broker died or is shutting down,
//     the partition failed), the stream opens again on the owner and sends
//     them again, with backoff, for up to redirectTimeout. Sends carry the
//     producer's ID and sequence numbers, so the broker stores each batch
//     once however often it comes (and answers a repeat with the first
//     one's offset); a dead owner's partitions come back once its lease
//     expires. Other errors are the caller's to handle.
//   - Every break forgets the topic's owners, so the caller's next
//     reconnect looks them up again.
//
// A broker that is paused or cut off by the network closes no connection:
// a lookup it does not answer within Options.LookupTimeout goes to the
// next broker, and a connection that stays silent is pinged
// (Options.KeepAlive) and closed when the ping gets no answer, which breaks
// its streams as a crash would.

// OwnerTrailer is the trailer key naming the owner of a partition on a
// redirect (protocol/native.OwnerTrailer).
const OwnerTrailer = "magnetar-owner"

const (
	// handshakeTimeout bounds how long a stream keeps looking for the
	// owner of its partition.
	handshakeTimeout = 30 * time.Second
	// redirectTimeout bounds how long a Produce stream follows a partition
	// that moves after it was opened.
	redirectTimeout = 30 * time.Second
)

type topicRoute struct {
	partitions int32
	owners     []string // by partition; "" or missing: ask anyone
}

// conn returns the connection to addr, dialing it on first use.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if cc, ok := c.mu.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, append(slices.Clip(c.security),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: c.opts.KeepAlive, Timeout: c.opts.KeepAliveTimeout, PermitWithoutStream: true,
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.mu.conns[addr] = cc
	return cc, nil
}

func (c *Client) svcAt(addr string) (nativepb.MagnetarClient, error) {
	cc, err := c.conn(addr)
	if err != nil {
		return nil, err
	}
	return nativepb.NewMagnetarClient(cc), nil
}

// lookup sends a Lookup to the known brokers in turn, starting with the
// last one that answered, until one answers (or fails for a reason other
// than being unreachable or not answering within LookupTimeout). It
// records the owners and the live brokers.
func (c *Client) lookup(ctx context.Context, req *nativepb.LookupRequest) (*nativepb.LookupResponse, error) {
	c.mu.Lock()
	addrs := slices.Clone(c.mu.lookupAddrs)
	first := c.mu.preferred
	c.mu.Unlock()
	var lastErr error
	for i := range addrs {
		addr := addrs[(first+i)%len(addrs)]
		svc, err := c.svcAt(addr)
		if err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, c.opts.LookupTimeout)
		resp, err := svc.Lookup(actx, req)
		cancel()
		if err != nil {
			lastErr = err
			if code := status.Code(err); (code == codes.Unavailable || code == codes.DeadlineExceeded) && ctx.Err() == nil {
				continue
			}
			return nil, err
		}
		c.learn(addr, resp)
		return resp, nil
	}
	return nil, lastErr
}

// learn records a lookup's answer: the topic's owners, the live brokers
// and which broker answered.
func (c *Client) learn(answered string, resp *nativepb.LookupResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	owners := resp.GetPartitionOwners()
	if len(owners) == 0 {
		owners = []string{answered} // a broker without ownership serves it all
	}
	c.mu.routes[resp.GetTopic()] = &topicRoute{partitions: resp.GetPartitions(), owners: owners}
	for _, b := range resp.GetBrokers() {
		if !slices.Contains(c.mu.lookupAddrs, b) {
			c.mu.lookupAddrs = append(c.mu.lookupAddrs, b)
		}
	}
	c.mu.preferred = max(slices.Index(c.mu.lookupAddrs, answered), 0)
}

// forget drops a topic's owners, so the next stream looks them up.
func (c *Client) forget(topic string) {
	c.mu.Lock()
	delete(c.mu.routes, topic)
	c.mu.Unlock()
}

// ownerOf returns the address serving a partition, looking the topic up
// if its owners are not known or fresh is set.
func (c *Client) ownerOf(ctx context.Context, topic string, partition int32, fresh bool) (string, error) {
	var r *topicRoute
	if !fresh {
		c.mu.Lock()
		r = c.mu.routes[topic]
		c.mu.Unlock()
	}
	if r == nil {
		resp, err := c.lookup(ctx, &nativepb.LookupRequest{Topic: topic})
		if err != nil {
			return "", fmt.Errorf("client: lookup %s: %w", topic, err)
		}
		r = &topicRoute{partitions: resp.GetPartitions(), owners: resp.GetPartitionOwners()}
		if len(r.owners) == 0 {
			r.owners = []string{c.anyAddr()} // a broker without ownership serves it all
		}
	}
	switch {
	case int(partition) < len(r.owners) && r.owners[partition] != "":
		return r.owners[partition], nil
	case len(r.owners) == 1 && r.owners[0] != "":
		return r.owners[0], nil
	}
	return "", &movingError{topic: fmt.Sprintf("%s-%d", topic, partition)}
}

// redirect reports whether err is a broker's redirect and to where ("":
// look up again).
func redirect(err error, trailer metadata.MD) (string, bool) {
	if status.Code(err) != codes.FailedPrecondition {
		return "", false
	}
	v, ok := trailer[OwnerTrailer]
	if !ok {
		return "", false
	}
	if len(v) > 0 {
		return v[0], true
	}
	return "", true
}

// routedService is the service of one partition: its streams go to the
// partition's owner and follow it (see above). Other calls go to the owner
// found when it was made.
type routedService struct {
	nativepb.MagnetarClient
	c         *Client
	topic     string
	partition int32
	addr      string
}

func (c *Client) routed(ctx context.Context, topic string, partition int32) (nativepb.MagnetarClient, error) {
	addr, err := c.ownerOf(ctx, topic, partition, false)
	if err != nil && status.Code(err) != codes.Unavailable {
		return nil, err
	}
	if addr == "" {
		addr = c.anyAddr()
	}
	svc, err := c.svcAt(addr)
	if err != nil {
		return nil, err
	}
	return &routedService{MagnetarClient: svc, c: c, topic: topic, partition: partition, addr: addr}, nil
}

func (c *Client) anyAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.lookupAddrs[c.mu.preferred]
}

// retryable reports whether a stream that got err before its first answer
// may be opened again elsewhere, and where ("": look up again).
func retryable(err error, trailer metadata.MD) (string, bool) {
	if to, ok := redirect(err, trailer); ok {
		return to, true
	}
	return "", status.Code(err) == codes.Unavailable
}

// follow waits out the backoff and returns where the partition is served
// now: to, or the owner a new lookup finds. It gives up (ok false) when
// no broker answers the lookup, or when the lookup names again the broker
// that was just found unreachable (failed): a dead owner holds its
// bundles until its lease expires, and the caller decides whether to try
// again later. An owner not known yet (the bundle is moving) is ""
// with ok true: try again.
func (r *routedService) follow(ctx context.Context, to, failed string, backoff *time.Duration) (string, bool) {
	r.c.forget(r.topic)
	select {
	case <-time.After(*backoff):
	case <-ctx.Done():
		return "", false
	}
	*backoff = min(*backoff*2, time.Second)
	if to != "" {
		return to, true
	}
	addr, err := r.c.ownerOf(ctx, r.topic, r.partition, true)
	switch {
	case err == nil && addr == failed:
		return "", false
	case err == nil:
		return addr, true
	}
	var moving *movingError
	return "", errors.As(err, &moving)
}

// movingError is ownerOf's answer when the lookup names no owner.
type movingError struct{ topic string }

func (e *movingError) Error() string { return fmt.Sprintf("client: no broker owns %s yet", e.topic) }

func (e *movingError) GRPCStatus() *status.Status { return status.New(codes.Unavailable, e.Error()) }

// Produce implements nativepb.MagnetarClient with a stream that follows
// the partition's owner.
func (r *routedService) Produce(ctx context.Context, opts ...grpc.CallOption) (nativepb.Magnetar_ProduceClient, error) {
	s := &routedProduce{r: r, ctx: ctx, opts: opts}
	s.mu.addr = r.addr
	s.mu.cur, s.mu.err = s.openAt(r.addr)
	return s, nil
}

type routedProduce struct {
	r    *routedService
	ctx  context.Context
	opts []grpc.CallOption

	// mu is held while sending, so requests go out in order, on one
	// stream, and a reopen sends the unanswered ones before any new one.
	mu struct {
		sync.Mutex
		addr       string
		cur        nativepb.Magnetar_ProduceClient // nil when opening failed: err says why
		err        error
		cancel     context.CancelFunc
		open       *nativepb.ProduceRequest
		unanswered []*nativepb.ProduceRequest
		closedSend bool
		opened     bool // the caller has had its ProducerOpened
		// handshaken: the current stream's ProducerOpened came. Until it
		// does, an unreachable broker is tried again elsewhere.
		handshaken bool
	}
}

func (s *routedProduce) openAt(addr string) (nativepb.Magnetar_ProduceClient, error) {
	svc, err := s.r.c.svcAt(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	st, err := svc.Produce(ctx, s.opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	if s.mu.cancel != nil {
		s.mu.cancel()
	}
	s.mu.cancel = cancel
	return st, nil
}

func (s *routedProduce) Send(req *nativepb.ProduceRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.GetOpen() != nil:
		s.mu.open = req
	case req.GetSend() != nil:
		s.mu.unanswered = append(s.mu.unanswered, req)
	}
	if s.mu.cur == nil {
		return nil // Recv reopens the stream and sends it then
	}
	if err := s.mu.cur.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil // io.EOF: the stream ended; Recv gets why
}

func (s *routedProduce) Recv() (*nativepb.ProduceResponse, error) {
	backoff := 50 * time.Millisecond
	var deadline time.Time
	for {
		s.mu.Lock()
		cur, openErr, opened, handshaken, curAddr := s.mu.cur, s.mu.err, s.mu.opened, s.mu.handshaken, s.mu.addr
		s.mu.Unlock()
		var resp *nativepb.ProduceResponse
		err := openErr
		var trailer metadata.MD
		if cur != nil {
			resp, err = cur.Recv()
			if err != nil {
				trailer = cur.Trailer()
			}
		}
		if err == nil {
			backoff, deadline = 50*time.Millisecond, time.Time{}
			switch k := resp.GetKind().(type) {
			case *nativepb.ProduceResponse_Opened:
				s.handshake(k.Opened.GetProducerId())
				if opened {
					continue // of a stream reopened on a new owner
				}
			case *nativepb.ProduceResponse_Receipt:
				s.answered(k.Receipt.GetSequenceId())
			case *nativepb.ProduceResponse_Error:
				s.answered(k.Error.GetSequenceId())
			}
			return resp, nil
		}
		to, isRedirect := redirect(err, trailer)
		// An idempotent producer's sends are safe to repeat after any
		// break: the broker stores each once.
		resend := s.idempotent() && status.Code(err) == codes.Unavailable
		retry := isRedirect || resend || (!handshaken && status.Code(err) == codes.Unavailable)
		if deadline.IsZero() {
			deadline = time.Now().Add(max(handshakeTimeout, redirectTimeout))
		}
		if !retry || s.ctx.Err() != nil || time.Now().After(deadline) {
			s.r.c.forget(s.r.topic)
			return nil, err
		}
		var moving *movingError
		// A redirect, or a lookup that found no owner: the bundle moves.
		moves := isRedirect || errors.As(err, &moving)
		if moves || resend {
			// Not (only) a broker found unreachable: a resend goes on
			// trying the owner the lookup names, as a dead owner keeps its
			// bundles until its lease expires.
			curAddr = ""
		}
		addr, ok := s.r.follow(s.ctx, to, curAddr, &backoff)
		if !ok && !resend && !moves {
			s.r.c.forget(s.r.topic)
			return nil, err
		}
		var lerr error
		switch {
		case !ok && resend:
			lerr = err // no broker answered the lookup: try again
		case !ok || addr == "":
			// A redirect whose lookup failed (the metadata service or the
			// brokers are busy electing), or that names no owner yet (the
			// bundle is moving): look again until the deadline.
			lerr = &movingError{topic: s.r.topic}
		}
		s.reopen(addr, lerr)
	}
}

// handshake notes a stream's ProducerOpened. The producer's ID goes into
// the open request sent on a reopen, so the broker recognises the sends
// repeated there (a broker gives a new ID to a producer presenting one not
// issued to its role: that one is then kept).
func (s *routedProduce) handshake(producerID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.opened, s.mu.handshaken = true, true
	if open := s.mu.open.GetOpen(); open != nil && open.GetProducerId() != producerID && producerID != 0 {
		o := proto.CloneOf(open)
		o.ProducerId = producerID
		s.mu.open = &nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: o}}
	}
}

// idempotent reports whether the broker gave the producer an ID.
func (s *routedProduce) idempotent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.open.GetOpen().GetProducerId() != 0
}

// answered drops the oldest unanswered send (answers come in order).
func (s *routedProduce) answered(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.unanswered) > 0 && s.mu.unanswered[0].GetSend().GetSequenceId() == seq {
		s.mu.unanswered = s.mu.unanswered[1:]
	}
}

// reopen opens the stream at addr and sends the open request and every
// unanswered send again; a failure is kept for Recv to retry.
func (s *routedProduce) reopen(addr string, lookupErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.cur, s.mu.err, s.mu.handshaken = nil, lookupErr, false
	if lookupErr != nil {
		return
	}
	st, err := s.openAt(addr)
	if err != nil {
		s.mu.err = err
		return
	}
	s.mu.addr, s.mu.cur = addr, st
	reqs := append([]*nativepb.ProduceRequest{s.mu.open}, s.mu.unanswered...)
	for _, req := range reqs {
		if req == nil {
			continue
		}
		if err := st.Send(req); err != nil {
			return // Recv finds out why
		}
	}
	if s.mu.closedSend {
		_ = st.CloseSend()
	}
}

func (s *routedProduce) CloseSend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closedSend = true
	if s.mu.cur == nil {
		return nil
	}
	return s.mu.cur.CloseSend()
}

func (s *routedProduce) current() nativepb.Magnetar_ProduceClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.cur
}

func (s *routedProduce) Header() (metadata.MD, error) {
	if cur := s.current(); cur != nil {
		return cur.Header()
	}
	return nil, s.mu.err
}

func (s *routedProduce) Trailer() metadata.MD {
	if cur := s.current(); cur != nil {
		return cur.Trailer()
	}
	return nil
}

func (s *routedProduce) Context() context.Context { return s.ctx }

func (s *routedProduce) SendMsg(m any) error {
	req, ok := m.(*nativepb.ProduceRequest)
	if !ok {
		return fmt.Errorf("client: SendMsg of %T on a produce stream", m)
	}
	return s.Send(req)
}

func (s *routedProduce) RecvMsg(any) error {
	return fmt.Errorf("client: RecvMsg is not supported on a routed produce stream; use Recv")
}

// Consume implements nativepb.MagnetarClient with a stream that finds the
// partition's owner before its first answer; after it, a break is the
// caller's to handle (it subscribes again).
func (r *routedService) Consume(ctx context.Context, opts ...grpc.CallOption) (nativepb.Magnetar_ConsumeClient, error) {
	s := &routedConsume{r: r, ctx: ctx, opts: opts}
	s.cur, s.err = s.openAt(r.addr)
	return s, nil
}

// routedConsume: Send and Recv run on different goroutines only after the
// first answer, when the stream no longer changes.
type routedConsume struct {
	r      *routedService
	ctx    context.Context
	opts   []grpc.CallOption
	cur    nativepb.Magnetar_ConsumeClient
	err    error
	cancel context.CancelFunc
	first  *nativepb.ConsumeRequest
	served bool   // the first answer came
	addr   string // of cur
}

func (s *routedConsume) openAt(addr string) (nativepb.Magnetar_ConsumeClient, error) {
	svc, err := s.r.c.svcAt(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	st, err := svc.Consume(ctx, s.opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.cancel, s.addr = cancel, addr
	return st, nil
}

func (s *routedConsume) Send(req *nativepb.ConsumeRequest) error {
	if s.first == nil {
		s.first = req
	}
	if s.cur == nil {
		return nil
	}
	if err := s.cur.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (s *routedConsume) Recv() (*nativepb.ConsumeResponse, error) {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(handshakeTimeout)
	for {
		err := s.err
		var resp *nativepb.ConsumeResponse
		var trailer metadata.MD
		if s.cur != nil {
			resp, err = s.cur.Recv()
			if err != nil {
				trailer = s.cur.Trailer()
			}
		}
		if err == nil {
			s.served = true
			return resp, nil
		}
		to, retry := retryable(err, trailer)
		if s.served || !retry || s.ctx.Err() != nil || time.Now().After(deadline) {
			s.r.c.forget(s.r.topic)
			return nil, err
		}
		failed := s.addr
		var moving *movingError
		_, isRedirect := redirect(err, trailer)
		moves := isRedirect || errors.As(err, &moving)
		if moves {
			failed = ""
		}
		addr, ok := s.r.follow(s.ctx, to, failed, &backoff)
		if !ok && !moves {
			s.r.c.forget(s.r.topic)
			return nil, err
		}
		s.cur, s.err = nil, &movingError{topic: s.r.topic}
		if addr != "" {
			s.cur, s.err = s.openAt(addr)
		}
		if s.cur != nil && s.first != nil {
			_ = s.cur.Send(s.first) // a failure shows in Recv
		}
	}
}

func (s *routedConsume) CloseSend() error {
	if s.cur == nil {
		return nil
	}
	return s.cur.CloseSend()
}

func (s *routedConsume) Header() (metadata.MD, error) {
	if s.cur == nil {
		return nil, s.err
	}
	return s.cur.Header()
}

func (s *routedConsume) Trailer() metadata.MD {
	if s.cur == nil {
		return nil
	}
	return s.cur.Trailer()
}

func (s *routedConsume) Context() context.Context { return s.ctx }

func (s *routedConsume) SendMsg(m any) error {
	req, ok := m.(*nativepb.ConsumeRequest)
	if !ok {
		return fmt.Errorf("client: SendMsg of %T on a consume stream", m)
	}
	return s.Send(req)
}

func (s *routedConsume) RecvMsg(any) error {
	return fmt.Errorf("client: RecvMsg is not supported on a routed consume stream; use Recv")
}

// splitAddrs splits a comma-separated address list.
func splitAddrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
