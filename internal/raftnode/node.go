package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/raftstore"
)

// ErrClosed is returned by calls on a Node that has been closed.
var ErrClosed = errors.New("raftnode: closed")

// Node is one running Raft node. Its methods are safe for concurrent use.
type Node struct {
	raft   *raft.Raft
	store  *raftstore.Store
	logger *slog.Logger

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

// Open starts a single-voter node (bootstrapping the configuration on first
// start), waits until it is leader and has applied every committed entry
// (a Barrier), and returns it. If ctx ends first, the node is shut down and
// ctx's error returned.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := parseLevel(cfg.LogLevel) // checked by Validate
	logger := cfg.Logger.With("raft_id", cfg.ID)
	hl := newHCLogAdapter(logger, level)

	store, err := raftstore.New(cfg.DB, cfg.LogPrefix)
	if err != nil {
		return nil, err
	}
	var logs raft.LogStore = store
	if cfg.LogCacheSize > 0 {
		if logs, err = raft.NewLogCache(cfg.LogCacheSize, store); err != nil {
			return nil, fmt.Errorf("raftnode: %w", err)
		}
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotsRetained, hl.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("raftnode: snapshot store: %w", err)
	}
	// A fixed address (the ID) keeps the stored configuration stable across
	// restarts; the in-memory transport only talks to transports it is
	// connected to, so the address need not be unique in the process.
	addr, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.ID))
	rc := cfg.raftConfig(hl)

	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	if !existing {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(rc, logs, store, snaps, trans, boot); err != nil {
			_ = trans.Close()
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
		logger.Info("bootstrapped a single-voter raft configuration")
	}
	r, err := raft.NewRaft(rc, cfg.FSM, logs, store, snaps, trans)
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	n := &Node{raft: r, store: store, logger: logger}
	if err := n.waitReady(ctx); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// waitReady waits until this node is leader and a Barrier has gone through,
// so every entry committed before Open is applied to the FSM.
func (n *Node) waitReady(ctx context.Context) error {
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
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
		}
		select {
		case <-obs:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
// flight to finish (a running leader finishes them), then shuts Raft down and
// waits for its goroutines. It does not close the DB; its owner does that
// after Close. Close is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.mu.closed = true
		n.mu.Unlock()
		n.inflight.Wait()
		n.closeErr = n.raft.Shutdown().Error() // also closes the transport
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
// on, so with a cancellable ctx a goroutine waits for it; that goroutine is
// counted in inflight, so Close waits for it.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		defer n.inflight.Done()
		return mapErr(f.Error())
	}
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
