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
	// MaxMessageBytes caps one produced batch.
	MaxMessageBytes int `yaml:"max-message-bytes"`
	// SegmentMaxBytes rolls a partition to a new segment past this size.
	SegmentMaxBytes int64 `yaml:"segment-max-bytes"`
	// TailCacheBytes is how many recent bytes each loaded partition keeps
	// in memory for consumers that follow the tail.
	TailCacheBytes int `yaml:"tail-cache-bytes"`
	// CursorFlushInterval is how often acknowledged positions are persisted;
	// a crash may redeliver what was acknowledged within it.
	CursorFlushInterval time.Duration `yaml:"cursor-flush-interval"`
	// Policies are the defaults of the policies namespaces and topics do
	// not set (see policies.go and docs/tenants.md).
	Policies PolicyDefaults `yaml:"default-policies"`
}

// RegisterFlags registers the broker's flags under prefix (e.g. "broker.")
// with their defaults.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.DefaultNamespace, prefix+"default-namespace", "public/default", "namespace (tenant/namespace) of bare topic names")
	fs.BoolVar(&c.AutoCreateTopics, prefix+"auto-create-topics", true, "create a one-partition topic on first use")
	fs.IntVar(&c.MaxMessageBytes, prefix+"max-message-bytes", 5<<20, "largest produced batch in bytes")
	fs.Int64Var(&c.SegmentMaxBytes, prefix+"segment-max-bytes", 256<<20, "roll a partition to a new segment past this many bytes")
	fs.IntVar(&c.TailCacheBytes, prefix+"tail-cache-bytes", 4<<20, "recent bytes kept in memory per loaded partition")
	fs.DurationVar(&c.CursorFlushInterval, prefix+"cursor-flush-interval", 100*time.Millisecond, "how often acknowledgements are persisted")
	c.Policies.RegisterFlags(prefix+"default-", fs)
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if _, err := ParseTopicName("x", c.DefaultNamespace); err != nil {
		return fmt.Errorf("broker: default-namespace: %w", err)
	}
	switch {
	case c.MaxMessageBytes <= 0:
		return fmt.Errorf("broker: max-message-bytes must be positive")
	case c.SegmentMaxBytes <= 0:
		return fmt.Errorf("broker: segment-max-bytes must be positive")
	case c.TailCacheBytes < 0:
		return fmt.Errorf("broker: tail-cache-bytes must not be negative")
	case c.CursorFlushInterval <= 0:
		return fmt.Errorf("broker: cursor-flush-interval must be positive")
	}
	return c.Policies.Validate()
}

// DefaultConfig returns the defaults RegisterFlags would set.
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags("", flag.NewFlagSet("", flag.ContinueOnError))
	return c
}
