package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/raftstore"
)

// ErrClosed is returned by calls on a Node that has been closed.
var ErrClosed = errors.New("raftnode: closed")

// Node is one running Raft node. Its methods are safe for concurrent use.
type Node struct {
	raft         *raft.Raft
	logs         raft.LogStore // the log store, without the cache in front
	logger       *slog.Logger
	closeTimeout time.Duration
	trans        closableTransport

	// readyTerm is the last term in which this node, as leader, completed
	// a Barrier: every entry of earlier terms is then applied, which
	// VerifyLeader needs for a linearizable read.
	readyTerm atomic.Uint64
	// abandoned is closed when Close gave up waiting for the futures in
	// flight; their waiters then return ErrClosed.
	abandoned chan struct{}

	// inflight counts the Raft futures this Node is waiting for (Apply and
	// Barrier calls, and the goroutines that wait on behalf of callers whose
	// context ended). Close waits for it to drain before shutting Raft down:
	// hashicorp/raft can leave a future unresolved forever if it shuts down
	// while the future is queued (hashicorp/raft#498), so Node never shuts
	// down under a pending future.
	inflight sync.WaitGroup
	mu       struct {
		sync.Mutex
		closed bool // no new futures once set
	}
	closeOnce sync.Once
	closeErr  error
}

// Open starts the node, bootstrapping the initial voters (Config.Peers, or
// this node alone) on the first start. It returns once a leader is known
// and, if this node is that leader, it has applied every committed entry (a
// Barrier). A node whose peers are unreachable waits: if ctx ends first, the
// node is shut down and ctx's error returned.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := parseLevel(cfg.LogLevel) // checked by Validate
	logger := cfg.Logger.With("raft_id", cfg.ID)
	hl := newHCLogAdapter(logger, level)

	logs, stable := cfg.LogStore, cfg.StableStore
	if logs == nil {
		store, err := raftstore.New(cfg.DB, cfg.LogPrefix)
		if err != nil {
			return nil, err
		}
		logs, stable = store, store
	}
	stored := logs
	if cfg.LogCacheSize > 0 {
		cached, err := raft.NewLogCache(cfg.LogCacheSize, logs)
		if err != nil {
			return nil, fmt.Errorf("raftnode: %w", err)
		}
		logs = cached
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotsRetained, hl.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("raftnode: snapshot store: %w", err)
	}
	var snaps raft.SnapshotStore = fileSnaps
	if cfg.WrapSnapshots != nil {
		snaps = cfg.WrapSnapshots(snaps)
	}
	addr, trans, err := newTransport(&cfg, hl)
	if err != nil {
		return nil, err
	}
	rc := cfg.raftConfig(hl)

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	if !existing {
		boot := cfg.voters(addr)
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans, boot); err != nil {
			_ = trans.Close()
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
		logger.Info("bootstrapped the raft configuration", "voters", len(boot.Servers))
	}
	r, err := raft.NewRaft(rc, cfg.FSM, logs, stable, snaps, trans)
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	n := &Node{raft: r, logs: stored, logger: logger, closeTimeout: cfg.CloseTimeout, trans: trans, abandoned: make(chan struct{})}
	if err := n.waitReady(ctx); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// newTransport returns a network transport over cfg.StreamLayer if set,
// the in-memory transport for a node without a bind address, else a TCP
// transport listening on it.
func newTransport(cfg *Config, hl *hclogAdapter) (raft.ServerAddress, closableTransport, error) {
	if cfg.StreamLayer != nil {
		trans := raft.NewNetworkTransportWithLogger(cfg.StreamLayer, 3, cfg.TransportTimeout, hl.Named("transport"))
		return trans.LocalAddr(), trans, nil
	}
	if cfg.BindAddr == "" {
		// A fixed address (the ID) keeps the stored configuration stable
		// across restarts; the in-memory transport only talks to transports
		// it is connected to, so the address need not be unique in the
		// process.
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.ID))
		return addr, trans, nil
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr) // checked by Validate
	if err != nil {
		return "", nil, fmt.Errorf("raftnode: advertise address: %w", err)
	}
	trans, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, adv, 3, cfg.TransportTimeout, hl.Named("transport"))
	if err != nil {
		return "", nil, fmt.Errorf("raftnode: listen on %s: %w", cfg.BindAddr, err)
	}
	return trans.LocalAddr(), trans, nil
}

type closableTransport interface {
	raft.Transport
	Close() error
}

// waitReady waits until a leader is known and, if it is this node, a
// Barrier has gone through, so every entry committed before Open is applied
// to the FSM.
func (n *Node) waitReady(ctx context.Context) error {
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(observer)
	defer n.raft.DeregisterObserver(observer)
	for {
		switch n.raft.State() {
		case raft.Leader:
			err := n.Barrier(ctx)
			if err == nil {
				return nil
			}
			if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
				return err
			}
		case raft.Shutdown:
			return ErrClosed
		default:
			if _, id := n.raft.LeaderWithID(); id != "" {
				return nil
			}
		}
		select {
		case <-obs:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// State returns the node's Raft state (Follower, Candidate, Leader or
// Shutdown).
func (n *Node) State() raft.RaftState { return n.raft.State() }

// Leader returns the current leader's server ID and Raft address, both
// empty when no leader is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// VerifyLeader returns nil if this node is the leader, has applied every
// entry of earlier terms, and a majority still accepts it as leader at some
// moment after the call began. State read after it returns reflects every
// write acknowledged before the call began: a linearizable read. On a node
// that is not (or no longer) leader it returns an error wrapping
// raft.ErrNotLeader or raft.ErrLeadershipLost.
func (n *Node) VerifyLeader(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() != term {
		// First read of this term: entries committed by earlier leaders may
		// not be applied yet; a Barrier applies them.
		if err := n.Barrier(ctx); err != nil {
			return err
		}
		n.readyTerm.Store(term)
	}
	if err := n.enter(); err != nil {
		return err
	}
	return n.wait(ctx, n.raft.VerifyLeader())
}

// Apply replicates cmd and returns the FSM's response for it; an error
// response is returned as err. If ctx ends first Apply returns ctx's error,
// and the command may or may not be applied later.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.enter(); err != nil {
		return nil, err
	}
	f := n.raft.Apply(cmd, timeout)
	if err := n.wait(ctx, f); err != nil {
		return nil, err
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}

// Barrier returns once every entry committed before it was applied to the
// FSM on this node (the leader).
func (n *Node) Barrier(ctx context.Context) error {
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return err
	}
	if err := n.enter(); err != nil {
		return err
	}
	return n.wait(ctx, n.raft.Barrier(timeout))
}

// Raft returns the underlying hashicorp/raft instance (for state, stats,
// snapshots and, later, membership changes). Futures obtained from it
// directly are not covered by Close's wait.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Close rejects new commands with ErrClosed, waits for the commands in
// flight to finish (a running leader finishes them) for at most
// Config.CloseTimeout, then shuts Raft down and waits for its goroutines.
// When the wait times out (a node that lost its majority cannot finish its
// commands), the callers still waiting get ErrClosed; their outcome is
// unknown. It does not close the DB (or the LogStore and StableStore); their
// owner does that after Close. Close is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.mu.closed = true
		n.mu.Unlock()
		drained := make(chan struct{})
		go func() {
			n.inflight.Wait()
			close(drained)
		}()
		timer := time.NewTimer(n.closeTimeout)
		defer timer.Stop()
		select {
		case <-drained:
		case <-timer.C:
			n.logger.Warn("shutting raft down with commands still in flight", "waited", n.closeTimeout)
			close(n.abandoned)
		}
		n.closeErr = n.raft.Shutdown().Error() // also closes the transport
		if nt, ok := n.trans.(*raft.NetworkTransport); ok {
			// Closing the transport stops its listener but not its pooled
			// connections, whose handlers on the peers would live on.
			nt.CloseStreams()
		}
		if n.closeErr == nil {
			// Shutdown resolves every future it still holds; the drain
			// goroutine ends once the rest resolve (hashicorp/raft#498 can
			// leave one unresolved: bounded, so do not wait for it forever).
			timer.Reset(n.closeTimeout)
			select {
			case <-drained:
			case <-timer.C:
				n.logger.Warn("a raft future stayed unresolved after shutdown (hashicorp/raft#498)")
			}
		}
	})
	return n.closeErr
}

// enqueueTimeout converts ctx's deadline into the timeout hashicorp/raft
// takes for handing a request to its main loop (0: wait as long as needed).
func enqueueTimeout(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		d := time.Until(dl)
		if d <= 0 {
			return 0, context.DeadlineExceeded
		}
		return d, nil
	}
	return 0, nil
}

// enter counts one more future in flight, or fails once Close has begun.
// Every successful enter is paired with exactly one wait.
func (n *Node) enter() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return ErrClosed
	}
	n.inflight.Add(1)
	return nil
}

// wait waits for f or ctx, whichever comes first, and releases the inflight
// count taken by enter once f has resolved. A Raft future cannot be selected
// on, so a goroutine waits for it; that goroutine is counted in inflight, so
// Close waits for it (up to its timeout, after which wait returns
// ErrClosed).
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() {
		defer n.inflight.Done()
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return mapErr(err)
	case <-ctx.Done():
		return ctx.Err()
	case <-n.abandoned:
		return fmt.Errorf("%w: shut down with the command in flight", ErrClosed)
	}
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	default:
		return err
	}
}
