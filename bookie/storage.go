package bookie

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// errOldLayout means Dir holds a shard written before the Raft log and the
// state were split into two databases.
var errOldLayout = errors.New("bookie: the shard directory has the old single-database layout (db/); move it away or start from an empty directory")

// storage is a shard's two Pebble databases (see doc.go, "Write path"):
//
//   - log (Dir/log) holds the Raft log and stable store, with a WAL; every
//     log write is an fsynced batch.
//   - state (Dir/state) holds the state machine, without a WAL. Its writes
//     reach the disk only when a memtable flushes, which Pebble does in
//     commit order, so after a crash it is the state as of some applied
//     index (stored with it), and Raft's log replays the rest. fsm.Snapshot
//     and fsm.Restore flush it before Raft may truncate its log.
type storage struct {
	log   *pebble.DB
	state *pebble.DB
}

// openStorage opens (or creates) the shard's databases under dir, on fs
// (nil: the OS's).
func openStorage(dir string, fs vfs.FS, cacheSize int64, memTableSize uint64, log *slog.Logger) (storage, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if _, err := fs.Stat(filepath.Join(dir, "db")); err == nil {
		return storage{}, fmt.Errorf("%w: %s", errOldLayout, dir)
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	plog := pebbleLogger{log.With("subcomponent", "pebble")}
	logDB, err := pebble.Open(filepath.Join(dir, "log"), logOptions(fs, cache, memTableSize, plog))
	if err != nil {
		return storage{}, fmt.Errorf("bookie: opening the raft log's pebble: %w", err)
	}
	stateDB, err := pebble.Open(filepath.Join(dir, "state"), stateOptions(fs, cache, memTableSize, plog))
	if err != nil {
		logDB.Close()
		return storage{}, fmt.Errorf("bookie: opening the state's pebble: %w", err)
	}
	return storage{log: logDB, state: stateDB}, nil
}

// valueSeparation keeps entries out of the state's sstables.
var valueSeparation = pebble.ValueSeparationPolicy{
	Enabled:               true,
	MinimumSize:           256,
	MaxBlobReferenceDepth: 10,
	RewriteMinimumAge:     5 * time.Minute,
	TargetGarbageRatio:    0.5,
}

// logOptions are the Raft log database's Pebble options.
func logOptions(fs vfs.FS, cache *pebble.Cache, memTableSize uint64, logger pebble.Logger) *pebble.Options {
	o := &pebble.Options{
		FS:           fs,
		Cache:        cache,
		MemTableSize: memTableSize,
		Logger:       logger,
		// Log entries that outlive a memtable go to blob files when it
		// flushes, and stay there until the log is truncated past them:
		// compactions move their keys, not their bytes.
		FormatMajorVersion: pebble.FormatValueSeparation,
	}
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy { return valueSeparation }
	return o
}

// stateOptions are the state database's Pebble options: logOptions without
// a WAL. The Raft log is the state's write-ahead log.
func stateOptions(fs vfs.FS, cache *pebble.Cache, memTableSize uint64, logger pebble.Logger) *pebble.Options {
	o := logOptions(fs, cache, memTableSize, logger)
	o.DisableWAL = true
	return o
}

// close flushes the state, so the next open need not replay the Raft log
// into it, and closes both databases. Raft must have stopped.
func (st storage) close() error {
	return errors.Join(st.state.Flush(), st.state.Close(), st.log.Close())
}
