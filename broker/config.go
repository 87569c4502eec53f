package broker

import (
	"flag"
	"fmt"
	"time"
)

// Config is the broker's configuration. Defaults are set by RegisterFlags.
type Config struct {
	// DefaultNamespace receives bare topic names ("orders" is
	// public/default/orders by default).
	DefaultNamespace string `yaml:"default-namespace"`
	// AutoCreateTopics creates a one-partition topic on first produce or
	// lookup when it does not exist.
	AutoCreateTopics bool `yaml:"auto-create-topics"`
	// MaxMessageBytes caps one produced batch, and what a compressed one
	// holds once decompressed (its header and records).
	MaxMessageBytes int `yaml:"max-message-bytes"`
	// DecompressBudgetBytes bounds the memory that validating compressed
	// produced batches takes at once: each validation holds
	// MaxMessageBytes of it while it decompresses, and waits while the
	// budget is spent. At least MaxMessageBytes.
	DecompressBudgetBytes int64 `yaml:"decompress-budget-bytes"`
	// MaxNameBytes caps the names of subscriptions, consumers, producers
	// and Kafka groups (names.go).
	MaxNameBytes int `yaml:"max-name-bytes"`
	// SegmentMaxBytes rolls a partition to a new segment past this size.
	SegmentMaxBytes int64 `yaml:"segment-max-bytes"`
	// SegmentMaxAge rolls a partition's open segment once it is this old
	// and holds data (0: never), so retention, which deletes only sealed
	// segments, can reach data of slow partitions.
	SegmentMaxAge time.Duration `yaml:"segment-max-age"`
	// PolicyCheckInterval is how often the retention loop applies
	// retention, message TTL, backlog-quota eviction and roll by age to
	// the loaded partitions (retention.go).
	PolicyCheckInterval time.Duration `yaml:"policy-check-interval"`
	// TailCacheBytes is how many recent bytes each loaded partition keeps
	// in memory for consumers that follow the tail.
	TailCacheBytes int `yaml:"tail-cache-bytes"`
	// CursorFlushInterval is how often acknowledged positions are persisted;
	// a crash may redeliver what was acknowledged within it.
	CursorFlushInterval time.Duration `yaml:"cursor-flush-interval"`
	// Policies are the defaults of the policies namespaces and topics do
	// not set (see policies.go and docs/tenants.md).
	Policies PolicyDefaults `yaml:"default-policies"`

	// Ownership (ownership.go). ID names the broker in the metadata
	// service (default: its advertised native address); a broker that
	// starts with the ID of a registration still held revokes it, taking
	// over from its own previous run at once.
	ID string `yaml:"id"`
	// DefaultBundles is the bundle count of namespaces that do not set
	// one. Every broker of a cluster must use the same value.
	DefaultBundles int `yaml:"default-bundles"`
	// LeaseTTL is the time to live of the broker's lease: after a crash
	// its bundles are free again (and its topics move) within about this.
	LeaseTTL time.Duration `yaml:"lease-ttl"`
	// IdleTimeout unloads a partition with no consumer attached and no
	// produce, fetch or other use for this long (0: never).
	IdleTimeout time.Duration `yaml:"idle-timeout"`

	// Authorization (authz.go). Its flags span every listener, so the
	// server registers them (as authorization.*), not RegisterFlags.
	Authorization AuthzConfig `yaml:"authorization"`
}

// RegisterFlags registers the broker's flags under prefix (e.g. "broker.")
// with their defaults.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.DefaultNamespace, prefix+"default-namespace", "public/default", "namespace (tenant/namespace) of bare topic names")
	fs.BoolVar(&c.AutoCreateTopics, prefix+"auto-create-topics", true, "create a one-partition topic on first use")
	fs.IntVar(&c.MaxMessageBytes, prefix+"max-message-bytes", 5<<20, "largest produced batch in bytes, compressed or once decompressed")
	fs.Int64Var(&c.DecompressBudgetBytes, prefix+"decompress-budget-bytes", 64<<20, "memory for validating compressed produced batches at once; each takes max-message-bytes of it (at least max-message-bytes)")
	fs.IntVar(&c.MaxNameBytes, prefix+"max-name-bytes", 255, fmt.Sprintf("longest subscription, consumer, producer or group name in bytes (at most %d)", MaxNameBytesLimit))
	fs.Int64Var(&c.SegmentMaxBytes, prefix+"segment-max-bytes", 256<<20, "roll a partition to a new segment past this many bytes")
	fs.DurationVar(&c.SegmentMaxAge, prefix+"segment-max-age", 4*time.Hour, "roll a partition to a new segment once the open one is this old and not empty (0: never)")
	fs.DurationVar(&c.PolicyCheckInterval, prefix+"policy-check-interval", time.Minute, "how often retention, message TTL, backlog-quota eviction and roll by age are applied")
	fs.IntVar(&c.TailCacheBytes, prefix+"tail-cache-bytes", 4<<20, "recent bytes kept in memory per loaded partition")
	fs.DurationVar(&c.CursorFlushInterval, prefix+"cursor-flush-interval", 100*time.Millisecond, "how often acknowledgements are persisted")
	c.Policies.RegisterFlags(prefix+"default-", fs)
	fs.StringVar(&c.ID, prefix+"id", "", "broker ID in the metadata service (default: the advertised native address)")
	fs.IntVar(&c.DefaultBundles, prefix+"default-bundles", 4, "bundles of a namespace that does not set its own count (same on every broker)")
	fs.DurationVar(&c.LeaseTTL, prefix+"lease-ttl", 10*time.Second, "lease of the broker's registration and bundles: a crashed broker's topics move after about this")
	fs.DurationVar(&c.IdleTimeout, prefix+"idle-timeout", 5*time.Minute, "unload a partition unused (no consumer, produce or fetch) for this long; 0: never")
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if _, err := ParseTopicName("x", c.DefaultNamespace); err != nil {
		return fmt.Errorf("broker: default-namespace: %w", err)
	}
	switch {
	case c.MaxMessageBytes <= 0:
		return fmt.Errorf("broker: max-message-bytes must be positive")
	case c.DecompressBudgetBytes < int64(c.MaxMessageBytes):
		return fmt.Errorf("broker: decompress-budget-bytes (%d) must be at least max-message-bytes (%d)", c.DecompressBudgetBytes, c.MaxMessageBytes)
	case c.MaxNameBytes < 1 || c.MaxNameBytes > MaxNameBytesLimit:
		return fmt.Errorf("broker: max-name-bytes must be between 1 and %d", MaxNameBytesLimit)
	case c.SegmentMaxBytes <= 0:
		return fmt.Errorf("broker: segment-max-bytes must be positive")
	case c.SegmentMaxAge < 0:
		return fmt.Errorf("broker: segment-max-age must not be negative")
	case c.PolicyCheckInterval <= 0:
		return fmt.Errorf("broker: policy-check-interval must be positive")
	case c.TailCacheBytes < 0:
		return fmt.Errorf("broker: tail-cache-bytes must not be negative")
	case c.CursorFlushInterval <= 0:
		return fmt.Errorf("broker: cursor-flush-interval must be positive")
	case c.DefaultBundles < 1 || c.DefaultBundles > MaxBundles:
		return fmt.Errorf("broker: default-bundles must be between 1 and %d", MaxBundles)
	case c.LeaseTTL < 100*time.Millisecond:
		return fmt.Errorf("broker: lease-ttl must be at least 100ms")
	case c.IdleTimeout < 0:
		return fmt.Errorf("broker: idle-timeout must not be negative")
	}
	if err := c.Authorization.Validate(); err != nil {
		return err
	}
	return c.Policies.Validate()
}

// DefaultConfig returns the defaults RegisterFlags would set.
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags("", flag.NewFlagSet("", flag.ContinueOnError))
	return c
}
