package bookie

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// An append stores references into the log, not the entries; the segment
// pins the log at its first append, across a reopen, and a deletion lets
// the pin go only once a flush has made the deletion durable.
func TestAppendsReferenceTheLogAndPinIt(t *testing.T) {
	h := newFSMHarness(t)
	e1, e2 := testBatch(t, 0, 2), testBatch(t, 2, 3)
	h.apply(command{op: opCreate, segment: 1, epoch: 1})
	h.apply(command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{e1, e2}}) // index 2
	h.apply(command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 5, 1)}})
	h.f.settle()
	v, closer, err := h.db.Get(entryKey(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := parseLogRef(v)
	closer.Close()
	if !ok || ref.index != 2 || int(ref.length) != len(e2) {
		t.Fatalf("stored value %x: want a reference to entry 2 of log index 2", v)
	}
	wantFloor(t, h.f.pins, 2, "after two appends")
	h.reopen()
	wantFloor(t, h.f.pins, 2, "after reopen")
	es, err := readEntries(h.db, h.log, 1, 0, 1<<20)
	if err != nil || len(es) != 3 || !bytes.Equal(es[0].Data, e1) || !bytes.Equal(es[1].Data, e2) {
		t.Fatalf("read %d entries, %v", len(es), err)
	}

	h.apply(command{op: opDelete, segment: 1})
	wantFloor(t, h.f.pins, 2, "before the deletion is flushed")
	if err := h.f.flush(); err != nil {
		t.Fatal(err)
	}
	wantFloor(t, h.f.pins, math.MaxUint64, "after the deletion is flushed")
	h.reopen()
	wantFloor(t, h.f.pins, math.MaxUint64, "after reopen")
}

// A reader that started before a segment was deleted keeps the log its
// references need until it is done, even past the flush of the deletion;
// one that started after does not.
func TestReadersHoldTheLogTheySaw(t *testing.T) {
	h := newFSMHarness(t)
	h.apply(command{op: opCreate, segment: 1, epoch: 1}, command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2)}})
	reader := h.f.pins.hold()
	h.apply(command{op: opDelete, segment: 1})
	late := h.f.pins.hold()
	if err := h.f.flush(); err != nil {
		t.Fatal(err)
	}
	wantFloor(t, h.f.pins, 2, "while an earlier reader reads")
	h.f.pins.unhold(reader)
	wantFloor(t, h.f.pins, math.MaxUint64, "once it is done")
	h.f.pins.unhold(late)
}

// A deletion applied but not yet committed to the state (the fsm commits
// on a goroutine) may still be unseen by a reader starting now: its pin
// holds the log until the commit, whatever flushes and holds come.
func TestAnUncommittedReleaseHoldsTheLog(t *testing.T) {
	p := newPinSet()
	p.set(1, pin{index: 7})
	p.releaseUncommitted(1)
	reader := p.hold()
	p.flushed(p.startFlush())
	p.unhold(reader)
	wantFloor(t, p, 7, "before the commit")
	p.committed()
	wantFloor(t, p, 7, "before a flush after the commit")
	p.flushed(p.startFlush())
	wantFloor(t, p, math.MaxUint64, "after the commit and a flush")
}

// A snapshot stream carries entries inline; restoring it drops the
// replica's own pins, and its entries read without the source's log.
func TestSnapshotsCarryReferencedEntriesInline(t *testing.T) {
	src := newFSMHarness(t)
	e := testBatch(t, 0, 2)
	src.apply(command{op: opCreate, segment: 1, epoch: 1}, command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{e}})
	stream := src.snapshot()

	dst := newFSMHarness(t)
	dst.apply(command{op: opCreate, segment: 2, epoch: 1}, command{op: opAppend, segment: 2, epoch: 1, entries: [][]byte{e}})
	if err := dst.f.Restore(io.NopCloser(bytes.NewReader(stream))); err != nil {
		t.Fatal(err)
	}
	wantFloor(t, dst.f.pins, math.MaxUint64, "after restore")
	es, err := readEntries(dst.db, raft.NewInmemStore(), 1, 0, 1<<20)
	if err != nil || len(es) != 1 || !bytes.Equal(es[0].Data, e) {
		t.Fatalf("restored entries: %d, %v", len(es), err)
	}
	dst.reopen()
	wantFloor(t, dst.f.pins, math.MaxUint64, "after reopen")
}

// A reference whose log entry is gone, or that points outside it, is an
// error, never other bytes.
func TestBadLogReferencesAreErrors(t *testing.T) {
	h := newFSMHarness(t)
	h.apply(command{op: opCreate, segment: 1, epoch: 1}, command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2)}})
	for _, tc := range []struct {
		ref  logRef
		want error
	}{
		{logRef{index: 9, offset: 0, length: 70}, errLogRefGone},
		{logRef{index: 2, offset: 1 << 20, length: 70}, ErrCorrupt},
		{logRef{index: 2, offset: 0, length: 3}, ErrCorrupt},
		{logRef{index: 2, offset: 1, length: 70}, ErrCorrupt}, // in bounds, but not the entry
	} {
		if err := h.db.Set(entryKey(1, 0), tc.ref.append(nil), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if _, err := readEntries(h.db, h.log, 1, 0, 1<<20); !errors.Is(err, tc.want) {
			t.Fatalf("%+v: %v, want %v", tc.ref, err, tc.want)
		}
	}
}

// FuzzStoredEntryValue checks that any stored entry value (inline bytes or
// a log reference) resolves to bytes of the value or of the log entry, or
// to an error, never a panic.
func FuzzStoredEntryValue(f *testing.F) {
	data := bytes.Repeat([]byte{7}, 200)
	f.Add(logRef{index: 1, offset: 10, length: 100}.append(nil))
	f.Add(logRef{index: 1, offset: 150, length: 100}.append(nil))
	f.Add(data[:80])
	f.Fuzz(func(t *testing.T, v []byte) {
		log := raft.NewInmemStore()
		if err := log.StoreLog(&raft.Log{Index: 1, Data: data}); err != nil {
			t.Fatal(err)
		}
		r := entryResolver{log: log}
		got, err := r.resolve(v)
		if err != nil {
			return
		}
		if _, isRef := parseLogRef(v); isRef && !bytes.Equal(got, data[:len(got)]) || !isRef && !bytes.Equal(got, v) {
			t.Fatalf("resolved %x to %x", v, got)
		}
		pn, err := decodePin(v)
		if err == nil && !bytes.Equal(appendPin(nil, pn), v) {
			t.Fatalf("pin %x re-encodes differently", v)
		}
	})
}

// wantFloor checks the lowest Raft index p keeps (math.MaxUint64: none).
func wantFloor(t *testing.T, p *pinSet, want uint64, when string) {
	t.Helper()
	if f := p.floor(); f != want {
		t.Fatalf("log floor %s: %d, want %d", when, f, want)
	}
}
