package bookie

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/diskspace"
	"github.com/magnetar-mq/magnetar/internal/raftnode"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// Defaults of ShardConfig.
const (
	DefaultCacheSize    = 128 << 20
	DefaultMemTableSize = 64 << 20
	// DefaultMaxInflightBytes is ShardConfig.MaxInflightBytes's default.
	DefaultMaxInflightBytes = 64 << 20
	// DefaultWALSegmentSize is ShardConfig.WALSegmentSize's default.
	DefaultWALSegmentSize = 64 << 20
	// DefaultElectionTimeout is ShardConfig.ElectionTimeout's default.
	DefaultElectionTimeout = 500 * time.Millisecond
	// DefaultMaxHeldLogBytes is ShardConfig.MaxHeldLogBytes's default.
	DefaultMaxHeldLogBytes = 1 << 30
)

// ErrInvalidConfig means a ShardConfig cannot work.
var ErrInvalidConfig = errors.New("bookie: invalid config")

// ShardConfig configures a Shard.
type ShardConfig struct {
	// Dir holds the shard's data: the Raft log's segment files in Dir/wal,
	// the state's Pebble database in Dir/state (see doc.go) and Raft
	// snapshots (Dir/raft unless Raft.Dir is set).
	Dir string `yaml:"dir"`
	// CacheSize is the state database's Pebble block cache, in bytes.
	CacheSize int64 `yaml:"cache_size"`
	// MemTableSize is the state database's memtable size, in bytes.
	MemTableSize uint64 `yaml:"memtable_size"`
	// WALSegmentSize is the size of the Raft log's segment files, each
	// preallocated whole when the log moves to it. Truncation deletes whole
	// segments.
	WALSegmentSize int64 `yaml:"wal_segment_size"`
	// MaxHeldLogBytes bounds the Raft log kept only for the entries it
	// holds: appended entries stay in the log until their segment is
	// deleted, and past this many bytes of log that Raft no longer needs,
	// the oldest entries still in use are copied into the state so the log
	// can be truncated (see logcompact.go). 0: the default; negative: never
	// copy (the log then keeps everything from the oldest live entry on).
	MaxHeldLogBytes int64 `yaml:"max_held_log_bytes"`
	// MaxInflightBytes bounds the bytes of appends taken in and not yet
	// answered; more wait (see inflight.go). 0: the default.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// MinFreeBytes is the disk space reserve: below it, Append and
	// CreateSegment fail with ErrDiskFull (see diskspace.go). It must hold
	// at least one WAL segment. 0: the default; negative: no check.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// NodeID is this replica's Raft server ID; it must be one of Peers.
	// Empty: Raft.ID (default "node-1").
	NodeID string `yaml:"node_id"`
	// RaftAddr is the TCP address Raft listens on (host:port). Empty (and
	// no Peers): a single voter with an in-memory transport, as in
	// standalone.
	RaftAddr string `yaml:"raft_addr"`
	// RaftAdvertiseAddr is where the other replicas reach this one's Raft;
	// default: this node's entry in Peers.
	RaftAdvertiseAddr string `yaml:"raft_advertise_addr"`
	// Peers are the shard's replicas, this one included (1 or 3; 5 works
	// too), the same list on every replica; the voters are fixed on the
	// first start. Empty: this replica alone.
	Peers Peers `yaml:"peers"`
	// ElectionTimeout is Raft's heartbeat and election timeout when the
	// shard talks over the network (RaftAddr set); a dead leader is
	// replaced after about this long. A single in-memory voter keeps
	// raftnode's short timers.
	ElectionTimeout time.Duration `yaml:"election_timeout"`
	// Raft tunes the shard's Raft node. OpenShard fills in its LogStore,
	// StableStore, FSM and Logger, and its ID, BindAddr, AdvertiseAddr, Peers and
	// timers from the fields above when they are set.
	Raft raftnode.Config `yaml:"raft"`
	// Logger receives the shard's logs (with component=bookie); nil
	// discards them.
	Logger *slog.Logger `yaml:"-"`
}

// RegisterFlags registers the config's flags, with defaults, under prefix.
func (c *ShardConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, prefix+"dir", "", "Directory of the bookie shard's data.")
	fs.Int64Var(&c.CacheSize, prefix+"cache-size", DefaultCacheSize, "Pebble block cache size in bytes.")
	c.RegisterDiskFlags(prefix, fs)
	fs.Int64Var(&c.MaxHeldLogBytes, prefix+"max-held-log-bytes", DefaultMaxHeldLogBytes, "Bytes of Raft log kept only for the entries it holds (entries are written once, to the log) before the oldest entries still in use are copied into the state so the log can be truncated (negative: never copy).")
	fs.Int64Var(&c.MaxInflightBytes, prefix+"max-inflight-bytes", DefaultMaxInflightBytes, "Bytes of appends in flight (taken in, not yet answered) past which new appends wait: a slow disk slows writers instead of growing memory.")
	fs.StringVar(&c.NodeID, prefix+"node-id", "", "Raft server ID of this replica; must be one of --"+prefix+"peers (empty: --"+prefix+"raft.id).")
	fs.StringVar(&c.RaftAddr, prefix+"raft-addr", "", "TCP address Raft listens on, e.g. :6671 (empty with no peers: single replica, no network).")
	fs.StringVar(&c.RaftAdvertiseAddr, prefix+"raft-advertise-addr", "", "Raft address the other replicas reach this one at (default: its --"+prefix+"peers entry).")
	fs.Var(&c.Peers, prefix+"peers", "Replicas of the shard, this one included, the same list on every replica: id=raftaddr=grpcaddr,... e.g. b1=10.0.0.1:6671=10.0.0.1:6670,b2=10.0.0.2:6671=10.0.0.2:6670,b3=10.0.0.3:6671=10.0.0.3:6670.")
	fs.DurationVar(&c.ElectionTimeout, prefix+"election-timeout", DefaultElectionTimeout, "Raft heartbeat and election timeout of a replicated shard; a dead leader is replaced after about this long.")
	c.Raft.RegisterFlags(prefix+"raft.", fs)
}

// RegisterDiskFlags registers the flags of the shard's use of its disk
// (the Raft log's preallocated segment size, the free space reserve and
// the state's memtable size), which RegisterFlags includes; a standalone
// server registers only these.
func (c *ShardConfig) RegisterDiskFlags(prefix string, fs *flag.FlagSet) {
	fs.Uint64Var(&c.MemTableSize, prefix+"memtable-size", DefaultMemTableSize, "Pebble memtable size in bytes of the bookie's state.")
	fs.Int64Var(&c.WALSegmentSize, prefix+"wal-segment-size", DefaultWALSegmentSize, "Size in bytes of the bookie's Raft log segment files, each preallocated whole when the log moves to it (1 MiB to 1 GiB; must fit in --"+prefix+"min-free-bytes).")
	fs.Int64Var(&c.MinFreeBytes, prefix+"min-free-bytes", DefaultMinFreeBytes, "Free disk space in bytes below which the bookie's appends and segment creations fail with a disk-full error; reads and deletes go on (negative: no check).")
}

// EnsureDefaults fills in unset fields.
func (c *ShardConfig) EnsureDefaults() {
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = DefaultMemTableSize
	}
	if c.WALSegmentSize == 0 {
		c.WALSegmentSize = DefaultWALSegmentSize
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.MaxHeldLogBytes == 0 {
		c.MaxHeldLogBytes = DefaultMaxHeldLogBytes
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.NodeID != "" {
		c.Raft.ID = c.NodeID
	}
	if c.RaftAddr != "" {
		c.Raft.BindAddr = c.RaftAddr
		// Over a network raftnode's single-node timers would make
		// leaders flap.
		c.Raft.HeartbeatTimeout = c.ElectionTimeout
		c.Raft.ElectionTimeout = c.ElectionTimeout
		c.Raft.LeaderLeaseTimeout = c.ElectionTimeout / 2
	}
	if c.RaftAdvertiseAddr != "" {
		c.Raft.AdvertiseAddr = c.RaftAdvertiseAddr
	}
	if len(c.Peers) > 0 {
		c.Raft.Peers = c.Peers.Raft()
	}
	if c.Raft.Dir == "" && c.Dir != "" {
		c.Raft.Dir = filepath.Join(c.Dir, "raft")
	}
	c.Raft.EnsureDefaults()
}

// Validate reports a config that cannot work. The Raft settings are
// validated by OpenShard, once the fields it fills in are set.
func (c *ShardConfig) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: dir must be set", ErrInvalidConfig)
	case c.CacheSize < 0:
		return fmt.Errorf("%w: negative cache size", ErrInvalidConfig)
	case c.MemTableSize >= 4<<30:
		return fmt.Errorf("%w: memtable size must be under 4 GiB", ErrInvalidConfig)
	case c.WALSegmentSize != 0 && (c.WALSegmentSize < 1<<20 || c.WALSegmentSize > 1<<30):
		return fmt.Errorf("%w: wal segment size %d is not between 1 MiB and 1 GiB", ErrInvalidConfig, c.WALSegmentSize)
	case c.MinFreeBytes > 0 && c.MinFreeBytes < c.WALSegmentSize:
		return fmt.Errorf("%w: the free space reserve (%d bytes) must hold a wal segment (%d bytes)", ErrInvalidConfig, c.MinFreeBytes, c.WALSegmentSize)
	case c.ElectionTimeout != 0 && c.ElectionTimeout < 10*time.Millisecond:
		return fmt.Errorf("%w: election timeout %v is below 10ms", ErrInvalidConfig, c.ElectionTimeout)
	case len(c.Peers) > 0 && c.RaftAddr == "":
		return fmt.Errorf("%w: peers are set but the raft address is empty", ErrInvalidConfig)
	}
	if c.RaftAddr != "" {
		if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
			return fmt.Errorf("%w: raft address: %w", ErrInvalidConfig, err)
		}
	}
	if n := len(c.Peers); n > 0 && n%2 == 0 {
		return fmt.Errorf("%w: %d peers: use an odd number of replicas (1, 3 or 5)", ErrInvalidConfig, n)
	}
	id := c.NodeID
	if id == "" {
		id = c.Raft.ID
	}
	if err := c.Peers.Validate(id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Shard is one replica of a bookie shard, served in process: a member of
// the shard's Raft group (a single voter, or one of ShardConfig.Peers) over
// its storage (a raft-wal log and a Pebble state). It implements Client; on a follower, writes and
// linearizable reads fail with a *NotLeaderError. Every method is safe for
// concurrent use, and concurrent appends share Raft batches and fsyncs
// (group commit).
type Shard struct {
	log   *slog.Logger
	db    *pebble.DB // the state (store.state); call fsm.settle before reading it
	fsm   *fsm
	store storage
	// compactor copies entries out of the log's oldest files (logcompact.go).
	compactor *logCompactor
	node      *raftnode.Node
	cfg       ShardConfig // after EnsureDefaults
	disk      diskspace.Reserve
	// inflight bounds the appends being proposed.
	inflight *inflight

	// ops is held shared by every call that uses db or node and
	// exclusively by Close, which so waits for calls in flight before
	// stopping Raft and closing the database. closing is set before Close
	// takes it, so calls arriving meanwhile fail with ErrClosed.
	ops       sync.RWMutex
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ Client = (*Shard)(nil)

// OpenShard opens (or creates) the shard replica stored under cfg.Dir and
// returns once a leader is known and, if it is this replica, it has applied
// every committed command. A replica of a replicated shard waits in
// OpenShard until a majority of its peers is up (or ctx ends).
func OpenShard(ctx context.Context, cfg ShardConfig) (*Shard, error) {
	return openShard(ctx, cfg, nil)
}

// openShard is OpenShard with the storage (log and state) on fs (nil: the
// OS's), so tests can simulate crashes, small disks and count bytes.
func openShard(ctx context.Context, cfg ShardConfig, fs vfs.FS) (*Shard, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "bookie")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bookie: %w", err)
	}
	store, err := openStorage(cfg.Dir, fs, storageOptions{
		cacheSize:      cfg.CacheSize,
		memTableSize:   cfg.MemTableSize,
		walSegmentSize: int(cfg.WALSegmentSize),
		logLevel:       cfg.Raft.LogLevel,
	}, log)
	if err != nil {
		return nil, err
	}
	db := store.state
	f, err := newFSM(db, store.log(nil, nil), log)
	if err != nil {
		store.close()
		return nil, err
	}
	f.async = true
	log.Info("opening shard", "dir", cfg.Dir, "applied_index", f.applied)
	compactor := newLogCompactor(f, store, cfg.MaxHeldLogBytes, log)
	rc := cfg.Raft
	rc.LogStore, rc.StableStore = compactor.raftLog, store.wal
	rc.FSM = f
	rc.Logger = log
	rc.WrapSnapshots = func(fs raft.SnapshotStore) raft.SnapshotStore {
		return newLazySnapshots(fs, f, rc.Dir)
	}
	node, err := raftnode.Open(ctx, rc)
	if err != nil {
		compactor.close()
		f.settle()
		store.close()
		return nil, fmt.Errorf("bookie: starting raft: %w", err)
	}
	s := &Shard{log: log, db: db, fsm: f, store: store, compactor: compactor, node: node, cfg: cfg, disk: diskspace.Reserve{FS: fs, Dir: cfg.Dir, Min: uint64(max(cfg.MinFreeBytes, 0))},
		inflight: newInflight(cfg.MaxInflightBytes)}
	if fs == nil {
		s.disk.FS = vfs.Default
	}
	st := s.Status()
	log.Info("shard open", "node_id", st.NodeID, "leader", st.LeaderID, "replicas", max(len(cfg.Peers), 1))
	return s, nil
}

// Close stops taking calls, waits for the calls in flight to finish (Raft
// is still running, so their proposals complete; cancel their contexts to
// hurry them), then stops Raft and closes the storage: the state first,
// flushed, then the log. Draining first
// matters: a proposal handed to hashicorp/raft as it shuts down may never
// be answered (hashicorp/raft#498). Calls made after Close fail with
// ErrClosed. Close is idempotent.
func (s *Shard) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.ops.Lock()
		defer s.ops.Unlock()
		s.compactor.close()
		nodeErr := s.node.Close() // Raft has stopped applying
		s.fsm.settle()
		s.closeErr = errors.Join(nodeErr, s.store.close())
		s.log.Info("shard closed", "err", s.closeErr)
	})
	return s.closeErr
}

// enter starts a call; exit must follow unless it returns an error.
func (s *Shard) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.ops.RLock()
	if s.closing.Load() {
		s.ops.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Shard) exit() { s.ops.RUnlock() }

// propose replicates a command and returns the state machine's response.
func (s *Shard) propose(ctx context.Context, cmd []byte) (any, error) {
	resp, err := s.node.Apply(ctx, cmd)
	return resp, s.mapRaftErr(err)
}

// mapRaftErr turns Raft's errors into bookie's: a follower's refusal into a
// *NotLeaderError, a leadership lost or a shutdown with the command in
// flight into ErrUnknownOutcome. A bare ErrClosed means the call was
// refused before anything was proposed.
func (s *Shard) mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case err == raftnode.ErrClosed:
		// Refused before it was handed to Raft.
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, raftnode.ErrClosed):
		// Shut down with the command in flight: it may still commit.
		return fmt.Errorf("%w: %w: %w", ErrUnknownOutcome, ErrClosed, err)
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return s.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	default:
		return err
	}
}

func (s *Shard) notLeader() error {
	id, _ := s.node.Leader()
	e := &NotLeaderError{LeaderID: id}
	if p, ok := s.cfg.Peers.Lookup(id); ok {
		e.LeaderAddr = p.ClientAddr
	}
	return e
}

// readable checks that this replica may serve a read: it is the leader and
// a majority confirms it (raftnode.Node.VerifyLeader), unless ctx carries
// WithFollowerReads. A single voter is its own majority and skips the check.
func (s *Shard) readable(ctx context.Context) error {
	if followerReads(ctx) || len(s.cfg.Peers) <= 1 {
		return nil
	}
	return s.mapRaftErr(s.node.VerifyLeader(ctx))
}

// ShardStatus is one replica's view of its shard.
type ShardStatus struct {
	NodeID string
	// Leader is true on the leader.
	Leader bool
	// LeaderID and LeaderAddr (gRPC address, when peers are configured)
	// name the leader; empty while none is known.
	LeaderID   string
	LeaderAddr string
	// AppliedIndex is the last Raft index applied on this replica.
	AppliedIndex uint64
	// LogBytes is the size of the Raft log's segment files on disk; it
	// holds the entries of live segments (see doc.go, "Entries are written
	// once"). LogCompactedBytes counts the entry bytes copied from the log
	// into the state since the replica started, so that it could be
	// truncated.
	LogBytes          int64
	LogCompactedBytes int64
}

// Status reports this replica's view of the shard.
func (s *Shard) Status() ShardStatus {
	st := ShardStatus{NodeID: s.cfg.Raft.ID, Leader: s.node.State() == raft.Leader}
	st.LeaderID, _ = s.node.Leader()
	if p, ok := s.cfg.Peers.Lookup(st.LeaderID); ok {
		st.LeaderAddr = p.ClientAddr
	}
	st.AppliedIndex = s.node.Raft().AppliedIndex()
	for _, seg := range s.store.meta.segments() {
		st.LogBytes += int64(seg.SizeLimit)
	}
	st.LogCompactedBytes = s.compactor.copied.Load()
	return st
}

// CreateSegment implements Client.
func (s *Shard) CreateSegment(ctx context.Context, segment uint64, startOffset int64, epoch uint64) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.exit()
	if err := s.checkDisk(); err != nil {
		return err
	}
	_, err := s.propose(ctx, appendCommand(nil, command{op: opCreate, segment: segment, start: startOffset, epoch: epoch}))
	return err
}

// Append implements Client. Entries are checked (header, magic, exact size,
// CRC) before they are proposed, so a corrupt entry never reaches the Raft
// log; offsets and epochs are checked by the state machine.
func (s *Shard) Append(ctx context.Context, req AppendRequest) (int64, error) {
	for i, e := range req.Entries {
		h, err := record.VerifyCRC(e)
		if err != nil {
			return 0, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
		}
		if h.Size() != len(e) {
			return 0, fmt.Errorf("%w: entry %d is %d bytes, its batch %d", ErrCorrupt, i, len(e), h.Size())
		}
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.exit()
	if err := s.checkDisk(); err != nil {
		return 0, err
	}
	size := int64(appendCommandSize(req.Entries))
	held, err := s.inflight.acquire(ctx, size)
	if err != nil {
		return 0, err
	}
	defer s.inflight.release(held)
	c := command{op: opAppend, segment: req.Segment, epoch: req.Epoch, entries: req.Entries}
	resp, err := s.propose(ctx, appendCommand(make([]byte, 0, appendCommandSize(req.Entries)), c))
	if err != nil {
		return 0, err
	}
	return resp.(int64), nil
}

// Seal implements Client.
func (s *Shard) Seal(ctx context.Context, segment uint64, epoch uint64, startOffset int64) (SegmentInfo, error) {
	if err := s.enter(ctx); err != nil {
		return SegmentInfo{}, err
	}
	defer s.exit()
	resp, err := s.propose(ctx, appendCommand(nil, command{op: opSeal, segment: segment, epoch: epoch, start: startOffset}))
	if err != nil {
		return SegmentInfo{}, err
	}
	return resp.(SegmentInfo), nil
}

// DeleteSegment implements Client.
func (s *Shard) DeleteSegment(ctx context.Context, segment uint64) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.exit()
	_, err := s.propose(ctx, appendCommand(nil, command{op: opDelete, segment: segment}))
	return err
}

// Read implements Client. It serves the state applied on this replica
// without a trip through the Raft log; the entries are copies. On a
// replicated shard the leader first confirms its leadership with a
// majority (one round of heartbeats), so the read is linearizable; a
// follower refuses with a *NotLeaderError unless ctx carries
// WithFollowerReads.
func (s *Shard) Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.exit()
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	hold := s.fsm.pins.hold()
	defer s.fsm.pins.unhold(hold)
	s.fsm.settle()
	return readEntries(s.db, s.fsm.wal, segment, fromOffset, maxBytes)
}

// Info implements Client; it is linearizable as Read is.
func (s *Shard) Info(ctx context.Context, segment uint64) (SegmentInfo, error) {
	if err := s.enter(ctx); err != nil {
		return SegmentInfo{}, err
	}
	defer s.exit()
	if err := s.readable(ctx); err != nil {
		return SegmentInfo{}, err
	}
	s.fsm.settle()
	info, ok, err := getMeta(s.db, segment)
	if err == nil && !ok {
		err = fmt.Errorf("%w: segment %d", ErrSegmentNotFound, segment)
	}
	return info, err
}

// pebbleLogger sends Pebble's logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) { p.l.Info(fmt.Sprintf(format, args...)) }

func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }

// Fatalf must not return: Pebble calls it on unrecoverable errors.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("pebble: " + msg)
}
