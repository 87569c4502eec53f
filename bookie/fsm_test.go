package bookie

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// testBatch is an entry at base holding n records. (bookietest.BatchN
// cannot be used here: bookietest imports this package.)
func testBatch(t testing.TB, base int64, n int) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Timestamp: int64(i), Value: []byte("v")}
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{BaseOffset: base}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fsmHarness drives an fsm directly with made-up Raft log entries, kept in
// an in-memory log store for the references to them.
type fsmHarness struct {
	t     testing.TB
	fs    vfs.FS
	db    *pebble.DB
	log   *raft.InmemStore
	f     *fsm
	index uint64
}

func newFSMHarness(t testing.TB) *fsmHarness {
	h := &fsmHarness{t: t, fs: vfs.NewMem(), log: raft.NewInmemStore()}
	h.open()
	t.Cleanup(func() { h.db.Close() })
	return h
}

func (h *fsmHarness) open() {
	h.t.Helper()
	db, err := pebble.Open("db", stateOptions(h.fs, nil, 0, pebbleLogger{slog.New(slog.DiscardHandler)}))
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	if h.f, err = newFSM(db, h.log, slog.New(slog.DiscardHandler)); err != nil {
		h.t.Fatal(err)
	}
}

// reopen closes the state as Shard.Close does (flushed: it has no WAL) and
// opens it again.
func (h *fsmHarness) reopen() {
	h.t.Helper()
	if err := h.db.Flush(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.db.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// logs wraps commands as consecutive Raft log entries.
func (h *fsmHarness) logs(cmds ...command) []*raft.Log {
	out := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		h.index++
		out[i] = &raft.Log{Index: h.index, Type: raft.LogCommand, Data: appendCommand(nil, c)}
	}
	if err := h.log.StoreLogs(out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *fsmHarness) apply(cmds ...command) []any {
	return h.f.ApplyBatch(h.logs(cmds...))
}

func (h *fsmHarness) info(seg uint64) SegmentInfo {
	h.t.Helper()
	info, ok, err := getMeta(h.db, seg)
	if err != nil || !ok {
		h.t.Fatalf("segment %d: ok=%v err=%v", seg, ok, err)
	}
	return info
}

func TestCommandsApplyInOrderWithinOneBatch(t *testing.T) {
	h := newFSMHarness(t)
	resp := h.apply(
		command{op: opCreate, segment: 1, epoch: 1},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2)}},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 2, 3)}},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 2, 3)}}, // stale
		command{op: opSeal, segment: 1, epoch: 2},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 5, 1)}},
		command{op: opCreate, segment: 2, start: 7, epoch: 1},
		command{op: opDelete, segment: 2},
		command{op: opAppend, segment: 2, epoch: 1, entries: [][]byte{testBatch(t, 7, 1)}},
	)
	wantInfo := SegmentInfo{ID: 1, State: SegmentSealed, Epoch: 2, NextOffset: 5, Bytes: int64(len(testBatch(t, 0, 2)) + len(testBatch(t, 2, 3)))}
	want := []any{nil, int64(2), int64(5), ErrBadOffset, wantInfo, ErrFenced, nil, nil, ErrSegmentNotFound}
	for i := range want {
		if w, ok := want[i].(error); ok {
			if err, _ := resp[i].(error); !errors.Is(err, w) {
				t.Fatalf("command %d: %v, want %v", i, resp[i], w)
			}
		} else if !reflect.DeepEqual(resp[i], want[i]) {
			t.Fatalf("command %d: %#v, want %#v", i, resp[i], want[i])
		}
	}
	if got := h.info(1); got != wantInfo {
		t.Fatalf("stored %+v, want %+v", got, wantInfo)
	}
	es, err := readEntries(h.db, h.log, 1, 0, 1<<20)
	if err != nil || len(es) != 2 {
		t.Fatalf("read: %d entries, %v", len(es), err)
	}
	if h.f.applied != h.index {
		t.Fatalf("applied = %d, want %d", h.f.applied, h.index)
	}
}

func TestReplayedEntriesAreSkippedAfterRestart(t *testing.T) {
	h := newFSMHarness(t)
	logs := h.logs(
		command{op: opCreate, segment: 1, epoch: 1},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2)}},
	)
	h.f.ApplyBatch(logs)
	h.reopen()
	if h.f.applied != 2 {
		t.Fatalf("applied index after reopen = %d, want 2", h.f.applied)
	}
	// Raft replays the log after the last snapshot: nothing may happen twice.
	for _, r := range h.f.ApplyBatch(logs) {
		if r != nil {
			t.Fatalf("replayed entry answered %v", r)
		}
	}
	if got := h.info(1); got.NextOffset != 2 {
		t.Fatalf("next offset after replay = %d, want 2", got.NextOffset)
	}
	// A batch straddling the applied index applies only the new part.
	more := h.logs(command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 2, 1)}})
	resp := h.f.ApplyBatch(append(logs[1:], more...))
	if resp[0] != nil || resp[1] != int64(3) {
		t.Fatalf("responses %v", resp)
	}
}

func TestBadCommandsAndOtherLogTypesAdvanceTheAppliedIndex(t *testing.T) {
	h := newFSMHarness(t)
	logs := []*raft.Log{
		{Index: 1, Type: raft.LogConfiguration, Data: []byte("config")},
		{Index: 2, Type: raft.LogCommand, Data: []byte{9, 9}},
		{Index: 3, Type: raft.LogNoop},
	}
	h.index = 3
	resp := h.f.ApplyBatch(logs)
	if resp[0] != nil || resp[2] != nil {
		t.Fatalf("non-command entries answered %v", resp)
	}
	if err, _ := resp[1].(error); !errors.Is(err, errBadCommand) {
		t.Fatalf("malformed command answered %v", resp[1])
	}
	h.reopen()
	if h.f.applied != 3 {
		t.Fatalf("applied = %d, want 3", h.f.applied)
	}
	if r := h.apply(command{op: opCreate, segment: 1, epoch: 1}); r[0] != nil {
		t.Fatalf("create after a bad command: %v", r[0])
	}
}

func TestReadReportsCorruptStoredEntries(t *testing.T) {
	h := newFSMHarness(t)
	h.apply(
		command{op: opCreate, segment: 1, epoch: 1},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2), testBatch(t, 2, 2)}},
	)
	bad := testBatch(t, 2, 2)
	bad[len(bad)-1] ^= 0xff
	if err := h.db.Set(entryKey(1, 2), bad, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if es, err := readEntries(h.db, h.log, 1, 0, 1); err != nil || len(es) != 1 {
		t.Fatalf("reading the intact entry: %d entries, %v", len(es), err)
	}
	if _, err := readEntries(h.db, h.log, 1, 0, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading over the corrupt entry: %v, want ErrCorrupt", err)
	}
	// An entry stored under the wrong key is corrupt too.
	if err := h.db.Set(entryKey(1, 2), testBatch(t, 3, 1), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if _, err := readEntries(h.db, h.log, 1, 2, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("entry under the wrong key: %v, want ErrCorrupt", err)
	}
}

// snapshot takes a snapshot of the harness's state and returns its
// stream, as lazySnapshots.Open makes it for a follower.
func (h *fsmHarness) snapshot() []byte {
	h.t.Helper()
	s, err := h.f.Snapshot()
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Release()
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		h.t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), lazySnapshotMarker) {
		h.t.Fatalf("a shard's own snapshot holds %d bytes, want the lazy marker", sink.Len())
	}
	return h.snapshotStream()
}

// snapshotStream is the stream of the harness's state as it is now.
func (h *fsmHarness) snapshotStream() []byte {
	h.t.Helper()
	var stream bytes.Buffer
	snap := h.db.NewSnapshot()
	defer snap.Close()
	if err := writeSnapshot(&stream, snap, &entryResolver{log: h.log}); err != nil {
		h.t.Fatal(err)
	}
	return stream.Bytes()
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string      { return "mem" }
func (*memSink) Cancel() error   { return nil }
func (*memSink) Close() error    { return nil }
func (s *memSink) Bytes() []byte { return s.Buffer.Bytes() }

func TestSnapshotRestoreReplacesTheState(t *testing.T) {
	src := newFSMHarness(t)
	src.apply(
		command{op: opCreate, segment: 1, epoch: 1},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2), testBatch(t, 2, 2)}},
		command{op: opSeal, segment: 3, epoch: 1, start: 9},
	)
	snap := src.snapshot()
	// Changes after the snapshot are not in it.
	src.apply(command{op: opCreate, segment: 4, epoch: 1})

	dst := newFSMHarness(t)
	dst.apply(command{op: opCreate, segment: 2, epoch: 1}, command{op: opCreate, segment: 1, start: 50, epoch: 7})
	dst.apply(command{op: opCreate, segment: 5, epoch: 1}, command{op: opCreate, segment: 6, epoch: 1})
	if err := dst.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if dst.f.applied != 3 {
		t.Fatalf("applied after restore = %d, want the snapshot's 3", dst.f.applied)
	}
	for _, seg := range []uint64{2, 4, 5, 6} {
		if _, ok, _ := getMeta(dst.db, seg); ok {
			t.Fatalf("segment %d survived the restore", seg)
		}
	}
	if got, want := dst.info(1), src.info(1); got != want {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	if got := dst.info(3); got.State != SegmentSealed || got.StartOffset != 9 {
		t.Fatalf("restored %+v", got)
	}
	es, err := readEntries(dst.db, dst.log, 1, 0, 1<<20)
	if err != nil || len(es) != 2 {
		t.Fatalf("restored entries: %d, %v", len(es), err)
	}
	dst.reopen()
	if dst.f.applied != 3 {
		t.Fatalf("applied after reopen = %d", dst.f.applied)
	}
}

func TestAnInterruptedRestoreIsDetectedOnOpen(t *testing.T) {
	src := newFSMHarness(t)
	src.apply(command{op: opCreate, segment: 1, epoch: 1})
	snap := src.snapshot()
	snap[len(snap)-1] ^= 1 // bad checksum: detected only at the end

	dst := newFSMHarness(t)
	if err := dst.f.Restore(io.NopCloser(bytes.NewReader(snap))); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("Restore of a corrupt snapshot: %v", err)
	}
	if err := dst.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open("db", stateOptions(dst.fs, nil, 0, pebbleLogger{slog.New(slog.DiscardHandler)}))
	if err != nil {
		t.Fatal(err)
	}
	dst.db = db
	if _, err := newFSM(db, dst.log, slog.New(slog.DiscardHandler)); !errors.Is(err, errRestoreInterrupted) {
		t.Fatalf("opening after a failed restore: %v, want errRestoreInterrupted", err)
	}
}

func TestSnapshotStreamRejectsDamage(t *testing.T) {
	h := newFSMHarness(t)
	h.apply(command{op: opCreate, segment: 1, epoch: 1},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2)}})
	snap := h.snapshot()
	count := func(b []byte) (int, error) {
		n := 0
		return n, readSnapshot(bytes.NewReader(b), func(k, v []byte) error { n++; return nil })
	}
	if n, err := count(snap); err != nil || n != 3 {
		t.Fatalf("intact snapshot: %d keys, %v", n, err)
	}
	for i := range snap {
		c := bytes.Clone(snap)
		c[i] ^= 0x10
		if _, err := count(c); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for n := range len(snap) {
		if _, err := count(snap[:n]); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("snapshot cut at %d: %v", n, err)
		}
	}
	if _, err := count(append(bytes.Clone(snap), 0)); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("trailing byte: %v", err)
	}
	// A key outside the state machine's spans (here: the Raft log's) is
	// refused even with a valid checksum.
	var forged []byte
	forged = append(forged, snapshotMagic...)
	forged = binary.AppendUvarint(forged, uint64(len("raft/x")))
	forged = append(forged, "raft/x"...)
	forged = append(forged, 0, 0)
	forged = binary.BigEndian.AppendUint32(forged, crc32.Checksum(forged, castagnoli))
	if _, err := count(forged); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("forged key: %v", err)
	}
}
