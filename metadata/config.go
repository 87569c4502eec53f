package metadata

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/cluster"
)

// Config configures the metadata service.
type Config struct {
	// Dir holds the service's Pebble DB (Dir/db, which also holds the Raft
	// log) and its Raft snapshots (Dir/snapshots).
	Dir string `yaml:"dir"`
	// HistoryRevisions is how many of the latest revisions' events are kept
	// for Watch to resume from; older ones are compacted away.
	HistoryRevisions int64 `yaml:"history_revisions"`
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger `yaml:"-"`

	// NodeID is this node's Raft server ID; default "meta-1".
	NodeID string `yaml:"node_id"`
	// RaftAddr is the TCP address Raft listens on. Empty (and no Peers):
	// a single node with an in-memory transport, as in standalone.
	RaftAddr string `yaml:"raft_addr"`
	// Peers are the initial voters, this node included (1, 3 or 5). Every
	// node of a cluster is started with the same list. Empty: this node
	// alone.
	Peers Peers `yaml:"peers"`
	// RaftStreamLayer, if set, carries Raft's connections instead of a TCP
	// listener of its own on RaftAddr (which the layer should listen on):
	// `magnetar meta` sets a TLS one (internal/raftmux) with cluster TLS.
	// Raft closes it.
	RaftStreamLayer raft.StreamLayer `yaml:"-"`
	// ElectionTimeout is Raft's heartbeat and election timeout on a
	// cluster (a single node keeps raftnode's short defaults). Default 500ms.
	ElectionTimeout time.Duration `yaml:"election_timeout"`
	// MinFreeBytes is the disk space reserve: below it, writes that add
	// data fail with ErrDiskFull (see diskspace.go). It must hold at least
	// a memtable. 0: the default; negative: no check.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// MemTableSize is the Pebble memtable size in bytes: how much is
	// written (to the WAL, then flushed to an sstable) between flushes.
	// 0: the default.
	MemTableSize int64 `yaml:"memtable_size"`
}

// Peer is one voter of a metadata cluster: its Raft server ID, where the
// other nodes reach its Raft transport, and where clients reach its gRPC
// API (a follower sends clients there when this peer is the leader).
type Peer = cluster.Peer

// Peers is a list of voters; as a flag it reads
// "id=raftaddr=clientaddr,id=raftaddr=clientaddr,...".
type Peers = cluster.Peers

// ParsePeers parses "id=raftaddr=clientaddr,..."; an empty string is no
// peers. Its errors wrap ErrInvalidConfig.
func ParsePeers(s string) (Peers, error) {
	ps, err := cluster.ParsePeers(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return ps, nil
}

// Defaults of Config.
const (
	DefaultHistoryRevisions = 100_000
	DefaultNodeID           = "meta-1"
	DefaultElectionTimeout  = 500 * time.Millisecond
	DefaultMemTableSize     = 32 << 20
)

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("metadata: invalid config")

// RegisterFlags registers the config's flags, with their defaults and help.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, prefix+"data-dir", "", "Directory of the metadata service's data (Pebble DB, Raft log and snapshots).")
	fs.Int64Var(&c.HistoryRevisions, prefix+"history-revisions", DefaultHistoryRevisions, "Latest revisions whose events are kept for watches to resume from.")
	fs.StringVar(&c.NodeID, prefix+"node-id", DefaultNodeID, "Raft server ID of this node; must be one of --"+prefix+"peers.")
	fs.StringVar(&c.RaftAddr, prefix+"raft-addr", "", "TCP address Raft listens on, e.g. :6661 (empty with no peers: single node, no network).")
	fs.Var(&c.Peers, prefix+"peers", "Initial voters, this node included, the same list on every node: id=raftaddr=clientaddr,... e.g. meta-1=10.0.0.1:6661=10.0.0.1:6660,meta-2=10.0.0.2:6661=10.0.0.2:6660,meta-3=10.0.0.3:6661=10.0.0.3:6660.")
	fs.DurationVar(&c.ElectionTimeout, prefix+"election-timeout", DefaultElectionTimeout, "Raft heartbeat and election timeout of a cluster; a dead leader is replaced after about this long.")
	c.RegisterDiskFlags(prefix, fs)
}

// RegisterDiskFlags registers the flags of the service's use of its disk
// (the free space reserve and the memtable size), which RegisterFlags
// includes; a standalone server registers only these.
func (c *Config) RegisterDiskFlags(prefix string, fs *flag.FlagSet) {
	fs.Int64Var(&c.MinFreeBytes, prefix+"min-free-bytes", DefaultMinFreeBytes, "Free disk space in bytes below which the metadata service refuses writes that add data (puts, grants, txns with a put) with a disk-full error; reads, deletes and lease keep-alives go on (must hold --"+prefix+"memtable-size; negative: no check).")
	fs.Int64Var(&c.MemTableSize, prefix+"memtable-size", DefaultMemTableSize, "Pebble memtable size in bytes of the metadata service (at least 1 MiB).")
}

// EnsureDefaults replaces zero values by the defaults.
func (c *Config) EnsureDefaults() {
	if c.HistoryRevisions == 0 {
		c.HistoryRevisions = DefaultHistoryRevisions
	}
	if c.NodeID == "" {
		c.NodeID = DefaultNodeID
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = DefaultMemTableSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports whether the config can open a service.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: dir is empty", ErrInvalidConfig)
	}
	if c.HistoryRevisions < 1 {
		return fmt.Errorf("%w: history revisions must be positive, got %d", ErrInvalidConfig, c.HistoryRevisions)
	}
	if c.ElectionTimeout < 10*time.Millisecond {
		return fmt.Errorf("%w: election timeout %v is below 10ms", ErrInvalidConfig, c.ElectionTimeout)
	}
	if c.MemTableSize != 0 && (c.MemTableSize < 1<<20 || c.MemTableSize >= 4<<30) {
		return fmt.Errorf("%w: memtable size %d is not between 1 MiB and 4 GiB", ErrInvalidConfig, c.MemTableSize)
	}
	memtable := cmp.Or(c.MemTableSize, DefaultMemTableSize)
	if c.MinFreeBytes > 0 && c.MinFreeBytes < memtable {
		return fmt.Errorf("%w: the free space reserve (%d bytes) must hold a memtable (%d bytes)", ErrInvalidConfig, c.MinFreeBytes, memtable)
	}
	if len(c.Peers) > 0 && c.RaftAddr == "" {
		return fmt.Errorf("%w: peers are set but the raft address is empty", ErrInvalidConfig)
	}
	if c.RaftAddr != "" {
		if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
			return fmt.Errorf("%w: raft address: %w", ErrInvalidConfig, err)
		}
	}
	if n := len(c.Peers); n > 0 && n%2 == 0 {
		return fmt.Errorf("%w: %d peers: use an odd number of voters (1, 3 or 5)", ErrInvalidConfig, n)
	}
	if err := c.Peers.Validate(c.NodeID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}
