package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/diskspace"
	"github.com/magnetar-mq/magnetar/internal/raftnode"
)

// Errors of a clustered service.
var (
	// ErrNotLeader means this node is not the leader, so it cannot take a
	// write or serve a linearizable read; the command was not executed and
	// may be sent to the leader. Returned wrapped in a *NotLeaderError.
	ErrNotLeader = errors.New("metadata: not leader")
	// ErrUnknownOutcome means a write was sent but its result is unknown:
	// leadership changed or the connection broke while it was in flight, so
	// it may or may not have been applied. Read the key to find out.
	ErrUnknownOutcome = errors.New("metadata: outcome unknown")
)

// NotLeaderError is returned by a follower for writes and linearizable
// reads. errors.Is(err, ErrNotLeader) holds for it.
type NotLeaderError struct {
	// LeaderID and LeaderAddr name the leader and its client (gRPC)
	// address; both are empty while no leader is known (an election).
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%v (leader %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

type staleKey struct{}

// WithStaleReads returns a context under which Get and Range read this
// node's local state without checking leadership: they work on followers,
// cost no round trip, and may miss the latest writes (the state is a
// consistent prefix of the log, never a torn one).
func WithStaleReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, staleKey{}, true)
}

func staleReads(ctx context.Context) bool {
	v, _ := ctx.Value(staleKey{}).(bool)
	return v
}

// NodeStatus is one node's view of its cluster.
type NodeStatus struct {
	NodeID string
	// Leader is true on the leader.
	Leader bool
	// LeaderID and LeaderAddr (client address) name the leader, empty while
	// none is known.
	LeaderID   string
	LeaderAddr string
	// Revision is the last revision applied on this node.
	Revision int64
}

// Service is the metadata service on this node: a Store whose writes go
// through a Raft group and whose state lives in Pebble. It is safe for
// concurrent use.
type Service struct {
	logger *slog.Logger
	db     *pebble.DB
	fsm    *fsm
	hub    *hub
	node   *raftnode.Node
	cfg    Config
	leases *lessor           // lease deadlines and expiry (lease.go)
	disk   diskspace.Reserve // the free space reserve (diskspace.go)

	// mu guards closed; reads hold it shared so Close cannot close the DB
	// under them.
	mu struct {
		sync.RWMutex
		closed bool
	}
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Service)(nil)

// Open opens (creating if needed) the metadata service in cfg.Dir, starts
// its Raft node and returns once a leader is known and, on the leader, every
// committed command is applied. A node of a cluster waits in Open until a
// majority of the peers is up.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("component", "metadata")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	// 128 MiB: with 64 MiB, at half a million keys the Raft log and history
	// blocks evicted the index and data blocks that the FSM's reads need,
	// and creating keys got 4x slower (every Get decompressed blocks again).
	cache := pebble.NewCache(128 << 20)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:              cache,
		MemTableSize:       uint64(cfg.MemTableSize),
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{logger.With("subsystem", "pebble")},
	}
	// Bloom filters on every level (L0's setting carries down): creates
	// read keys that do not exist yet, and a filter lets such a Get skip
	// the sstables instead of reading a data block of each (20% fewer
	// seconds to create 600k keys).
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	db, err := pebble.Open(filepath.Join(cfg.Dir, "db"), opts)
	if err != nil {
		return nil, fmt.Errorf("metadata: open pebble: %w", err)
	}
	s := &Service{logger: logger, db: db, cfg: cfg, disk: diskspace.Reserve{FS: vfs.Default, Dir: cfg.Dir, Min: uint64(max(cfg.MinFreeBytes, 0))}}
	if err := checkReserve(s.disk); err != nil {
		logger.Warn("the disk is below the free space reserve: writes that add data are refused until space is freed", "err", err)
	}
	if s.fsm, err = newFSM(db, cfg.HistoryRevisions, logger); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.hub = newHub(db, s.fsm.rev, s.fsm.compacted, logger)
	s.fsm.hub = s.hub
	rcfg := raftnode.Config{
		ID:        cfg.NodeID,
		Dir:       cfg.Dir,
		DB:        db,
		LogPrefix: []byte(raftPrefix),
		FSM:       s.fsm,
		Logger:    logger,
		BindAddr:  cfg.RaftAddr,
		Peers:     cfg.Peers.Raft(),
	}
	rcfg.StreamLayer = cfg.RaftStreamLayer // nil: a TCP listener on BindAddr
	if cfg.RaftAddr != "" {
		// Over a network the single-node timers would make leaders flap.
		rcfg.HeartbeatTimeout = cfg.ElectionTimeout
		rcfg.ElectionTimeout = cfg.ElectionTimeout
		rcfg.LeaderLeaseTimeout = cfg.ElectionTimeout / 2
	}
	s.node, err = raftnode.Open(ctx, rcfg)
	if err != nil {
		s.hub.close()
		_ = db.Close()
		return nil, fmt.Errorf("metadata: start raft: %w", err)
	}
	s.leases = startLessor(ctx, db, s.fsm, s.node, logger)
	// s.fsm.rev belongs to the FSM goroutine now (a follower applies
	// entries concurrently): Status reads the revision from Pebble.
	st := s.Status()
	logger.Info("metadata service open", "dir", cfg.Dir, "node_id", cfg.NodeID, "leader", st.LeaderID, "revision", st.Revision)
	return s, nil
}

// rlock takes the shared lock unless the service is closed.
func (s *Service) rlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// readable checks that this node may serve a read: it is the leader and a
// majority confirms it (see raftnode.Node.VerifyLeader), unless ctx asks for
// stale reads.
func (s *Service) readable(ctx context.Context) error {
	if staleReads(ctx) {
		return nil
	}
	if err := s.rlock(ctx); err != nil {
		return err
	}
	s.mu.RUnlock()
	return s.mapRaftErr(s.node.VerifyLeader(ctx))
}

// mapRaftErr turns Raft's errors into the service's.
func (s *Service) mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raftnode.ErrClosed):
		return ErrClosed
	case errors.Is(err, raft.ErrNotLeader):
		return s.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	default:
		return err
	}
}

func (s *Service) notLeader() error {
	id, _ := s.node.Leader()
	e := &NotLeaderError{LeaderID: id}
	if p, ok := s.cfg.Peers.Lookup(id); ok {
		e.LeaderAddr = p.ClientAddr
	}
	return e
}

// Status reports this node's view of the cluster.
func (s *Service) Status() NodeStatus {
	st := NodeStatus{NodeID: s.cfg.NodeID, Leader: s.node.State() == raft.Leader}
	if s.rlock(context.Background()) == nil {
		if rev, err := readUint64(s.db, keyRevision); err == nil {
			st.Revision = int64(rev)
		}
		s.mu.RUnlock()
	}
	st.LeaderID, _ = s.node.Leader()
	if p, ok := s.cfg.Peers.Lookup(st.LeaderID); ok {
		st.LeaderAddr = p.ClientAddr
	}
	return st
}

// Get returns the key. The read is linearizable: on a follower it fails
// with a *NotLeaderError, unless ctx carries WithStaleReads.
func (s *Service) Get(ctx context.Context, key string) (KV, bool, error) {
	if err := s.readable(ctx); err != nil {
		return KV{}, false, err
	}
	if err := s.rlock(ctx); err != nil {
		return KV{}, false, err
	}
	defer s.mu.RUnlock()
	kv, ok, err := readKV(s.db, key)
	if err != nil {
		return KV{}, false, fmt.Errorf("metadata: get: %w", err)
	}
	return kv, ok, nil
}

// Range lists the keys with the given prefix in key order, from one
// consistent view of the local state, at that view's revision. Like Get it
// is linearizable unless ctx carries WithStaleReads.
func (s *Service) Range(ctx context.Context, prefix string, opts RangeOptions) (RangeResult, error) {
	if err := s.readable(ctx); err != nil {
		return RangeResult{}, err
	}
	if err := s.rlock(ctx); err != nil {
		return RangeResult{}, err
	}
	defer s.mu.RUnlock()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	rev, err := readUint64(snap, keyRevision)
	if err != nil {
		return RangeResult{}, fmt.Errorf("metadata: range: %w", err)
	}
	res := RangeResult{Revision: int64(rev)}
	lower := kvKey(prefix)
	if opts.StartAfter >= prefix && opts.StartAfter != "" {
		lower = append(kvKey(opts.StartAfter), 0) // the first key after StartAfter
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(kvKey(prefix))})
	if err != nil {
		return RangeResult{}, fmt.Errorf("metadata: range: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if opts.Limit > 0 && len(res.KVs) == opts.Limit {
			res.More = true
			break
		}
		if len(res.KVs)%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return RangeResult{}, err
			}
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return RangeResult{}, fmt.Errorf("metadata: range: %w", err)
		}
		key := string(it.Key()[len(kvPrefix):])
		kv, err := decodeKVRecord(key, val)
		if err != nil {
			return RangeResult{}, fmt.Errorf("metadata: range: key %q: %w", key, err)
		}
		res.KVs = append(res.KVs, kv)
	}
	if err := it.Error(); err != nil {
		return RangeResult{}, fmt.Errorf("metadata: range: %w", err)
	}
	return res, nil
}

// Put writes the key through Raft if its version is expectedVersion (0: it
// must not exist; AnyVersion: unconditional) and returns the new KV.
func (s *Service) Put(ctx context.Context, key string, value []byte, expectedVersion int64) (KV, error) {
	if key == "" {
		return KV{}, ErrInvalidKey
	}
	cmd := command{op: opPut, key: key, expected: expectedVersion, value: value}
	resp, err := s.apply(ctx, &cmd)
	if err != nil {
		return KV{}, err
	}
	kv, ok := resp.(KV)
	if !ok {
		return KV{}, fmt.Errorf("metadata: put: unexpected response %T", resp)
	}
	kv.Value = value
	return kv, nil
}

// Delete removes the key through Raft if its version is expectedVersion
// (AnyVersion: unconditional, and an absent key is not an error).
func (s *Service) Delete(ctx context.Context, key string, expectedVersion int64) error {
	if key == "" {
		return ErrInvalidKey
	}
	_, err := s.apply(ctx, &command{op: opDelete, key: key, expected: expectedVersion})
	return err
}

func (s *Service) apply(ctx context.Context, cmd *command) (any, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	s.mu.RUnlock()
	if err := s.checkDisk(cmd); err != nil {
		return nil, err
	}
	resp, err := s.node.Apply(ctx, cmd.appendTo(nil))
	return resp, s.mapRaftErr(err)
}

// Watch streams the changes under prefix after fromRevision (0: from now
// on), as this node applies them; on a follower the stream may lag the
// leader but is complete and in order. A slow reader never holds up writes and never misses an event; one
// that falls more than Config.HistoryRevisions behind has its channel closed
// (a resumed Watch from its last revision then returns ErrCompacted).
func (s *Service) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	return s.hub.watch(ctx, prefix, fromRevision)
}

// Close stops the Raft node, closes every watch channel, and closes the DB.
// It is idempotent.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		s.mu.Unlock()
		s.leases.stop()
		err := s.node.Close()
		s.hub.close()
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}

// pebbleLogger sends Pebble's logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("metadata: pebble: " + msg)
}
