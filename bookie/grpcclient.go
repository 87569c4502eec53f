package bookie

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie/bookiepb"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// RemoteClient is a Client that talks to a bookie shard over gRPC. It is
// safe for concurrent use, and concurrent calls are multiplexed over one
// HTTP/2 connection per replica: many appends can be in flight at once, so
// they share the shard's Raft batches (group commit) as in-process calls do.
//
// Given a shard's replicas (DialShard), it sends every call to the leader:
// it learns the leader from the replicas' NotLeader answers, follows them,
// and looks again when the leader goes away. A call is sent again (to the
// new leader, after a pause while an election runs) only when it surely was
// not executed -- a replica refused it as a follower, or no connection was
// up to send it on -- or when executing it twice is harmless: Read, Info
// and Seal (sealing a sealed segment returns its state). An Append,
// CreateSegment or DeleteSegment whose outcome is unknown (the connection
// broke or the leader lost its leadership while it was in flight) fails
// with ErrUnknownOutcome; a writer then seals the segment, which tells it
// where the segment really ends. Retries go on until ctx ends, for at most
// 15 seconds after the first failure (then the last error is returned).
// A client of one address (Dial) follows NotLeader redirects but does not
// retry after a broken connection or a closing replica: it returns that
// error as it is, as there is no other replica to try.
//
// Errors are the bookie sentinel errors (errors.Is works) carried by the
// status's ErrorDetail, ErrUnknownOutcome, context.Canceled and
// context.DeadlineExceeded, or the gRPC status error itself for a call
// that failed for another reason.
type RemoteClient struct {
	shard     string // sent with every request; "" for a process's only shard
	conns     *Conns
	ownsConns bool                  // DialShard's: Close closes them
	addrs     []string              // the replicas given to DialShard
	fixed     bookiepb.BookieClient // NewRemoteClient's: one connection, no leader-following
	closed    atomic.Bool
	next      atomic.Uint64 // round robin over addrs while no leader is known

	mu struct {
		sync.Mutex
		leader string // gRPC address of the leader, "" when unknown
	}
}

var _ Client = (*RemoteClient)(nil)

// Timings of leader-following, fixed: they only bound how fast the client
// notices a dead replica and how hard it retries during an election.
const (
	connectTimeout = 2 * time.Second        // wait for a connection to a replica
	retryMin       = 10 * time.Millisecond  // first pause between rounds
	retryMax       = 250 * time.Millisecond // longest pause between rounds
	maxRedirects   = 3                      // redirects followed without a pause
	retryWindow    = 15 * time.Second       // longest retrying after a first failure, if ctx allows
)

// Dial connects to the bookie gRPC service at addr (host:port) and waits
// until the connection is ready or ctx is done. It is DialShard with one
// address: the client still follows the shard's leader if addr is a
// follower that names it.
func Dial(ctx context.Context, addr string, opts ...grpc.DialOption) (*RemoteClient, error) {
	return DialShard(ctx, []string{addr}, opts...)
}

// DialShard returns a client of the shard whose replicas serve gRPC at
// addrs (processes hosting that one shard), once a connection to one of
// them is ready (or ctx is done). Without options it uses plaintext; opts
// are applied after the defaults, so they can add transport credentials or
// a custom dialer. Connections reconnect by themselves after failures;
// Close closes them. To reach several shards over shared connections, use
// Conns.
func DialShard(ctx context.Context, addrs []string, opts ...grpc.DialOption) (*RemoteClient, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no bookie addresses to dial", ErrInvalidConfig)
	}
	conns := NewConns(opts...)
	c := conns.Shard("", addrs)
	c.ownsConns = true
	if err := conns.waitAny(ctx, addrs); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Conns is a set of gRPC connections to bookie processes, one per address,
// shared by the clients of every shard those processes host (Shard). It is
// safe for concurrent use.
type Conns struct {
	dial []grpc.DialOption
	mu   struct {
		sync.Mutex
		conns map[string]*grpc.ClientConn // nil once closed
	}
}

// NewConns returns an empty set of connections; they are made on first
// use. Without options they are plaintext; opts are applied after the
// defaults, so they can add transport credentials or a custom dialer.
func NewConns(opts ...grpc.DialOption) *Conns {
	p := &Conns{dial: append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(grpcStreamWindow),
		grpc.WithInitialConnWindowSize(grpcConnWindow),
		experimental.WithBufferPool(grpcBufferPool),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxGRPCMessageSize),
			grpc.MaxCallSendMsgSize(MaxGRPCMessageSize),
		),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	}, opts...)}
	p.mu.conns = map[string]*grpc.ClientConn{}
	return p
}

// Shard returns a client of the shard with the given ID whose replicas
// serve gRPC at addrs, over the set's connections. It does not wait for
// a connection; its calls do. Closing it leaves the connections open.
func (p *Conns) Shard(id string, addrs []string) *RemoteClient {
	return &RemoteClient{shard: id, conns: p, addrs: slices.Clone(addrs)}
}

// Close closes every connection; the clients using them fail their calls.
func (p *Conns) Close() error {
	p.mu.Lock()
	conns := p.mu.conns
	p.mu.conns = nil
	p.mu.Unlock()
	var errs []error
	for _, cc := range conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// conn returns the connection to addr, creating it on first use.
func (p *Conns) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.conns == nil {
		return nil, ErrClosed
	}
	if cc, ok := p.mu.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, p.dial...)
	if err != nil {
		return nil, fmt.Errorf("bookie: dialing %s: %w", addr, err)
	}
	p.mu.conns[addr] = cc
	return cc, nil
}

// waitAny connects to addrs and waits until one connection is ready or
// ctx is done.
func (p *Conns) waitAny(ctx context.Context, addrs []string) error {
	var ccs []*grpc.ClientConn
	for _, a := range addrs {
		cc, err := p.conn(a)
		if err != nil {
			return err
		}
		cc.Connect()
		ccs = append(ccs, cc)
	}
	// Poll the states: WaitForStateChange watches one connection at a time.
	for {
		for _, cc := range ccs {
			if cc.GetState() == connectivity.Ready {
				return nil
			}
		}
		waitCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		s := ccs[0].GetState()
		ccs[0].WaitForStateChange(waitCtx, s)
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bookie: dialing %s (connection %s): %w", strings.Join(addrs, ","), s, err)
		}
	}
}

// NewRemoteClient returns a RemoteClient over a connection the caller
// owns (and closes). Its calls should allow messages of
// MaxGRPCMessageSize, as Dial's do. It talks to that one server only: no
// leader-following, no retries.
func NewRemoteClient(cc grpc.ClientConnInterface) *RemoteClient {
	return &RemoteClient{fixed: bookiepb.NewBookieClient(cc)}
}

// Leader returns the gRPC address of the replica the client believes is
// the shard's leader, "" when it does not know.
func (c *RemoteClient) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.leader
}

// Close makes later calls fail with ErrClosed and closes the connections
// DialShard made (not those of a Conns it came from); calls in flight on
// them fail. Close is idempotent.
func (c *RemoteClient) Close() error {
	if c.closed.Swap(true) || !c.ownsConns {
		return nil
	}
	return c.conns.Close()
}

// wrap converts a call's error to a bookie error.
func (c *RemoteClient) wrap(err error) error {
	if c.closed.Load() {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fromStatus(err)
}

// retryPolicy says whether a call may be sent again after an unknown
// outcome.
type retryPolicy bool

const (
	retryAlways   retryPolicy = true  // reads, Seal
	retryIfUnsent retryPolicy = false // Append, CreateSegment, DeleteSegment
)

// do runs call against the shard's leader until it succeeds, fails for a
// reason retrying cannot change, or ctx ends.
func (c *RemoteClient) do(ctx context.Context, policy retryPolicy, call func(context.Context, bookiepb.BookieClient) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.fixed != nil {
		if err := call(ctx, c.fixed); err != nil {
			return c.wrap(err)
		}
		return nil
	}
	pause := retryMin
	redirects := 0
	replicated := len(c.addrs) > 1
	var giveUp time.Time
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if giveUp.IsZero() {
				giveUp = time.Now().Add(retryWindow)
			} else if lastErr != nil && time.Now().After(giveUp) {
				return lastErr
			}
			if err := sleepCtx(ctx, pause); err != nil {
				return err
			}
			pause = min(2*pause, retryMax)
		}
		addr := c.target()
		cc, err := c.conns.conn(addr)
		if err != nil {
			return err
		}
		if !connected(ctx, cc) {
			// Nothing was sent: look for the leader elsewhere.
			c.forget(addr)
			if err := ctx.Err(); err != nil {
				return err
			}
			lastErr = status.Errorf(codes.Unavailable, "bookie: no connection to %s (%s)", addr, cc.GetState())
			if !replicated && addr == c.addrs[0] {
				return lastErr
			}
			continue
		}
		err = call(ctx, bookiepb.NewBookieClient(cc))
		if err == nil {
			return nil
		}
		err = c.wrap(err)
		lastErr = err
		var nl *NotLeaderError
		switch {
		case errors.As(err, &nl):
			// Refused, not executed: safe to send anywhere.
			c.forget(addr)
			if nl.LeaderAddr != "" && nl.LeaderAddr != addr {
				c.setLeader(nl.LeaderAddr)
				if redirects < maxRedirects { // follow it at once, unless replicas disagree
					redirects++
					attempt = -1
				}
			}
			continue
		case ctx.Err() != nil:
			return err
		case errors.Is(err, ErrClosed) && c.closed.Load():
			return err
		case !replicated:
			return err
		case errors.Is(err, ErrClosed) && !errors.Is(err, ErrUnknownOutcome):
			// The replica is shutting down and refused the call before
			// proposing it: try the others.
			c.forget(addr)
			continue
		case errors.Is(err, ErrUnknownOutcome) || isTransport(err):
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

// isTransport reports a gRPC failure that carries no bookie error: the
// connection broke, the replica is gone.
func isTransport(err error) bool {
	var re *remoteError
	if errors.As(err, &re) {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	return st.Code() == codes.Unavailable || st.Code() == codes.Unknown
}

// target is where the next attempt goes: the leader if known, else the
// next replica in turn.
func (c *RemoteClient) target() string {
	c.mu.Lock()
	leader := c.mu.leader
	c.mu.Unlock()
	if leader != "" {
		return leader
	}
	return c.addrs[int(c.next.Add(1)-1)%len(c.addrs)]
}

func (c *RemoteClient) setLeader(addr string) {
	c.mu.Lock()
	c.mu.leader = addr
	c.mu.Unlock()
}

// forget drops addr as the leader.
func (c *RemoteClient) forget(addr string) {
	c.mu.Lock()
	if c.mu.leader == addr {
		c.mu.leader = ""
	}
	c.mu.Unlock()
}

// connected waits until cc is ready, for at most connectTimeout; false
// means the replica is unreachable now.
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

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CreateSegment implements Client.
func (c *RemoteClient) CreateSegment(ctx context.Context, segment uint64, startOffset int64, epoch uint64) error {
	return c.do(ctx, retryIfUnsent, func(ctx context.Context, rpc bookiepb.BookieClient) error {
		_, err := rpc.CreateSegment(ctx, &bookiepb.CreateSegmentRequest{Shard: c.shard, Segment: segment, StartOffset: startOffset, Epoch: epoch})
		return err
	})
}

// Append implements Client. The entries are marshaled straight from the
// caller's slices (no copy besides the marshaled message); the caller may
// reuse them once Append returns.
func (c *RemoteClient) Append(ctx context.Context, req AppendRequest) (int64, error) {
	var resp *bookiepb.AppendResponse
	err := c.do(ctx, retryIfUnsent, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
		resp, err = rpc.Append(ctx, &bookiepb.AppendRequest{Shard: c.shard, Segment: req.Segment, Epoch: req.Epoch, Entries: req.Entries})
		return err
	})
	if err != nil {
		return 0, err
	}
	return resp.GetNextOffset(), nil
}

// Seal implements Client.
func (c *RemoteClient) Seal(ctx context.Context, segment uint64, epoch uint64, startOffset int64) (SegmentInfo, error) {
	var resp *bookiepb.SealResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
		resp, err = rpc.Seal(ctx, &bookiepb.SealRequest{Shard: c.shard, Segment: segment, Epoch: epoch, StartOffset: startOffset})
		return err
	})
	if err != nil {
		return SegmentInfo{}, err
	}
	return infoFromPB(resp.GetInfo()), nil
}

// Read implements Client. Every entry's CRC is verified again on arrival
// and must match the offsets the server sent with it, so corruption
// anywhere between the shard's disk and the caller is reported as
// ErrCorrupt. The server caps maxBytes at 16 MiB.
func (c *RemoteClient) Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error) {
	var resp *bookiepb.ReadResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
		resp, err = rpc.Read(ctx, &bookiepb.ReadRequest{Shard: c.shard, Segment: segment, FromOffset: fromOffset, MaxBytes: int64(maxBytes), FollowerRead: followerReads(ctx)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return entriesFromPB(segment, resp.GetEntries())
}

// entriesFromPB checks and converts a ReadResponse's entries. The data
// slices are the ones unmarshaling allocated; they are not copied again.
func entriesFromPB(segment uint64, pbs []*bookiepb.Entry) ([]Entry, error) {
	if len(pbs) == 0 {
		return nil, nil
	}
	out := make([]Entry, len(pbs))
	for i, e := range pbs {
		h, err := record.VerifyCRC(e.GetData())
		if err != nil || h.Size() != len(e.GetData()) || h.BaseOffset != e.GetBaseOffset() || h.LastOffset() != e.GetLastOffset() {
			return nil, fmt.Errorf("%w: segment %d: entry %d..%d as received: %v", ErrCorrupt, segment, e.GetBaseOffset(), e.GetLastOffset(), err)
		}
		out[i] = Entry{BaseOffset: e.GetBaseOffset(), LastOffset: e.GetLastOffset(), Data: e.GetData()}
	}
	return out, nil
}

// Info implements Client.
func (c *RemoteClient) Info(ctx context.Context, segment uint64) (SegmentInfo, error) {
	var resp *bookiepb.InfoResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
		resp, err = rpc.Info(ctx, &bookiepb.InfoRequest{Shard: c.shard, Segment: segment, FollowerRead: followerReads(ctx)})
		return err
	})
	if err != nil {
		return SegmentInfo{}, err
	}
	return infoFromPB(resp.GetInfo()), nil
}

// DeleteSegment implements Client.
func (c *RemoteClient) DeleteSegment(ctx context.Context, segment uint64) error {
	return c.do(ctx, retryIfUnsent, func(ctx context.Context, rpc bookiepb.BookieClient) error {
		_, err := rpc.Delete(ctx, &bookiepb.DeleteRequest{Shard: c.shard, Segment: segment})
		return err
	})
}

// ListSegments implements Client.
func (c *RemoteClient) ListSegments(ctx context.Context, after uint64, limit int) ([]SegmentInfo, error) {
	var resp *bookiepb.ListResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
		resp, err = rpc.List(ctx, &bookiepb.ListRequest{Shard: c.shard, After: after, Limit: int32(listLimit(limit)), FollowerRead: followerReads(ctx)})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]SegmentInfo, len(resp.GetSegments()))
	for i, p := range resp.GetSegments() {
		out[i] = infoFromPB(p)
	}
	return out, nil
}

func infoFromPB(p *bookiepb.SegmentInfo) SegmentInfo {
	var state SegmentState
	switch p.GetState() {
	case bookiepb.SegmentState_SEGMENT_STATE_OPEN:
		state = SegmentOpen
	case bookiepb.SegmentState_SEGMENT_STATE_SEALED:
		state = SegmentSealed
	}
	return SegmentInfo{
		ID: p.GetId(), State: state, Epoch: p.GetEpoch(),
		StartOffset: p.GetStartOffset(), NextOffset: p.GetNextOffset(), Bytes: p.GetBytes(),
	}
}
