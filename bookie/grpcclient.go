package bookie

import (
	"cmp"
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
// Every attempt of a call on a replica has a deadline (ClientConfig's
// WriteTimeout or ReadTimeout). A replica that misses it is taken for
// gone, like one whose connection broke: the client passes over it for as
// long again and looks for the leader among the others (not following a
// follower that still names it). An Append, CreateSegment or
// DeleteSegment that timed out fails with ErrUnknownOutcome wrapping
// ErrTimeout; a Seal, Info or ListSegments is sent again. A Read that the
// leader fails itself -- no answer in time, or an error reading its own
// storage (ErrCorrupt, an internal error: a corrupt log segment) -- is
// served by the other replicas as a follower read, which never takes a
// lagging replica's "no entries" for the end of a segment (readReplicas).
//
// Errors are the bookie sentinel errors (errors.Is works) carried by the
// status's ErrorDetail, ErrUnknownOutcome, ErrTimeout, context.Canceled
// and context.DeadlineExceeded (the caller's ctx), or the gRPC status
// error itself for a call that failed for another reason.
type RemoteClient struct {
	shard     string // sent with every request; "" for a process's only shard
	conns     *Conns
	ownsConns bool                  // DialShard's: Close closes them
	addrs     []string              // the replicas given to DialShard
	fixed     bookiepb.BookieClient // NewRemoteClient's: one connection, no leader-following
	closed    atomic.Bool
	next      atomic.Uint64 // round robin over addrs while no leader is known

	cfg ClientConfig // the deadlines of its calls

	mu struct {
		sync.Mutex
		leader string // gRPC address of the leader, "" when unknown
		// suspects are replicas that did not answer a call in time, with
		// when the client tries them again.
		suspects map[string]time.Time
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
	cfg  ClientConfig // after EnsureDefaults
	dial []grpc.DialOption
	mu   struct {
		sync.Mutex
		conns map[string]*grpc.ClientConn // nil once closed
	}
}

// NewConns is NewConnsConfig with DefaultClientConfig.
func NewConns(opts ...grpc.DialOption) *Conns {
	return NewConnsConfig(DefaultClientConfig(), opts...)
}

// NewConnsConfig returns an empty set of connections whose calls have the
// deadlines and keepalive of cfg (unset fields: the defaults); they are
// made on first use. Without options they are plaintext; opts are applied
// after the defaults, so they can add transport credentials or a custom
// dialer.
func NewConnsConfig(cfg ClientConfig, opts ...grpc.DialOption) *Conns {
	cfg.EnsureDefaults()
	p := &Conns{cfg: cfg, dial: append([]grpc.DialOption{
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
		cfg.keepalive(),
	}, opts...)}
	p.mu.conns = map[string]*grpc.ClientConn{}
	return p
}

// Shard returns a client of the shard with the given ID whose replicas
// serve gRPC at addrs, over the set's connections. It does not wait for
// a connection; its calls do. Closing it leaves the connections open.
func (p *Conns) Shard(id string, addrs []string) *RemoteClient {
	return &RemoteClient{shard: id, conns: p, addrs: slices.Clone(addrs), cfg: p.cfg}
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
	return &RemoteClient{fixed: bookiepb.NewBookieClient(cc), cfg: DefaultClientConfig()}
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

// retryPolicy says what the client does after a call's attempt on a
// replica failed in a way that says nothing about the call: no answer in
// time, a broken connection, a replica shutting down.
type retryPolicy int

const (
	// retryIfUnsent (Append, CreateSegment, DeleteSegment): send it again
	// only if it surely did not run; else ErrUnknownOutcome.
	retryIfUnsent retryPolicy = iota
	// retryAlways (Seal, Info, ListSegments): harmless to repeat; send it
	// to the leader again.
	retryAlways
	// retryRead (Read): as retryAlways, but a replica that fails the read
	// itself (no answer in time, an unreadable log: replicaFault) hands it
	// to the other replicas at once (readReplicas).
	retryRead
)

// call is one RPC of a RemoteClient method on one replica.
type call func(context.Context, bookiepb.BookieClient) error

// do runs fn against the shard's leader until it succeeds, fails for a
// reason retrying cannot change, or ctx ends. Each attempt on a replica
// has the deadline timeout.
func (c *RemoteClient) do(ctx context.Context, policy retryPolicy, timeout time.Duration, fn call) error {
	_, err := c.run(ctx, policy, timeout, fn)
	return err
}

// run is do; it also returns the replica of the last attempt ("" if
// none was made, or over NewRemoteClient's connection).
func (c *RemoteClient) run(ctx context.Context, policy retryPolicy, timeout time.Duration, fn call) (string, error) {
	if c.closed.Load() {
		return "", ErrClosed
	}
	if c.fixed != nil {
		err := c.attempt(ctx, "", timeout, c.fixed, fn)
		if errors.Is(err, ErrTimeout) && policy == retryIfUnsent {
			err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return "", err
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
				return "", lastErr
			}
			if err := sleepCtx(ctx, pause); err != nil {
				return "", err
			}
			pause = min(2*pause, retryMax)
		}
		addr := c.target()
		cc, err := c.conns.conn(addr)
		if err != nil {
			return addr, err
		}
		if !connected(ctx, cc) {
			// Nothing was sent: look for the leader elsewhere.
			c.forget(addr)
			if err := ctx.Err(); err != nil {
				return addr, err
			}
			lastErr = status.Errorf(codes.Unavailable, "bookie: no connection to %s (%s)", addr, cc.GetState())
			if !replicated && addr == c.addrs[0] {
				return addr, lastErr
			}
			continue
		}
		err = c.attempt(ctx, addr, timeout, bookiepb.NewBookieClient(cc), fn)
		if err == nil {
			c.trust(addr)
			return addr, nil
		}
		lastErr = err
		var nl *NotLeaderError
		switch {
		case errors.As(err, &nl):
			// Refused, not executed: safe to send anywhere. A redirect to
			// a replica that just timed out is not followed: a follower
			// names the old leader until it notices it is gone.
			c.forget(addr)
			if nl.LeaderAddr != "" && nl.LeaderAddr != addr && !c.suspected(nl.LeaderAddr) {
				c.setLeader(nl.LeaderAddr)
				if redirects < maxRedirects { // follow it at once, unless replicas disagree
					redirects++
					attempt = -1
				}
			}
			continue
		case ctx.Err() != nil:
			return addr, err
		case errors.Is(err, ErrClosed) && c.closed.Load():
			return addr, err
		case errors.Is(err, ErrTimeout):
			// Taken for gone (paused, or cut off): the calls after this
			// one look for the leader among the other replicas.
			c.suspect(addr, timeout)
			switch {
			case policy == retryIfUnsent:
				return addr, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
			case policy == retryRead || !replicated:
				return addr, err
			}
			continue
		case policy == retryRead && replicaFault(err):
			return addr, err
		case !replicated:
			return addr, err
		case errors.Is(err, ErrClosed) && !errors.Is(err, ErrUnknownOutcome):
			// The replica is shutting down and refused the call before
			// proposing it: try the others.
			c.forget(addr)
			continue
		case errors.Is(err, ErrUnknownOutcome) || isTransport(err):
			c.forget(addr)
			if policy != retryIfUnsent {
				continue
			}
			if errors.Is(err, ErrUnknownOutcome) {
				return addr, err
			}
			return addr, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		default:
			return addr, err
		}
	}
}

// attempt makes one call on one replica (addr, for errors) with the
// deadline timeout. A replica that does not answer in time fails it with
// ErrTimeout, not context.DeadlineExceeded, which is the caller's own
// deadline passing.
func (c *RemoteClient) attempt(ctx context.Context, addr string, timeout time.Duration, rpc bookiepb.BookieClient, fn call) error {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := fn(actx, rpc)
	if err == nil {
		return nil
	}
	if ctx.Err() == nil && actx.Err() != nil && status.Code(err) == codes.DeadlineExceeded {
		return fmt.Errorf("%w: %s did not answer within %v", ErrTimeout, cmp.Or(addr, "the bookie"), timeout)
	}
	return c.wrap(err)
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

// replicaFault reports a Read that failed because of the replica asked,
// which another may not share: it did not answer in time, or it could not
// read what it stores (ErrCorrupt, or an error no table row explains: an
// unreadable log segment, a failing disk).
func replicaFault(err error) bool {
	var re *remoteError
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrCorrupt):
		return true
	case errors.As(err, &re):
		return false // the replica's answer, a bookie error
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	return st.Code() == codes.Internal || st.Code() == codes.Unknown || st.Code() == codes.DataLoss
}

// target is where the next attempt goes: the leader if known, else the
// next replica in turn, passing over those under suspicion while others
// are not.
func (c *RemoteClient) target() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.leader != "" {
		return c.mu.leader
	}
	now := time.Now()
	for range c.addrs {
		if a := c.addrs[int(c.next.Add(1)-1)%len(c.addrs)]; !c.suspectedLocked(a, now) {
			return a
		}
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

// suspect drops addr as the leader and passes over it for d: it did not
// answer a call in time.
func (c *RemoteClient) suspect(addr string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.leader == addr {
		c.mu.leader = ""
	}
	if c.mu.suspects == nil {
		c.mu.suspects = map[string]time.Time{}
	}
	c.mu.suspects[addr] = time.Now().Add(d)
}

// trust lifts a suspicion of addr: it answered.
func (c *RemoteClient) trust(addr string) {
	c.mu.Lock()
	delete(c.mu.suspects, addr)
	c.mu.Unlock()
}

func (c *RemoteClient) suspected(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.suspectedLocked(addr, time.Now())
}

func (c *RemoteClient) suspectedLocked(addr string, now time.Time) bool {
	until, ok := c.mu.suspects[addr]
	if ok && now.After(until) {
		delete(c.mu.suspects, addr)
		return false
	}
	return ok
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
	return c.do(ctx, retryIfUnsent, c.cfg.WriteTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) error {
		_, err := rpc.CreateSegment(ctx, &bookiepb.CreateSegmentRequest{Shard: c.shard, Segment: segment, StartOffset: startOffset, Epoch: epoch})
		return err
	})
}

// Append implements Client. The entries are marshaled straight from the
// caller's slices (no copy besides the marshaled message); the caller may
// reuse them once Append returns.
func (c *RemoteClient) Append(ctx context.Context, req AppendRequest) (int64, error) {
	var resp *bookiepb.AppendResponse
	err := c.do(ctx, retryIfUnsent, c.cfg.WriteTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
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
	err := c.do(ctx, retryAlways, c.cfg.WriteTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
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
//
// A read the leader fails itself (it does not answer in time, or cannot
// read its log: replicaFault) is served by the other replicas
// (readReplicas); a ctx under WithFollowerReads starts there.
func (c *RemoteClient) Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error) {
	var entries []Entry
	addr, err := c.run(ctx, retryRead, c.cfg.ReadTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
		entries, err = readRPC(ctx, rpc, c.shard, segment, fromOffset, maxBytes)
		return err
	})
	if err == nil || len(c.addrs) < 2 || addr == "" || ctx.Err() != nil || c.closed.Load() || !replicaFault(err) {
		return entries, err
	}
	return c.readReplicas(ctx, segment, fromOffset, maxBytes, addr, err)
}

func readRPC(ctx context.Context, rpc bookiepb.BookieClient, shard string, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error) {
	resp, err := rpc.Read(ctx, &bookiepb.ReadRequest{Shard: shard, Segment: segment, FromOffset: fromOffset, MaxBytes: int64(maxBytes), FollowerRead: followerReads(ctx)})
	if err != nil {
		return nil, err
	}
	return entriesFromPB(segment, resp.GetEntries())
}

// errBehind is a replica's empty answer to a read that it cannot vouch
// for: the segment is not sealed there, so entries may exist that it has
// not applied.
var errBehind = errors.New("bookie: the replica may not have applied the entries asked for")

// readReplicas serves a Read that the replica at failed could not (cause)
// from the shard's other replicas, as follower reads: whatever a replica
// has applied is committed and final, so any entries it returns will do.
// An empty answer is taken only from a replica on which the segment is
// sealed and has nothing at or after fromOffset: a lagging replica may
// lack acknowledged entries of an open segment (or a sealed one's seal),
// and its "nothing there" would read as the segment's end. If no replica
// serves the read, it fails with cause.
func (c *RemoteClient) readReplicas(ctx context.Context, segment uint64, fromOffset int64, maxBytes int, failed string, cause error) ([]Entry, error) {
	ctx = WithFollowerReads(ctx)
	var errs []error
	for _, addr := range c.others(failed) {
		var entries []Entry
		err := c.on(ctx, addr, c.cfg.ReadTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
			entries, err = readRPC(ctx, rpc, c.shard, segment, fromOffset, maxBytes)
			return err
		})
		if err == nil && len(entries) == 0 {
			var info *bookiepb.InfoResponse
			err = c.on(ctx, addr, c.cfg.ReadTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
				info, err = rpc.Info(ctx, &bookiepb.InfoRequest{Shard: c.shard, Segment: segment, FollowerRead: true})
				return err
			})
			if si := infoFromPB(info.GetInfo()); err == nil && (si.State != SegmentSealed || max(fromOffset, si.StartOffset) < si.NextOffset) {
				// Entries appeared since, or may exist beyond what it has.
				err = fmt.Errorf("%w: segment %d is %v there, next offset %d", errBehind, segment, si.State, si.NextOffset)
			}
		}
		if err == nil {
			return entries, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, fmt.Errorf("%w (no other replica served the read: %v)", cause, errors.Join(errs...))
}

// others returns the replicas but skip, those under suspicion last.
func (c *RemoteClient) others(skip string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var ok, suspects []string
	for _, a := range c.addrs {
		switch {
		case a == skip:
		case c.suspectedLocked(a, now):
			suspects = append(suspects, a)
		default:
			ok = append(ok, a)
		}
	}
	return append(ok, suspects...)
}

// on makes one attempt of fn on the replica at addr, if it is reachable.
func (c *RemoteClient) on(ctx context.Context, addr string, timeout time.Duration, fn call) error {
	cc, err := c.conns.conn(addr)
	if err != nil {
		return err
	}
	if !connected(ctx, cc) {
		return status.Errorf(codes.Unavailable, "bookie: no connection to %s (%s)", addr, cc.GetState())
	}
	err = c.attempt(ctx, addr, timeout, bookiepb.NewBookieClient(cc), fn)
	if errors.Is(err, ErrTimeout) {
		c.suspect(addr, timeout)
	}
	return err
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
	err := c.do(ctx, retryAlways, c.cfg.ReadTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
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
	return c.do(ctx, retryIfUnsent, c.cfg.WriteTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) error {
		_, err := rpc.Delete(ctx, &bookiepb.DeleteRequest{Shard: c.shard, Segment: segment})
		return err
	})
}

// ListSegments implements Client.
func (c *RemoteClient) ListSegments(ctx context.Context, after uint64, limit int) ([]SegmentInfo, error) {
	var resp *bookiepb.ListResponse
	err := c.do(ctx, retryAlways, c.cfg.ReadTimeout, func(ctx context.Context, rpc bookiepb.BookieClient) (err error) {
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
