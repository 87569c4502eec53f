package bookie

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/segment"

	"github.com/magnetar-mq/magnetar/internal/raftnode"
)

// errOldLayout means Dir holds a shard written before the Raft log and the
// state were split into two databases.
var errOldLayout = errors.New("bookie: the shard directory has the old single-database layout (db/); move it away or start from an empty directory")

// errPebbleLogLayout means Dir holds a shard whose Raft log is in a Pebble
// database (log/), written before the log moved to raft-wal segment files.
var errPebbleLogLayout = errors.New("bookie: the shard directory keeps its Raft log in Pebble (log/), the layout before the log moved to segment files (wal/); move it away or start from an empty directory")

// storage is where a shard keeps its data (see doc.go, "Write path"):
//
//   - wal (Dir/wal) is the Raft log and stable store: hashicorp/raft-wal
//     segment files, every StoreLogs one write and one fsync, with its
//     metadata in walMeta. Truncation deletes whole segment files.
//   - state (Dir/state) is a Pebble database holding the state machine,
//     without a WAL. Its writes reach the disk only when a memtable
//     flushes, which Pebble does in commit order, so after a crash it is
//     the state as of some applied index (stored with it), and Raft's log
//     replays the rest. fsm.Snapshot and fsm.Restore flush it before Raft
//     may truncate its log.
type storage struct {
	wal   *raftwal.WAL
	arena *encodeArena // walCodec's, armed by log()
	meta  *walMeta
	state *pebble.DB
	// walSyncs counts the fsyncs of the log's segment files.
	walSyncs *atomic.Uint64
}

// walLog is the WAL as Raft's LogStore, with GetLog kept to the log's
// bounds: raft-wal truncates the head of a segment only in its metadata and,
// until that segment is deleted or the WAL reopened, still returns the
// entries it holds below FirstIndex. Raft must see what it truncated as
// gone (raft.ErrLogNotFound), so that a follower that needs those entries
// gets a snapshot, as with any other log store.
//
// It also arms the codec's encodeArena for each batch it stores, and
// truncates the head of the log no further than the state's entries
// reference it (pins; see logref.go), telling heldBack when that stopped a
// truncation.
type walLog struct {
	*raftwal.WAL
	arena    *encodeArena
	pins     *pinSet
	heldBack func(requested uint64)
}

// StoreLogs implements raft.LogStore.
func (l walLog) StoreLogs(logs []*raft.Log) error {
	if l.arena == nil {
		return l.WAL.StoreLogs(logs)
	}
	l.arena.arm(logs)
	defer l.arena.disarm(logs)
	return l.WAL.StoreLogs(logs)
}

// StoreLog implements raft.LogStore (raft-wal's would bypass StoreLogs above).
func (l walLog) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// GetLog implements raft.LogStore.
func (l walLog) GetLog(index uint64, log *raft.Log) error {
	first, err := l.WAL.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return l.WAL.GetLog(index, log)
}

// DeleteRange implements raft.LogStore. Raft deletes from the head of the
// log after a snapshot and from the tail to drop uncommitted entries that
// conflict with a new leader's; the state references only applied, so
// committed, entries, so a range holding the floor of the pins is a head
// truncation, which stops below the floor.
func (l walLog) DeleteRange(min, max uint64) error {
	if l.pins != nil {
		if floor := l.pins.floor(); min <= floor && floor <= max {
			if l.heldBack != nil {
				l.heldBack(max)
			}
			if floor == min {
				return nil
			}
			max = floor - 1
		}
	}
	return l.WAL.DeleteRange(min, max)
}

// log is the WAL as Raft's LogStore, truncated no further than pins allow
// (nil: no limit, for reading only).
func (st storage) log(pins *pinSet, heldBack func(requested uint64)) walLog {
	return walLog{st.wal, st.arena, pins, heldBack}
}

// storageOptions size a shard's storage.
type storageOptions struct {
	cacheSize      int64
	memTableSize   uint64
	walSegmentSize int
	logLevel       string // raft-wal's, as raftnode.Config.LogLevel
}

// openStorage opens (or creates) the shard's log and state under dir, on
// fs (nil: the OS's). It refuses the layouts of older versions.
func openStorage(dir string, fs vfs.FS, o storageOptions, log *slog.Logger) (storage, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if _, err := fs.Stat(filepath.Join(dir, "db")); err == nil {
		return storage{}, fmt.Errorf("%w: %s", errOldLayout, dir)
	}
	if _, err := fs.Stat(filepath.Join(dir, "log")); err == nil {
		return storage{}, fmt.Errorf("%w: %s", errPebbleLogLayout, dir)
	}
	walDir := filepath.Join(dir, "wal")
	if err := mkdirAllSynced(fs, walDir); err != nil {
		return storage{}, fmt.Errorf("bookie: creating %s: %w", walDir, err)
	}
	hl, err := raftnode.NewHCLogger(log.With("subcomponent", "raft-wal"), "wal", o.logLevel)
	if err != nil {
		return storage{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	st := storage{meta: newWALMeta(fs, walDir), walSyncs: new(atomic.Uint64), arena: new(encodeArena)}
	filer := segment.NewFiler(walDir, walVFS{fs: fs, syncs: st.walSyncs})
	if err := repairWAL(st.meta, filer, walDir, log); err != nil {
		return storage{}, err
	}
	st.wal, err = raftwal.Open(walDir,
		raftwal.WithMetaStore(st.meta),
		raftwal.WithSegmentFiler(filer),
		raftwal.WithSegmentSize(o.walSegmentSize),
		raftwal.WithCodec(newWALCodec(st.arena)),
		raftwal.WithLogger(hl),
	)
	if err != nil {
		return storage{}, fmt.Errorf("bookie: opening the raft log (%s): %w", walDir, err)
	}
	cache := pebble.NewCache(o.cacheSize)
	defer cache.Unref()
	plog := pebbleLogger{log.With("subcomponent", "pebble")}
	st.state, err = pebble.Open(filepath.Join(dir, "state"), stateOptions(fs, cache, o.memTableSize, plog))
	if err != nil {
		return storage{}, errors.Join(fmt.Errorf("bookie: opening the state's pebble: %w", err), st.closeLog())
	}
	return st, nil
}

// valueSeparation keeps entries out of the state's sstables.
var valueSeparation = pebble.ValueSeparationPolicy{
	Enabled:               true,
	MinimumSize:           256,
	MaxBlobReferenceDepth: 10,
	RewriteMinimumAge:     5 * time.Minute,
	TargetGarbageRatio:    0.5,
}

// stateOptions are the state database's Pebble options: no WAL (the Raft
// log is the state's write-ahead log), and entries separated into blob
// files when a memtable flushes, so compactions move keys, not entries.
func stateOptions(fs vfs.FS, cache *pebble.Cache, memTableSize uint64, logger pebble.Logger) *pebble.Options {
	o := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		MemTableSize:       memTableSize,
		Logger:             logger,
		FormatMajorVersion: pebble.FormatValueSeparation,
		DisableWAL:         true,
	}
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy { return valueSeparation }
	// A flush writes one sstable and one blob file. Pebble's defaults (2
	// MiB L0 files, flushes split every 4 MiB, counting the values) cut a
	// 64 MiB memtable of entries into ~25 sstables with a blob file each,
	// and file creations cost (openat takes a millisecond of CPU on ext4
	// here at times). Below L0 the defaults stay (4 MiB, doubling per
	// level): those sstables hold only keys and blob references, and
	// narrow ones keep the blob files each references few, so that
	// compactions need not rewrite values (MaxBlobReferenceDepth).
	o.TargetFileSizes[0] = 2 * int64(max(memTableSize, 2<<20))
	o.TargetFileSizes[1] = 4 << 20
	o.FlushSplitBytes = o.TargetFileSizes[0]
	// Start the writeback of a flush's files every 4 MiB rather than
	// Pebble's 512 KiB: sync_file_range was 4% of a shard's CPU under
	// load, and the files are large and written once.
	o.BytesPerSync = 4 << 20
	// Entries are stored as producers sent them, compressed by them or
	// not, as Kafka stores them; compressing them again on every flush
	// cost a tenth of a shard's CPU under load and gained little.
	o.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	return o
}

// close flushes the state, so the next open need not replay the Raft log
// into it, then closes it and the log. Raft must have stopped. The state
// goes first: should its flush fail, the log still holds what it lacks.
func (st storage) close() error {
	return errors.Join(st.state.Flush(), st.state.Close(), st.closeLog())
}

// closeLog closes the WAL and its metadata store (WAL.Close leaves the
// store open).
func (st storage) closeLog() error {
	return errors.Join(st.wal.Close(), st.meta.Close())
}

// mkdirAllSynced creates dir and its missing parents, and fsyncs the
// directories that gained an entry, so a crash cannot lose the new
// directories (and the log in them).
func mkdirAllSynced(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	var created []string // dir, then its missing parents, deepest first
	for d := dir; ; d = fs.PathDir(d) {
		if _, err := fs.Stat(d); err == nil || fs.PathDir(d) == d {
			break
		}
		created = append(created, d)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range created {
		if err := syncDir(fs, fs.PathDir(d)); err != nil {
			return err
		}
	}
	return nil
}
