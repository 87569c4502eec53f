package bookie

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/magnetar-mq/magnetar/internal/raftnode"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// Defaults of ShardConfig.
const (
	DefaultCacheSize    = 128 << 20
	DefaultMemTableSize = 64 << 20
)

// ErrInvalidConfig means a ShardConfig cannot work.
var ErrInvalidConfig = errors.New("bookie: invalid config")

// ShardConfig configures a Shard.
type ShardConfig struct {
	// Dir holds the shard's Pebble database (Dir/db) and Raft snapshots
	// (Dir/raft unless Raft.Dir is set).
	Dir string `yaml:"dir"`
	// CacheSize is Pebble's block cache, in bytes.
	CacheSize int64 `yaml:"cache_size"`
	// MemTableSize is Pebble's memtable size, in bytes.
	MemTableSize uint64 `yaml:"memtable_size"`
	// Raft tunes the shard's Raft node. OpenShard fills in its DB, FSM,
	// LogPrefix and Logger.
	Raft raftnode.Config `yaml:"raft"`
	// Logger receives the shard's logs (with component=bookie); nil
	// discards them.
	Logger *slog.Logger `yaml:"-"`
}

// RegisterFlags registers the config's flags, with defaults, under prefix.
func (c *ShardConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, prefix+"dir", "", "Directory of the bookie shard's data.")
	fs.Int64Var(&c.CacheSize, prefix+"cache-size", DefaultCacheSize, "Pebble block cache size in bytes.")
	fs.Uint64Var(&c.MemTableSize, prefix+"memtable-size", DefaultMemTableSize, "Pebble memtable size in bytes.")
	c.Raft.RegisterFlags(prefix+"raft.", fs)
}

// EnsureDefaults fills in unset fields.
func (c *ShardConfig) EnsureDefaults() {
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = DefaultMemTableSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
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
	}
	return nil
}

// Shard is one bookie shard served in process: a Raft group (a single voter
// for now) over a Pebble database. It implements Client; every method is
// safe for concurrent use, and concurrent appends share Raft batches and
// fsyncs (group commit).
type Shard struct {
	log  *slog.Logger
	db   *pebble.DB
	node *raftnode.Node

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

// OpenShard opens (or creates) the shard stored under cfg.Dir and returns
// once it is leader and has applied every committed command.
func OpenShard(ctx context.Context, cfg ShardConfig) (*Shard, error) {
	return openShard(ctx, cfg, nil)
}

// openShard is OpenShard with Pebble on fs (nil: the OS's), so tests can
// simulate crashes.
func openShard(ctx context.Context, cfg ShardConfig, fs vfs.FS) (*Shard, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "bookie")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bookie: %w", err)
	}
	cache := pebble.NewCache(cfg.CacheSize)
	defer cache.Unref()
	db, err := pebble.Open(filepath.Join(cfg.Dir, "db"), &pebble.Options{
		FS:           fs,
		Cache:        cache,
		MemTableSize: cfg.MemTableSize,
		Logger:       pebbleLogger{log.With("subcomponent", "pebble")},
	})
	if err != nil {
		return nil, fmt.Errorf("bookie: opening pebble: %w", err)
	}
	f, err := newFSM(db, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	log.Info("opening shard", "dir", cfg.Dir, "applied_index", f.applied)
	rc := cfg.Raft
	rc.DB = db
	rc.FSM = f
	rc.LogPrefix = raftLogPrefix
	rc.Logger = log
	node, err := raftnode.Open(ctx, rc)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bookie: starting raft: %w", err)
	}
	return &Shard{log: log, db: db, node: node}, nil
}

// Close stops taking calls, waits for the calls in flight to finish (Raft
// is still running, so their proposals complete; cancel their contexts to
// hurry them), then stops Raft and closes the database. Draining first
// matters: a proposal handed to hashicorp/raft as it shuts down may never
// be answered (hashicorp/raft#498). Calls made after Close fail with
// ErrClosed. Close is idempotent.
func (s *Shard) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.ops.Lock()
		defer s.ops.Unlock()
		s.closeErr = errors.Join(s.node.Close(), s.db.Close())
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
	if errors.Is(err, raftnode.ErrClosed) {
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return resp, err
}

// CreateSegment implements Client.
func (s *Shard) CreateSegment(ctx context.Context, segment uint64, startOffset int64, epoch uint64) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.exit()
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

// Read implements Client. It serves the state applied on this node (the
// leader), without a trip through Raft; the entries are copies.
func (s *Shard) Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.exit()
	return readEntries(s.db, segment, fromOffset, maxBytes)
}

// Info implements Client.
func (s *Shard) Info(ctx context.Context, segment uint64) (SegmentInfo, error) {
	if err := s.enter(ctx); err != nil {
		return SegmentInfo{}, err
	}
	defer s.exit()
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
