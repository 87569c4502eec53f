package metadata

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// fsm is the replicated state machine: it applies commands to the key space
// in Pebble and publishes the resulting events to the watch hub. It follows
// internal/raftnode's durability contract: state, revision and applied index
// are written in one NoSync batch per Raft batch; entries at or below the
// stored applied index are skipped; Snapshot syncs the WAL first.
//
// hashicorp/raft calls ApplyBatch, Apply, Snapshot and Restore from one
// goroutine, one at a time, so the fields below need no lock.
type fsm struct {
	db     *pebble.DB
	hub    *hub
	logger *slog.Logger

	// historyLimit is how many revisions of history are kept at least;
	// compactEvery is how far past it history may grow before the oldest
	// revisions are deleted in one range delete.
	historyLimit int64
	compactEvery int64

	applied   uint64 // last Raft index applied
	rev       int64  // current revision
	compacted int64  // history holds revisions > compacted

	// leases, once set, is told about every lease granted and revoked,
	// after the batch that did so is committed. It is set while Raft runs,
	// hence atomic; whatever it missed before, it reads from Pebble.
	leases atomic.Pointer[lessor]

	buf          []byte        // encoding scratch, reused across applies
	pending      []Event       // the events of the command being applied
	leaseChanges []leaseChange // the lease grants and revokes of this batch
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(db *pebble.DB, historyLimit int64, logger *slog.Logger) (*fsm, error) {
	f := &fsm{
		db:           db,
		logger:       logger,
		historyLimit: historyLimit,
		compactEvery: max(1, historyLimit/8),
	}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// load reads the applied index, revision and compaction point from Pebble.
func (f *fsm) load() error {
	applied, err := readUint64(f.db, keyApplied)
	if err != nil {
		return fmt.Errorf("metadata: load applied index: %w", err)
	}
	rev, err := readUint64(f.db, keyRevision)
	if err != nil {
		return fmt.Errorf("metadata: load revision: %w", err)
	}
	compacted, err := readUint64(f.db, keyCompacted)
	if err != nil {
		return fmt.Errorf("metadata: load compaction point: %w", err)
	}
	f.applied, f.rev, f.compacted = applied, int64(rev), int64(compacted)
	return nil
}

// Apply applies one entry.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in one Pebble batch. A command's
// response is what the Store method that proposed it returns: the new KV
// for a put, nil for a delete or revoke, a TxnResponse for a txn, the
// LeaseID for a grant, or an error (ErrVersionMismatch, ErrNotFound,
// ErrLeaseNotFound, ErrCorrupt). All the changes of one command take one
// revision; a command that changes no key takes none.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	b := f.db.NewIndexedBatch()
	defer b.Close()
	applied, rev := f.applied, f.rev
	var events []Event
	f.leaseChanges = f.leaseChanges[:0]
	for i, l := range logs {
		if l.Index <= f.applied {
			continue // applied before a restart
		}
		applied = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := decodeCommand(l.Data)
		if err != nil {
			resp[i] = err
			continue
		}
		// A command validates everything before it writes: one that
		// returns an error has written nothing and appended no event.
		f.pending = f.pending[:0]
		switch cmd.op {
		case opPut:
			resp[i], err = f.put(b, rev+1, &cmd)
		case opDelete:
			err = f.delete(b, rev+1, &cmd)
		case opTxn:
			resp[i], err = f.txn(b, rev, &cmd.txn)
		case opGrant:
			resp[i] = f.grant(b, LeaseID(l.Index), cmd.ttlMs)
		case opRevoke:
			err = f.revoke(b, rev+1, cmd.lease)
		}
		if err != nil {
			resp[i] = err
			continue
		}
		if len(f.pending) > 0 {
			rev++
			f.buf = appendEvents(f.buf[:0], f.pending)
			f.set(b, histKey(rev), f.buf)
			events = append(events, f.pending...)
		}
	}
	if applied == f.applied {
		return resp
	}
	compacted := f.compacted
	if rev-compacted > f.historyLimit+f.compactEvery {
		compacted = rev - f.historyLimit
		if err := b.DeleteRange(histKey(f.compacted+1), histKey(compacted+1), nil); err != nil {
			panic(fmt.Sprintf("metadata: compact history: %v", err))
		}
	}
	f.set(b, keyApplied, appendUint64Value(f.buf[:0], applied))
	f.set(b, keyRevision, appendUint64Value(f.buf[:0], uint64(rev)))
	f.set(b, keyCompacted, appendUint64Value(f.buf[:0], uint64(compacted)))
	if err := b.Commit(pebble.NoSync); err != nil {
		// The state machine cannot go on without its disk; Raft would
		// otherwise consider the entries applied.
		panic(fmt.Sprintf("metadata: commit applied entries: %v", err))
	}
	f.applied, f.rev, f.compacted = applied, rev, compacted
	if f.hub != nil {
		f.hub.publish(events, rev, compacted)
	}
	if l := f.leases.Load(); l != nil && len(f.leaseChanges) > 0 {
		l.applied(f.leaseChanges)
	}
	return resp
}

func (f *fsm) set(b *pebble.Batch, key, val []byte) {
	if err := b.Set(key, val, nil); err != nil {
		panic(fmt.Sprintf("metadata: batch set: %v", err))
	}
}

// put applies a Put at revision rev (if it succeeds); the key leaves its
// lease, if it had one.
func (f *fsm) put(b *pebble.Batch, rev int64, c *command) (KV, error) {
	cur, ok := f.read(b, c.key)
	if c.expected != AnyVersion && c.expected != cur.Version {
		return KV{}, versionMismatch(c.key, cur.Version, c.expected)
	}
	return f.write(b, rev, c.key, c.value, NoLease, cur, ok), nil
}

// delete applies a Delete at revision rev (if it changes anything).
func (f *fsm) delete(b *pebble.Batch, rev int64, c *command) error {
	cur, ok := f.read(b, c.key)
	switch {
	case !ok && c.expected == AnyVersion:
		return nil
	case !ok:
		return fmt.Errorf("%w: %q", ErrNotFound, c.key)
	case c.expected != AnyVersion && c.expected != cur.Version:
		return versionMismatch(c.key, cur.Version, c.expected)
	}
	f.remove(b, rev, cur)
	return nil
}

// read reads a key's current record from the batch.
func (f *fsm) read(b *pebble.Batch, key string) (KV, bool) {
	kv, ok, err := readKV(b, key)
	if err != nil {
		panic(fmt.Sprintf("metadata: read %q: %v", key, err))
	}
	return kv, ok
}

// write stores key = value attached to lease at revision rev, given its
// current record cur (ok: it exists), moves its lease attachment, and
// records the event.
func (f *fsm) write(b *pebble.Batch, rev int64, key string, value []byte, lease LeaseID, cur KV, ok bool) KV {
	kv := KV{Key: key, Value: cloneValue(value), Version: cur.Version + 1, CreateRevision: rev, ModRevision: rev, Lease: lease}
	if ok {
		kv.CreateRevision = cur.CreateRevision
	}
	if cur.Lease != NoLease && cur.Lease != lease {
		f.del(b, attachKey(cur.Lease, key))
	}
	if lease != NoLease && cur.Lease != lease {
		f.set(b, attachKey(lease, key), nil)
	}
	f.buf = appendKVRecord(f.buf[:0], &kv)
	f.set(b, kvKey(key), f.buf)
	f.pending = append(f.pending, Event{Type: EventPut, KV: kv})
	return kv
}

// remove deletes the existing key cur at revision rev, detaches it from its
// lease and records the event.
func (f *fsm) remove(b *pebble.Batch, rev int64, cur KV) {
	if cur.Lease != NoLease {
		f.del(b, attachKey(cur.Lease, cur.Key))
	}
	f.del(b, kvKey(cur.Key))
	f.pending = append(f.pending, Event{Type: EventDelete, KV: KV{Key: cur.Key, ModRevision: rev}})
}

func (f *fsm) del(b *pebble.Batch, key []byte) {
	if err := b.Delete(key, nil); err != nil {
		panic(fmt.Sprintf("metadata: batch delete: %v", err))
	}
}

func versionMismatch(key string, have, want int64) error {
	return fmt.Errorf("%w: %q is at version %d, expected %d", ErrVersionMismatch, key, have, want)
}

// Snapshot makes the applied state durable (raftnode's contract: Raft will
// truncate the log behind this snapshot) and captures a Pebble snapshot that
// Persist streams out while Apply goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.db.LogData(nil, pebble.Sync); err != nil {
		return nil, fmt.Errorf("metadata: sync before snapshot: %w", err)
	}
	return &fsmSnapshot{snap: f.db.NewSnapshot()}, nil
}

// Restore replaces the whole FSM state with a snapshot's, in one synced
// batch, and tells watchers to catch up from the restored history.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b := f.db.NewBatch()
	defer b.Close()
	for _, p := range fsmPrefixes {
		if err := b.DeleteRange([]byte(p), prefixEnd([]byte(p)), nil); err != nil {
			return fmt.Errorf("metadata: restore: %w", err)
		}
	}
	err := readSnapshot(rc, func(k, v []byte) error { return b.Set(k, v, nil) })
	if err != nil {
		return fmt.Errorf("metadata: restore: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("metadata: restore: %w", err)
	}
	if err := f.load(); err != nil {
		return err
	}
	f.logger.Info("restored state from a raft snapshot", "revision", f.rev, "applied_index", f.applied)
	if f.hub != nil {
		f.hub.reset(f.rev, f.compacted)
	}
	if l := f.leases.Load(); l != nil {
		l.restored()
	}
	return nil
}
