package metadata

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func memDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newTestFSM(t *testing.T, db *pebble.DB, history int64) *fsm {
	t.Helper()
	f, err := newFSM(db, history, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// logs turns commands into consecutive Raft entries starting at index first.
func logs(first uint64, cmds ...command) []*raft.Log {
	var out []*raft.Log
	for i, c := range cmds {
		out = append(out, &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: c.appendTo(nil)})
	}
	return out
}

func put(key, val string, expected int64) command {
	return command{op: opPut, key: key, value: []byte(val), expected: expected}
}

func del(key string, expected int64) command {
	return command{op: opDelete, key: key, expected: expected}
}

func TestApplyBatchSeesEarlierCommandsOfTheSameBatch(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t, memDB(t), 100)
	resp := f.ApplyBatch(logs(1, put("a", "1", 0), put("a", "2", 1), del("a", 2), put("a", "3", 0), put("a", "x", 5)))
	if kv := resp[1].(KV); kv.Version != 2 || kv.ModRevision != 2 {
		t.Fatalf("second put in the batch = %+v, want version 2 at revision 2", kv)
	}
	if resp[2] != nil {
		t.Fatalf("delete response = %v, want nil", resp[2])
	}
	if kv := resp[3].(KV); kv.Version != 1 || kv.CreateRevision != 4 {
		t.Fatalf("re-create in the batch = %+v, want version 1 created at revision 4", kv)
	}
	if err, _ := resp[4].(error); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("stale put response = %v, want ErrVersionMismatch", resp[4])
	}
	if f.rev != 4 || f.applied != 5 {
		t.Fatalf("rev, applied = %d, %d; want 4, 5", f.rev, f.applied)
	}
}

func TestEntriesAtOrBelowTheAppliedIndexAreSkipped(t *testing.T) {
	t.Parallel()
	db := memDB(t)
	f := newTestFSM(t, db, 100)
	batch := logs(1, put("a", "1", AnyVersion), put("a", "2", AnyVersion))
	f.ApplyBatch(batch)

	// A restart replays the same entries into a new FSM on the same DB.
	f = newTestFSM(t, db, 100)
	resp := f.ApplyBatch(append(batch, logs(3, put("a", "3", AnyVersion))...))
	if resp[0] != nil || resp[1] != nil {
		t.Fatalf("replayed entries gave responses %v, %v; want nil (skipped)", resp[0], resp[1])
	}
	kv, _, err := readKV(db, "a")
	if err != nil || kv.Version != 3 || string(kv.Value) != "3" {
		t.Fatalf("after replay a = %+v, %v; want version 3 (each put applied once)", kv, err)
	}
}

func TestCorruptCommandsGetAnErrorResponseAndStillAdvanceTheAppliedIndex(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t, memDB(t), 100)
	resp := f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: []byte{0xee}}})
	if err, _ := resp[0].(error); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("response = %v, want ErrCorrupt", resp[0])
	}
	if f.applied != 1 || f.rev != 0 {
		t.Fatalf("applied, rev = %d, %d; want 1, 0", f.applied, f.rev)
	}
}

func historyRevs(t *testing.T, db *pebble.DB) (first, last int64, n int) {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(histPrefix), UpperBound: prefixEnd([]byte(histPrefix))})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		rev, err := revOfHistKey(it.Key())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			first = rev
		}
		last = rev
		n++
	}
	return first, last, n
}

func TestHistoryIsCompactedInChunksKeepingTheLastRevisions(t *testing.T) {
	t.Parallel()
	db := memDB(t)
	const limit = 80 // compacts once 10 revisions past the limit
	f := newTestFSM(t, db, limit)
	for i := range 300 {
		f.ApplyBatch(logs(uint64(i+1), put("k", "v", AnyVersion)))
		first, last, n := historyRevs(t, db)
		if int64(n) < min(limit, f.rev) || int64(n) > limit+f.compactEvery {
			t.Fatalf("at revision %d history holds %d revisions, want between %d and %d", f.rev, n, limit, limit+f.compactEvery)
		}
		if first != f.compacted+1 || last != f.rev || int64(n) != last-first+1 {
			t.Fatalf("at revision %d history is [%d, %d] (%d entries), compacted = %d", f.rev, first, last, n, f.compacted)
		}
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func dump(t *testing.T, db *pebble.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range fsmPrefixes {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(p), UpperBound: prefixEnd([]byte(p))})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			out[string(it.Key())] = string(it.Value())
		}
		_ = it.Close()
	}
	return out
}

func TestSnapshotRestoresTheWholeStateIntoAnotherFSM(t *testing.T) {
	t.Parallel()
	src := newTestFSM(t, memDB(t), 100)
	src.ApplyBatch(logs(1, put("a", "1", 0), put("b", "2", 0), del("a", 1), put("c", "", 0)))
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	src.ApplyBatch(logs(5, put("after", "snapshot", 0))) // not in the snapshot
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dstDB := memDB(t)
	dst := newTestFSM(t, dstDB, 100)
	dst.ApplyBatch(logs(1, put("stale", "x", 0))) // replaced by the restore
	h := newHub(dstDB, dst.rev, dst.compacted, slog.New(slog.DiscardHandler))
	defer h.close()
	dst.hub = h
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if dst.applied != 4 || dst.rev != 4 {
		t.Fatalf("restored applied, rev = %d, %d; want 4, 4", dst.applied, dst.rev)
	}
	want := dump(t, src.db)
	delete(want, string(kvKey("after")))
	delete(want, string(histKey(5)))
	for _, k := range [][]byte{keyApplied, keyRevision, keyCompacted} {
		want[string(k)] = dump(t, dstDB)[string(k)]
	}
	if got := dump(t, dstDB); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state:\n%v\nwant:\n%v", got, want)
	}
	// A watcher on the restored FSM can read the restored history.
	ch, err := h.watch(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	dst.ApplyBatch(logs(5, put("new", "1", 0)))
	if ev := <-ch; ev.KV.Key != "new" || ev.KV.ModRevision != 5 {
		t.Fatalf("event after restore = %+v", ev)
	}
}

func TestRestoreRejectsACorruptSnapshotAndKeepsTheState(t *testing.T) {
	t.Parallel()
	db := memDB(t)
	f := newTestFSM(t, db, 100)
	f.ApplyBatch(logs(1, put("a", "1", 0)))
	before := dump(t, db)
	err := f.Restore(io.NopCloser(bytes.NewReader([]byte(snapshotMagic + "\x01\x05h/ab"))))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Restore(truncated) err = %v, want ErrCorrupt", err)
	}
	if got := dump(t, db); !reflect.DeepEqual(got, before) {
		t.Fatal("a failed restore changed the state")
	}
}

// FuzzReadSnapshot: snapshots are read from disk and, later, from peers.
// No input may panic or yield a key outside the FSM's key space.
func FuzzReadSnapshot(f *testing.F) {
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		f.Fatal(err)
	}
	fsm, err := newFSM(db, 100, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	fsm.ApplyBatch(logs(1, put("a", "1", 0), put("b", "2", 0), del("a", 1)))
	var seed bytes.Buffer
	if err := writeSnapshot(&seed, db); err != nil {
		f.Fatal(err)
	}
	_ = db.Close()
	f.Add(seed.Bytes())
	f.Add([]byte(snapshotMagic + "\x01\x00"))
	f.Add([]byte(snapshotMagic + "\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := readSnapshot(bytes.NewReader(b), func(k, v []byte) error {
			if !underFSMPrefix(k) {
				t.Fatalf("key %q outside the FSM key space", k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}
