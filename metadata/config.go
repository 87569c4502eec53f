package metadata

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
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
}

// DefaultHistoryRevisions is the default of Config.HistoryRevisions.
const DefaultHistoryRevisions = 100_000

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("metadata: invalid config")

// RegisterFlags registers the config's flags, with their defaults and help.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, prefix+"dir", "", "Directory of the metadata service's data (Pebble DB, Raft log and snapshots).")
	fs.Int64Var(&c.HistoryRevisions, prefix+"history-revisions", DefaultHistoryRevisions, "Latest revisions whose events are kept for watches to resume from.")
}

// EnsureDefaults replaces zero values by the defaults.
func (c *Config) EnsureDefaults() {
	if c.HistoryRevisions == 0 {
		c.HistoryRevisions = DefaultHistoryRevisions
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
	return nil
}
