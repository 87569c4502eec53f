package bookie

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"testing"

	"github.com/hashicorp/raft"
)

// A shard's own snapshot is an 8-byte marker on disk, however big the
// state; opening it to send yields the full stream of the state as it is
// when opened (with its size in the meta, as Raft's transport needs), and
// the temporary stream is removed on Close. A full stream received from a
// leader is opened as stored.
func TestLazySnapshotsStoreAMarkerAndStreamTheStateOnOpen(t *testing.T) {
	h := newFSMHarness(t)
	h.apply(
		command{op: opCreate, segment: 1, epoch: 1},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(t, 0, 2), testBatch(t, 2, 2)}},
	)
	dir := t.TempDir()
	files, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	store := &lazySnapshots{SnapshotStore: files, f: h.f, tmpDir: t.TempDir()}

	persist := func(s raft.FSMSnapshot, index uint64) string {
		sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Persist(sink); err != nil {
			t.Fatal(err)
		}
		return sink.ID()
	}
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	id := persist(snap, h.index)
	metas, err := store.List()
	if err != nil || len(metas) != 1 || metas[0].Size != int64(len(lazySnapshotMarker)) {
		t.Fatalf("stored snapshots %+v, %v: want one of %d bytes", metas, err, len(lazySnapshotMarker))
	}

	// Applied after the snapshot: the stream carries it, and its applied
	// index, which makes a follower skip the entries it covers.
	h.apply(command{op: opSeal, segment: 1, epoch: 2})
	want := h.snapshotStream()
	meta, rc, err := store.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || meta.Size != int64(len(got)) {
		t.Fatalf("opened stream of %d bytes (meta says %d), want the state's %d", len(got), meta.Size, len(want))
	}
	tmp := rc.(*tempStream).Name()
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the temporary stream %s was not removed", tmp)
	}

	// A full stream, as received from a leader, is opened as it is.
	sink, err := store.Create(raft.SnapshotVersionMax, h.index+1, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	_, rc, err = store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("received stream reopened as %d bytes, %v", len(got), err)
	}
}
