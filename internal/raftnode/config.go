package raftnode

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// Config configures a Node. The zero values of the tuning knobs are replaced
// by the defaults in EnsureDefaults. FSM and Dir are required, and where the
// Raft log lives: either DB and LogPrefix (the log and stable store in a
// Pebble DB, internal/raftstore) or LogStore and StableStore.
type Config struct {
	// ID is the Raft server ID; default "node-1".
	ID string `yaml:"id"`
	// Dir is where Raft keeps its snapshots (Dir/snapshots).
	Dir string `yaml:"dir"`
	// DB holds the Raft log and stable store under LogPrefix, and may be
	// shared with the FSM. The caller owns it and closes it after
	// Node.Close. Leave DB and LogPrefix unset when LogStore and StableStore
	// are set.
	DB *pebble.DB `yaml:"-"`
	// LogPrefix is the key prefix of the Raft log, e.g. []byte("raft/"). It
	// must not overlap the FSM's keys.
	LogPrefix []byte `yaml:"-"`
	// LogStore and StableStore, set together and instead of DB, are the
	// caller's own Raft log and stable store (e.g. hashicorp/raft-wal). They
	// must keep the durability contract in the package documentation:
	// StoreLogs, Set and SetUint64 return only once what they wrote is on
	// stable storage. The caller owns them and closes them after Node.Close.
	LogStore    raft.LogStore    `yaml:"-"`
	StableStore raft.StableStore `yaml:"-"`
	// FSM is the state machine; it may also implement raft.BatchingFSM. See
	// the package documentation for the durability contract it must follow.
	FSM raft.FSM `yaml:"-"`
	// Logger receives Raft's logs; nil discards them.
	Logger *slog.Logger `yaml:"-"`
	// LogLevel filters Raft's own logs: trace, debug, info, warn or error.
	LogLevel string `yaml:"log_level"`

	// BindAddr is the TCP address Raft listens on (host:port). Empty means
	// the in-memory transport: a single node that talks to nobody, which
	// requires Peers to be empty.
	BindAddr string `yaml:"bind_addr"`
	// AdvertiseAddr is the address the other nodes reach this one at; it
	// must be a concrete IP:port. Default: this node's address in Peers,
	// else BindAddr (with 127.0.0.1 if BindAddr has no host).
	AdvertiseAddr string `yaml:"advertise_addr"`
	// Peers are the initial voters, this node included, bootstrapped on the
	// first start (every node bootstraps the same configuration). Empty
	// means a single voter: this node at its advertised address.
	Peers []Peer `yaml:"peers"`
	// StreamLayer, if set, carries the Raft connections instead of a TCP
	// listener of the node's own on BindAddr (e.g. a raftmux.Layer, so
	// several groups share one port); its Addr is the node's address. The
	// node closes it.
	StreamLayer raft.StreamLayer `yaml:"-"`
	// CloseTimeout bounds how long Close waits for commands in flight before
	// it shuts Raft down anyway (e.g. when the node lost its majority).
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// TransportTimeout is the I/O deadline of the TCP transport.
	TransportTimeout time.Duration `yaml:"transport_timeout"`

	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout are Raft's
	// timers. The defaults are short so that a single node is leader within
	// 50-100 ms of starting.
	HeartbeatTimeout   time.Duration `yaml:"heartbeat_timeout"`
	ElectionTimeout    time.Duration `yaml:"election_timeout"`
	LeaderLeaseTimeout time.Duration `yaml:"leader_lease_timeout"`
	// CommitTimeout bounds how long a follower may wait to learn a commit.
	CommitTimeout time.Duration `yaml:"commit_timeout"`
	// MaxAppendEntries is the most entries sent, stored (one synced batch)
	// and applied at once; also the size of the apply channel buffer.
	MaxAppendEntries int `yaml:"max_append_entries"`
	// SnapshotInterval is how often Raft checks whether to snapshot, and
	// SnapshotThreshold how many new log entries make it do so.
	SnapshotInterval  time.Duration `yaml:"snapshot_interval"`
	SnapshotThreshold uint64        `yaml:"snapshot_threshold"`
	// TrailingLogs is how many entries are kept behind a snapshot, so a
	// slightly lagging follower can catch up from the log.
	TrailingLogs uint64 `yaml:"trailing_logs"`
	// SnapshotsRetained is how many snapshots are kept in Dir/snapshots.
	SnapshotsRetained int `yaml:"snapshots_retained"`
	// WrapSnapshots, if set, wraps the file snapshot store in Dir before
	// Raft uses it, e.g. to produce a snapshot's stream only when a
	// follower needs it.
	WrapSnapshots func(raft.SnapshotStore) raft.SnapshotStore `yaml:"-"`
	// LogCacheSize is how many recent log entries are cached in memory in
	// front of the log store; negative disables the cache.
	LogCacheSize int `yaml:"log_cache_size"`
}

// Peer is one initial voter of the group.
type Peer struct {
	// ID is the peer's Raft server ID.
	ID string `yaml:"id"`
	// Address is the peer's Raft TCP address (host:port).
	Address string `yaml:"address"`
}

// Defaults, set in one place by EnsureDefaults.
const (
	DefaultID                 = "node-1"
	DefaultLogLevel           = "warn"
	DefaultHeartbeatTimeout   = 50 * time.Millisecond
	DefaultElectionTimeout    = 50 * time.Millisecond
	DefaultLeaderLeaseTimeout = 50 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond
	DefaultMaxAppendEntries   = 1024
	DefaultSnapshotInterval   = 30 * time.Second
	DefaultSnapshotThreshold  = 16384
	DefaultTrailingLogs       = 10240
	DefaultSnapshotsRetained  = 2
	DefaultLogCacheSize       = 512
	DefaultCloseTimeout       = 5 * time.Second
	DefaultTransportTimeout   = 2 * time.Second
)

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("raftnode: invalid config")

// RegisterFlags registers the tunable fields (not DB, LogPrefix, LogStore,
// StableStore, FSM or Logger, which only code can set) with their defaults and help text.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.ID, prefix+"id", DefaultID, "Raft server ID of this node.")
	fs.StringVar(&c.Dir, prefix+"dir", "", "Directory for Raft snapshots.")
	fs.StringVar(&c.LogLevel, prefix+"log-level", DefaultLogLevel, "Level of Raft's own logs: trace, debug, info, warn, error.")
	fs.DurationVar(&c.HeartbeatTimeout, prefix+"heartbeat-timeout", DefaultHeartbeatTimeout, "Raft heartbeat timeout.")
	fs.DurationVar(&c.ElectionTimeout, prefix+"election-timeout", DefaultElectionTimeout, "Raft election timeout.")
	fs.DurationVar(&c.LeaderLeaseTimeout, prefix+"leader-lease-timeout", DefaultLeaderLeaseTimeout, "Raft leader lease timeout (<= heartbeat timeout).")
	fs.DurationVar(&c.CommitTimeout, prefix+"commit-timeout", DefaultCommitTimeout, "Raft commit timeout.")
	fs.IntVar(&c.MaxAppendEntries, prefix+"max-append-entries", DefaultMaxAppendEntries, "Most Raft entries appended and applied at once (<= 1024).")
	fs.DurationVar(&c.SnapshotInterval, prefix+"snapshot-interval", DefaultSnapshotInterval, "How often Raft checks whether to snapshot.")
	fs.Uint64Var(&c.SnapshotThreshold, prefix+"snapshot-threshold", DefaultSnapshotThreshold, "New log entries that trigger a snapshot.")
	fs.Uint64Var(&c.TrailingLogs, prefix+"trailing-logs", DefaultTrailingLogs, "Log entries kept behind a snapshot.")
	fs.IntVar(&c.SnapshotsRetained, prefix+"snapshots-retained", DefaultSnapshotsRetained, "Raft snapshots kept on disk.")
	fs.IntVar(&c.LogCacheSize, prefix+"log-cache-size", DefaultLogCacheSize, "Recent log entries cached in memory (negative: none).")
	fs.StringVar(&c.BindAddr, prefix+"bind-addr", "", "TCP address Raft listens on; empty: in-memory transport, single node.")
	fs.StringVar(&c.AdvertiseAddr, prefix+"advertise-addr", "", "Raft address other nodes reach this one at (default: its Peers entry, else the bind address).")
	fs.DurationVar(&c.CloseTimeout, prefix+"close-timeout", DefaultCloseTimeout, "Longest wait for commands in flight on Close before Raft is shut down anyway.")
	fs.DurationVar(&c.TransportTimeout, prefix+"transport-timeout", DefaultTransportTimeout, "I/O deadline of the Raft TCP transport.")
}

// EnsureDefaults replaces zero values by the defaults.
func (c *Config) EnsureDefaults() {
	setDefault(&c.ID, DefaultID)
	setDefault(&c.LogLevel, DefaultLogLevel)
	setDefault(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDefault(&c.ElectionTimeout, DefaultElectionTimeout)
	setDefault(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	setDefault(&c.CommitTimeout, DefaultCommitTimeout)
	setDefault(&c.MaxAppendEntries, DefaultMaxAppendEntries)
	setDefault(&c.SnapshotInterval, DefaultSnapshotInterval)
	setDefault(&c.SnapshotThreshold, DefaultSnapshotThreshold)
	setDefault(&c.TrailingLogs, DefaultTrailingLogs)
	setDefault(&c.SnapshotsRetained, DefaultSnapshotsRetained)
	setDefault(&c.LogCacheSize, DefaultLogCacheSize)
	setDefault(&c.CloseTimeout, DefaultCloseTimeout)
	setDefault(&c.TransportTimeout, DefaultTransportTimeout)
	if c.AdvertiseAddr == "" {
		for _, p := range c.Peers {
			if p.ID == c.ID {
				c.AdvertiseAddr = p.Address
			}
		}
	}
	if c.AdvertiseAddr == "" && c.BindAddr != "" {
		c.AdvertiseAddr = c.BindAddr
		if host, port, err := net.SplitHostPort(c.BindAddr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			c.AdvertiseAddr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports whether the config can start a node. Call EnsureDefaults
// first.
func (c *Config) Validate() error {
	ownStores := c.LogStore != nil || c.StableStore != nil
	switch {
	case ownStores && (c.LogStore == nil || c.StableStore == nil):
		return fmt.Errorf("%w: LogStore and StableStore must be set together", ErrInvalidConfig)
	case ownStores && (c.DB != nil || len(c.LogPrefix) > 0):
		return fmt.Errorf("%w: DB and LogPrefix must be unset when LogStore and StableStore are set", ErrInvalidConfig)
	case !ownStores && c.DB == nil:
		return fmt.Errorf("%w: DB is nil (and no LogStore and StableStore)", ErrInvalidConfig)
	case !ownStores && len(c.LogPrefix) == 0:
		return fmt.Errorf("%w: LogPrefix is empty", ErrInvalidConfig)
	case c.FSM == nil:
		return fmt.Errorf("%w: FSM is nil", ErrInvalidConfig)
	case c.Dir == "":
		return fmt.Errorf("%w: Dir is empty", ErrInvalidConfig)
	}
	if err := c.validatePeers(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := raft.ValidateConfig(c.raftConfig(nil)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// raftConfig translates c into hashicorp's config.
func (c *Config) raftConfig(logger *hclogAdapter) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.MaxAppendEntries = c.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotInterval = c.SnapshotInterval
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.TrailingLogs = c.TrailingLogs
	rc.NoSnapshotRestoreOnStart = true
	if logger != nil {
		rc.Logger = logger
	}
	return rc
}

// validatePeers checks the transport settings and the initial voters.
func (c *Config) validatePeers() error {
	switch {
	case c.StreamLayer != nil:
	case c.BindAddr == "":
		if len(c.Peers) > 0 {
			return errors.New("peers are set but bind address is empty")
		}
		return nil
	default:
		if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
			return fmt.Errorf("bind address: %w", err)
		}
	}
	if _, err := net.ResolveTCPAddr("tcp", c.AdvertiseAddr); err != nil {
		return fmt.Errorf("advertise address: %w", err)
	}
	if len(c.Peers) == 0 {
		return nil
	}
	seen := map[string]bool{}
	self := false
	for _, p := range c.Peers {
		if p.ID == "" || p.Address == "" {
			return fmt.Errorf("peer %+v: id and address are required", p)
		}
		if seen[p.ID] {
			return fmt.Errorf("peer id %q appears twice", p.ID)
		}
		seen[p.ID] = true
		self = self || p.ID == c.ID
	}
	if !self {
		return fmt.Errorf("this node's id %q is not among the peers", c.ID)
	}
	return nil
}

// voters is the configuration bootstrapped on the first start.
func (c *Config) voters(self raft.ServerAddress) raft.Configuration {
	if len(c.Peers) == 0 {
		return raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(c.ID), Address: self}}}
	}
	var conf raft.Configuration
	for _, p := range c.Peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	return conf
}
