package bookie

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// With async commits (as a Shard runs its fsm), batches applied back to
// back, each reading segment metadata the one before wrote while that one
// may still be committing, give the same responses and, once settled,
// the same state, key for key, as commits made before ApplyBatch returns.
func TestAsyncCommitsGiveTheSameResponsesAndState(t *testing.T) {
	inline, async := newFSMHarness(t), newFSMHarness(t)
	async.f.async = true
	var batches [][]command
	for round := range int64(50) {
		var b []command
		for seg := uint64(1); seg <= 4; seg++ {
			if round == 0 {
				b = append(b, command{op: opCreate, segment: seg, epoch: 1})
				continue
			}
			b = append(b, command{op: opAppend, segment: seg, epoch: 1, entries: [][]byte{testBatch(t, 2*(round-1), 2)}})
		}
		switch round {
		case 20:
			b = append(b, command{op: opSeal, segment: 2, epoch: 2}) // later appends to 2 fail
		case 30:
			b = append(b, command{op: opDelete, segment: 3}) // and to 3
		case 31:
			b = append(b, command{op: opCreate, segment: 3, start: 100, epoch: 1})
		}
		batches = append(batches, b)
	}
	for i, b := range batches {
		want, got := inline.apply(b...), async.apply(b...)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("batch %d: async responses %v, inline %v", i, got, want)
		}
	}
	async.f.settle()
	if async.f.applied != inline.f.applied {
		t.Fatalf("applied %d, want %d", async.f.applied, inline.f.applied)
	}
	if got, want := dump(t, async.db), dump(t, inline.db); !reflect.DeepEqual(got, want) {
		t.Fatalf("async state has %d keys, inline %d, or they differ", len(got), len(want))
	}
}

// dump is every key and value of db.
func dump(t *testing.T, db *pebble.DB) [][2][]byte {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var kvs [][2][]byte
	for it.First(); it.Valid(); it.Next() {
		kvs = append(kvs, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	return kvs
}

// A snapshot's Persist returns only once the state as of the snapshot is
// durable (Raft truncates its log right after): a crash then loses none
// of it, though Snapshot itself only started the flush.
func TestSnapshotPersistReturnsOnceTheStateIsDurable(t *testing.T) {
	mem := vfs.NewCrashableMem()
	h := &fsmHarness{t: t, fs: mem, log: raft.NewInmemStore()}
	h.open()
	h.f.async = true
	h.apply(command{op: opCreate, segment: 1, epoch: 1})
	for i := range int64(20) {
		h.apply(command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, i, 1)}})
	}
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(&memSink{}); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	if err := h.db.Close(); err != nil {
		t.Fatal(err)
	}
	h.fs = crashed
	h.open()
	defer h.db.Close()
	if h.f.applied != h.index {
		t.Fatalf("after a crash the state is at index %d, want the snapshot's %d", h.f.applied, h.index)
	}
	if info := h.info(1); info.NextOffset != 20 {
		t.Fatalf("after a crash segment 1 ends at %d, want 20", info.NextOffset)
	}
}
