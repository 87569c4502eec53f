package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// Client is a Store backed by a metadata cluster over gRPC. It finds the
// leader from any of the addresses it was given, follows NotLeader
// redirects and leader changes, and resumes watches after a failover.
//
// Retries are safe by construction: a call is retried on another node only
// when it cannot have been executed (the node refused it as a follower, or
// the connection was down before it was sent), or when executing it twice
// is harmless (reads, and Put or Delete with AnyVersion). A compare-and-swap
// write whose outcome is unknown (the leader died or lost leadership while
// it was in flight) fails with ErrUnknownOutcome: read the key to find out.
//
// Get and Range are linearizable; under a context from WithStaleReads they
// may be served by any node (faster, possibly stale).
//
// Every call to a node is bounded by the call timeout (WithCallTimeout), so
// a node that stops answering (paused, overloaded, cut off) costs at most
// that long: the client then forgets it as the leader, asks every node at
// once who leads, and retries there. gRPC keepalive pings find dead
// connections that carry no call, and watch streams expect the server's
// heartbeats.
type Client struct {
	addrs       []string
	logger      *slog.Logger
	dial        []grpc.DialOption
	callTimeout time.Duration

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // watch goroutines

	mu struct {
		sync.Mutex
		conns  map[string]*grpc.ClientConn
		leader string // client address of the leader, "" when unknown
		closed bool
	}
}

var _ Store = (*Client)(nil)

// ClientOption configures Dial.
type ClientOption func(*Client)

// WithClientLogger sets the client's logger (default: discard).
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(c *Client) { c.logger = l.With("component", "metadata-client") }
}

// WithGRPCDialOptions adds gRPC dial options (credentials, interceptors).
// Without transport credentials the client uses an insecure connection.
func WithGRPCDialOptions(opts ...grpc.DialOption) ClientOption {
	return func(c *Client) { c.dial = append(c.dial, opts...) }
}

// WithCallTimeout bounds each call to a node (default DefaultCallTimeout):
// one that takes longer counts as a node that is gone. The caller's context
// still bounds the whole operation, retries included. A read, an
// unconditional write, a lease call or a watch is then retried on the
// leader; a compare-and-swap write or a Txn fails with ErrUnknownOutcome.
// It must exceed the slowest write a healthy cluster takes.
func WithCallTimeout(d time.Duration) ClientOption {
	return func(c *Client) { c.callTimeout = d }
}

// DefaultCallTimeout is the client's default bound on one call to a node.
// With the default election timeout (500ms) a new leader is serving well
// before it passes, so a paused leader costs a writer about this long.
const DefaultCallTimeout = 2 * time.Second

// The other timings of the client, fixed: they only bound how fast it
// notices a dead node and how hard it retries.
const (
	connectTimeout = time.Second            // wait for a connection to a node
	statusTimeout  = time.Second            // the Status calls of a discovery
	retryMin       = 20 * time.Millisecond  // first pause between rounds
	retryMax       = 500 * time.Millisecond // longest pause between rounds
	// keepaliveTime and keepaliveTimeout: an idle connection is pinged
	// after keepaliveTime (gRPC's smallest for clients) and closed if the
	// ping is not answered within keepaliveTimeout. The server's
	// enforcement policy (GRPCServerOptions) permits that rate.
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 3 * time.Second
)

// Dial connects to the metadata cluster whose nodes (any of them, at least
// one up) listen at addrs, and returns once it has found the leader. The
// client is used until Close; ctx bounds only the discovery.
func Dial(ctx context.Context, addrs []string, opts ...ClientOption) (*Client, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no addresses to dial", ErrInvalidConfig)
	}
	c := &Client{addrs: slices.Clone(addrs), logger: slog.New(slog.DiscardHandler), callTimeout: DefaultCallTimeout}
	c.dial = []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: connectTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
	}
	for _, o := range opts {
		o(c)
	}
	if c.callTimeout <= 0 {
		return nil, fmt.Errorf("%w: call timeout %v is not positive", ErrInvalidConfig, c.callTimeout)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.conns = map[string]*grpc.ClientConn{}
	if _, err := c.leaderAddr(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connections and every watch channel; later calls
// return ErrClosed. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	conns := c.mu.conns
	c.mu.conns = nil
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	var errs []error
	for _, cc := range conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// Get implements Store.
func (c *Client) Get(ctx context.Context, key string) (KV, bool, error) {
	var resp *metadatapb.GetResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, _ string, mc metadatapb.MetadataClient) (err error) {
		resp, err = mc.Get(ctx, &metadatapb.GetRequest{Key: key, Stale: staleReads(ctx)})
		return err
	})
	if err != nil || !resp.Found {
		return KV{}, false, err
	}
	return kvFromPB(resp.Kv), true, nil
}

// Range implements Store.
func (c *Client) Range(ctx context.Context, prefix string, opts RangeOptions) (RangeResult, error) {
	var resp *metadatapb.RangeResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, _ string, mc metadatapb.MetadataClient) (err error) {
		resp, err = mc.Range(ctx, &metadatapb.RangeRequest{Prefix: prefix, StartAfter: opts.StartAfter, Limit: int64(opts.Limit), Stale: staleReads(ctx)})
		return err
	})
	if err != nil {
		return RangeResult{}, err
	}
	res := RangeResult{More: resp.More, Revision: resp.Revision, KVs: make([]KV, len(resp.Kvs))}
	for i, kv := range resp.Kvs {
		res.KVs[i] = kvFromPB(kv)
	}
	return res, nil
}

// Put implements Store. With AnyVersion it is retried after an unknown
// outcome (so it may apply twice); otherwise an unknown outcome is
// reported as ErrUnknownOutcome.
func (c *Client) Put(ctx context.Context, key string, value []byte, expectedVersion int64) (KV, error) {
	if key == "" {
		return KV{}, ErrInvalidKey
	}
	var resp *metadatapb.PutResponse
	err := c.do(ctx, writeRetry(expectedVersion), func(ctx context.Context, _ string, mc metadatapb.MetadataClient) (err error) {
		resp, err = mc.Put(ctx, &metadatapb.PutRequest{Key: key, Value: value, ExpectedVersion: expectedVersion})
		return err
	})
	if err != nil {
		return KV{}, err
	}
	return kvFromPB(resp.Kv), nil
}

// Delete implements Store; retries as Put.
func (c *Client) Delete(ctx context.Context, key string, expectedVersion int64) error {
	if key == "" {
		return ErrInvalidKey
	}
	return c.do(ctx, writeRetry(expectedVersion), func(ctx context.Context, _ string, mc metadatapb.MetadataClient) error {
		_, err := mc.Delete(ctx, &metadatapb.DeleteRequest{Key: key, ExpectedVersion: expectedVersion})
		return err
	})
}

// Status asks the node at addr for its view of the cluster, waiting at
// most the call timeout.
func (c *Client) Status(ctx context.Context, addr string) (NodeStatus, error) {
	cc, err := c.conn(addr)
	if err != nil {
		return NodeStatus{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	resp, err := metadatapb.NewMetadataClient(cc).Status(ctx, &metadatapb.StatusRequest{})
	if err != nil {
		return NodeStatus{}, fromStatus(err)
	}
	return NodeStatus{NodeID: resp.NodeId, Leader: resp.Leader, LeaderID: resp.LeaderId, LeaderAddr: resp.LeaderAddr, Revision: resp.Revision}, nil
}

// retryPolicy says whether a call may be sent again after an unknown
// outcome.
type retryPolicy bool

const (
	retryAlways   retryPolicy = true  // reads, unconditional writes
	retryIfUnsent retryPolicy = false // compare-and-swap writes
)

func writeRetry(expectedVersion int64) retryPolicy {
	if expectedVersion == AnyVersion {
		return retryAlways
	}
	return retryIfUnsent
}

// call is one attempt of an operation on the node at addr, under a
// context that ends after the call timeout.
type call func(ctx context.Context, addr string, mc metadatapb.MetadataClient) error

// do runs call against the leader until it succeeds, fails for a reason
// retrying cannot change, or ctx ends. Each attempt is bounded by the call
// timeout; a node that does not answer within it is forgotten as the
// leader, as one whose connection broke is.
func (c *Client) do(ctx context.Context, policy retryPolicy, fn call) error {
	pause := retryMin
	redirects := 0 // redirects followed without a pause
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, pause); err != nil {
				return err
			}
			pause = min(2*pause, retryMax)
		}
		addr, err := c.leaderAddr(ctx)
		if err != nil {
			return err
		}
		cc, err := c.conn(addr)
		if err != nil {
			return err
		}
		if !connected(ctx, cc) {
			// Nothing was sent: look for the leader elsewhere.
			c.forget(addr)
			continue
		}
		d := c.attemptTimeout(ctx, policy)
		actx, cancel := context.WithTimeout(ctx, d)
		err = fromStatus(fn(actx, addr, metadatapb.NewMetadataClient(cc)))
		// The server may report the deadline before the client's timer
		// fires: either way the node did not answer in time.
		timedOut := err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(actx.Err(), context.DeadlineExceeded))
		cancel()
		// A node is forgotten as the leader for not answering only
		// within a fair time: a caller's short deadline says nothing of
		// the node, and forgetting it makes every call look for the
		// leader again.
		slow := timedOut && d >= c.callTimeout/4
		var nl *NotLeaderError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &nl):
			// Refused, not executed: safe to send anywhere.
			c.forget(addr)
			if nl.LeaderAddr != "" && nl.LeaderAddr != addr {
				c.setLeader(nl.LeaderAddr)
				if redirects < 3 { // follow it at once, unless nodes disagree
					redirects++
					attempt = -1
				}
			}
			continue
		case ctx.Err() != nil:
			if slow {
				// The node kept the call until the caller gave up: make
				// the next call find out who leads rather than wait on it.
				c.forget(addr)
			}
			return ctx.Err()
		case timedOut:
			if slow {
				c.forget(addr)
				c.logger.Warn("a metadata node did not answer in time; looking for the leader elsewhere", "addr", addr, "timeout", d)
			}
			if policy == retryAlways {
				continue
			}
			return fmt.Errorf("%w: %s did not answer within %v", ErrUnknownOutcome, addr, d)
		case errors.Is(err, ErrClosed) || errors.Is(err, ErrUnknownOutcome) || isTransport(err):
			c.forget(addr)
			if policy == retryAlways {
				continue
			}
			if errors.Is(err, ErrUnknownOutcome) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		default:
			return err
		}
	}
}

// attemptTimeout bounds one attempt: the call timeout, and for a call that
// may be retried at most half the time ctx has left, so that a node that
// does not answer leaves time to find the leader and ask it (a lease
// renewed every third of its TTL, with that much time, still reaches the
// new leader when the old one is paused).
func (c *Client) attemptTimeout(ctx context.Context, policy retryPolicy) time.Duration {
	d := c.callTimeout
	if deadline, ok := ctx.Deadline(); ok && policy == retryAlways {
		d = min(d, time.Until(deadline)/2)
	}
	return d
}

// isTransport reports whether err is a gRPC failure that carries no
// metadata error: the connection broke, the node is gone.
func isTransport(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.Aborted, codes.Unknown, codes.Internal:
		return true
	}
	return false
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// connected waits until cc is ready, for at most connectTimeout; false means
// the node is unreachable now.
func connected(ctx context.Context, cc *grpc.ClientConn) bool {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		case connectivity.Idle:
			cc.Connect()
		}
		if !cc.WaitForStateChange(ctx, s) {
			return false
		}
	}
}

// conn returns the connection to addr, creating it on first use.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if cc, ok := c.mu.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, c.dial...)
	if err != nil {
		return nil, fmt.Errorf("metadata: dial %s: %w", addr, err)
	}
	c.mu.conns[addr] = cc
	return cc, nil
}

func (c *Client) setLeader(addr string) {
	c.mu.Lock()
	c.mu.leader = addr
	c.mu.Unlock()
}

// forget drops addr as the leader if it is the one known.
func (c *Client) forget(addr string) {
	c.mu.Lock()
	if c.mu.leader == addr {
		c.mu.leader = ""
	}
	c.mu.Unlock()
}

// leaderAddr returns the leader's address, asking the nodes in turn while
// it is unknown.
func (c *Client) leaderAddr(ctx context.Context) (string, error) {
	pause := retryMin
	for {
		c.mu.Lock()
		leader, closed := c.mu.leader, c.mu.closed
		c.mu.Unlock()
		if closed {
			return "", ErrClosed
		}
		if leader != "" {
			return leader, nil
		}
		if addr := c.discover(ctx); addr != "" {
			c.setLeader(addr)
			c.logger.Debug("found the metadata leader", "addr", addr)
			return addr, nil
		}
		if err := c.sleep(ctx, pause); err != nil {
			return "", fmt.Errorf("metadata: no leader found at %v: %w", c.addrs, err)
		}
		pause = min(2*pause, retryMax)
	}
}

// discover asks every node at once who leads and returns the first that
// says it does, so a node that is paused or cut off costs nothing while
// another answers. A node may name a leader the client was not given (it
// knows one address only): that answer is taken when no node claims to
// lead. A leader named but among the addresses asked has not claimed it
// itself (it is gone, or no longer leads), so it is not taken. "" if none
// is found within statusTimeout.
func (c *Client) discover(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	type answer struct {
		addr string
		st   NodeStatus
		err  error
	}
	answers := make(chan answer, len(c.addrs))
	var wg sync.WaitGroup
	defer func() {
		cancel() // the calls still out return at once
		wg.Wait()
	}()
	for _, addr := range c.addrs {
		wg.Go(func() {
			st, err := c.Status(ctx, addr)
			answers <- answer{addr, st, err}
		})
	}
	named := ""
	for range c.addrs {
		a := <-answers
		switch {
		case a.err != nil:
		case a.st.Leader:
			return a.addr
		case a.st.LeaderAddr != "" && !slices.Contains(c.addrs, a.st.LeaderAddr):
			named = a.st.LeaderAddr
		}
	}
	return named
}

// remoteError is a metadata error that came over the wire: its text is the
// server's, errors.Is matches the sentinel, and status.FromError still sees
// the gRPC status.
type remoteError struct {
	sentinel error
	st       *status.Status
}

func (e *remoteError) Error() string              { return e.st.Message() }
func (e *remoteError) Unwrap() error              { return e.sentinel }
func (e *remoteError) GRPCStatus() *status.Status { return e.st }

// fromStatus converts a gRPC error back to a metadata error: the sentinel
// named by its ErrorDetail (a *NotLeaderError for NOT_LEADER), or the
// context's error for CANCELED and DEADLINE_EXCEEDED; any other status is
// returned as is.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		det, ok := d.(*metadatapb.ErrorDetail)
		if !ok {
			continue
		}
		if det.Reason == metadatapb.ErrorReason_ERROR_REASON_NOT_LEADER {
			return &NotLeaderError{LeaderID: det.LeaderId, LeaderAddr: det.LeaderAddr}
		}
		for _, w := range wireErrors {
			if w.reason == det.Reason {
				return &remoteError{sentinel: w.err, st: st}
			}
		}
	}
	switch st.Code() {
	case codes.Canceled:
		return &remoteError{sentinel: context.Canceled, st: st}
	case codes.DeadlineExceeded:
		return &remoteError{sentinel: context.DeadlineExceeded, st: st}
	}
	return err
}
