package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/raftnode"
)

// Leases are replicated state plus leader-local time, as in etcd.
//
// The FSM owns what every replica must agree on: which leases exist, their
// TTLs, and which keys are attached to which lease (fsm_lease.go). Time is
// not replicated: only the leader's lessor keeps a deadline per lease, in
// memory. KeepAlive moves a deadline on the leader without a Raft entry;
// when a deadline passes, the lessor proposes a revoke through Raft, and
// the FSM deletes the lease and its keys in one revision.
//
// When this node becomes leader (on startup, or after an election, which
// the lessor notices as a new Raft term), it first waits for a Barrier so
// the FSM holds every lease committed by earlier leaders, then gives every
// lease a full TTL from that moment: a leader change never expires a live
// lease early, it can only make a lease outlive its holder by up to one
// TTL. When it stops being leader it forgets every deadline.
//
// Lock order: lessor.mu is taken before Pebble is read (activate) and
// never while waiting for Raft.

// leaseTick is how often the lessor checks for leadership changes and
// expired leases; a lease expires at most about one tick after its
// deadline.
const leaseTick = 100 * time.Millisecond

type leaseState struct {
	ttl      time.Duration
	deadline time.Time
	revoking bool // a revoke has been proposed for this expired lease
}

type lessor struct {
	db     *pebble.DB
	fsm    *fsm
	node   *raftnode.Node
	logger *slog.Logger
	now    func() time.Time
	tick   time.Duration

	cancel context.CancelFunc // stops run
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		// term is the Raft term in which this node became leader and loaded
		// every lease; 0 when it is not (serving as) leader.
		term   uint64
		leases map[LeaseID]*leaseState
	}
}

// startLessor attaches a lessor to the FSM and starts its goroutine, which
// stop ends. If the node is already leader (as it is when Open returns on
// a single node), the leases are loaded before startLessor returns, so
// KeepAlive works at once.
func startLessor(ctx context.Context, db *pebble.DB, f *fsm, node *raftnode.Node, logger *slog.Logger) *lessor {
	l := &lessor{db: db, fsm: f, node: node, logger: logger, now: time.Now, tick: leaseTick}
	f.leases.Store(l)
	runCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.check(ctx)
	l.wg.Go(func() { l.run(runCtx) })
	return l
}

// stop ends the lessor's goroutine (cancelling a revoke in flight) and
// waits for it. Call it before closing the Raft node.
func (l *lessor) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *lessor) run(ctx context.Context) {
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		l.check(ctx)
	}
}

// check follows leadership and expires the leases whose deadline passed.
func (l *lessor) check(ctx context.Context) {
	r := l.node.Raft()
	leader := r.State() == raft.Leader
	term := r.CurrentTerm()
	l.mu.Lock()
	active := l.mu.term
	l.mu.Unlock()
	switch {
	case !leader:
		if active != 0 {
			l.deactivate("no longer leader")
		}
	case active != term:
		l.activate(ctx, term)
	default:
		l.expire(ctx)
	}
}

// activate loads every lease with a fresh deadline once the FSM has applied
// everything committed before this term.
func (l *lessor) activate(ctx context.Context, term uint64) {
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.node.Barrier(bctx); err != nil {
		if ctx.Err() == nil {
			l.logger.Warn("lease barrier failed; retrying", "err", err)
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	leases, err := l.loadLocked()
	if err != nil {
		l.logger.Error("cannot load leases", "err", err)
		return
	}
	l.mu.leases, l.mu.term = leases, term
	l.logger.Info("serving leases as leader", "term", term, "leases", len(leases))
}

// loadLocked reads every lease from Pebble, each with a full TTL from now.
func (l *lessor) loadLocked() (map[LeaseID]*leaseState, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte(leasePrefix), UpperBound: prefixEnd([]byte(leasePrefix))})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	now := l.now()
	leases := make(map[LeaseID]*leaseState)
	for ok := it.First(); ok; ok = it.Next() {
		id, err := leaseOfKey(it.Key())
		if err != nil {
			return nil, err
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		ttlMs, err := decodeLeaseRecord(val)
		if err != nil {
			return nil, fmt.Errorf("lease %d: %w", id, err)
		}
		ttl := time.Duration(ttlMs) * time.Millisecond
		leases[id] = &leaseState{ttl: ttl, deadline: now.Add(ttl)}
	}
	return leases, it.Error()
}

func (l *lessor) deactivate(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.term != 0 {
		l.logger.Info("stopped serving leases", "reason", why)
	}
	l.mu.term, l.mu.leases = 0, nil
}

// expire proposes a revoke for every lease past its deadline.
func (l *lessor) expire(ctx context.Context) {
	now := l.now()
	var expired []LeaseID
	l.mu.Lock()
	for id, st := range l.mu.leases {
		if !st.revoking && now.After(st.deadline) {
			st.revoking = true
			expired = append(expired, id)
		}
	}
	l.mu.Unlock()
	for _, id := range expired {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := l.node.Apply(actx, (&command{op: opRevoke, lease: id}).appendTo(nil))
		cancel()
		switch {
		case err == nil || errors.Is(err, ErrLeaseNotFound):
			l.logger.Debug("lease expired", "lease", id)
		default:
			if ctx.Err() == nil {
				l.logger.Warn("revoking an expired lease failed; retrying", "lease", id, "err", err)
			}
			l.mu.Lock()
			if st := l.mu.leases[id]; st != nil {
				st.revoking = false
			}
			l.mu.Unlock()
		}
	}
}

// applied is called by the FSM after committing a batch that granted or
// revoked leases.
func (l *lessor) applied(changes []leaseChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.term == 0 {
		return
	}
	now := l.now()
	for _, c := range changes {
		if c.ttlMs == 0 {
			delete(l.mu.leases, c.id)
			continue
		}
		ttl := time.Duration(c.ttlMs) * time.Millisecond
		l.mu.leases[c.id] = &leaseState{ttl: ttl, deadline: now.Add(ttl)}
	}
}

// restored is called by the FSM after a snapshot replaced its state: the
// lessor reloads (with fresh deadlines) at its next check.
func (l *lessor) restored() { l.deactivate("state restored from a snapshot") }

// keepAlive renews a live lease's deadline. It fails with ErrNotLeader
// (bare: Service.KeepAlive names the leader) unless this node is the leader
// and has loaded the leases for its term; a new leader refuses keep-alives
// until its barrier is done, and the client retries them.
func (l *lessor) keepAlive(id LeaseID) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.node.Raft(); l.mu.term == 0 || r.State() != raft.Leader || r.CurrentTerm() != l.mu.term {
		// A deposed leader forgets its deadlines only at its next check:
		// a renewal it took in between would be lost with them. A leader
		// elected again since reloads them at its next check too.
		return 0, ErrNotLeader
	}
	st := l.mu.leases[id]
	now := l.now()
	if st == nil || st.revoking || now.After(st.deadline) {
		return 0, fmt.Errorf("%w: %d", ErrLeaseNotFound, id)
	}
	st.deadline = now.Add(st.ttl)
	return st.ttl, nil
}

// Grant creates a lease with the given TTL (rounded up to a millisecond)
// through Raft. Its ID is the Raft index of the grant.
func (s *Service) Grant(ctx context.Context, ttl time.Duration) (LeaseID, error) {
	if ttl < time.Millisecond {
		return 0, fmt.Errorf("%w: %v", ErrInvalidTTL, ttl)
	}
	ttlMs := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	resp, err := s.apply(ctx, &command{op: opGrant, ttlMs: ttlMs})
	if err != nil {
		return 0, err
	}
	id, ok := resp.(LeaseID)
	if !ok {
		return 0, fmt.Errorf("metadata: grant: unexpected response %T", resp)
	}
	return id, nil
}

// KeepAlive renews the lease for a full TTL. Only the leader keeps lease
// deadlines: elsewhere (and on a new leader until it has loaded the leases
// of its term) it fails with a *NotLeaderError naming the leader's client
// address, which the Client follows and retries.
//
// A lease found gone is confirmed with a majority before the holder is
// told: a leader that was paused or cut off may have been deposed without
// knowing it yet, and its deadlines (all past after a long pause) and its
// list of leases are then stale. Such a node answers NotLeader instead,
// and the holder renews on the real leader. Renewals that succeed need no
// round trip: a renewal a deposed leader takes is lost, but the holder's
// next one reaches the new leader, which gave the lease a full TTL.
func (s *Service) KeepAlive(ctx context.Context, id LeaseID) (time.Duration, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, err
	}
	ttl, err := s.leases.keepAlive(id)
	s.mu.RUnlock()
	switch {
	case errors.Is(err, ErrNotLeader):
		return 0, s.notLeader()
	case errors.Is(err, ErrLeaseNotFound):
		if verr := s.mapRaftErr(s.node.VerifyLeader(ctx)); verr != nil {
			if errors.Is(verr, ErrClosed) || ctx.Err() != nil {
				return 0, verr
			}
			return 0, s.notLeader()
		}
	}
	return ttl, err
}

// Revoke deletes the lease and, in one revision, every key attached to it.
func (s *Service) Revoke(ctx context.Context, id LeaseID) error {
	if id <= 0 {
		return fmt.Errorf("%w: %d", ErrLeaseNotFound, id)
	}
	_, err := s.apply(ctx, &command{op: opRevoke, lease: id})
	return err
}
