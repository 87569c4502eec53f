package raftstore

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func openMemDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newStore(t *testing.T, db *pebble.DB, prefix string) *Store {
	t.Helper()
	s, err := New(db, []byte(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformancePebbleStore(t *testing.T) {
	t.Parallel()
	runConformance(t, func(t *testing.T) logStableStore {
		return newStore(t, openMemDB(t), "raft/")
	})
}

func TestNewRejectsAnEmptyPrefix(t *testing.T) {
	t.Parallel()
	if _, err := New(openMemDB(t), nil); !errors.Is(err, ErrEmptyPrefix) {
		t.Fatalf("New with empty prefix: err = %v, want ErrEmptyPrefix", err)
	}
}

func TestMissingStableKeysUseTheErrorTextRaftChecksFor(t *testing.T) {
	t.Parallel()
	s := newStore(t, openMemDB(t), "raft/")
	if _, err := s.Get([]byte("x")); !errors.Is(err, ErrKeyNotFound) || err.Error() != "not found" {
		t.Fatalf("Get(missing): err = %v, want ErrKeyNotFound (\"not found\")", err)
	}
	if _, err := s.GetUint64([]byte("x")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetUint64(missing): err = %v, want ErrKeyNotFound", err)
	}
	// A present key with an empty value is distinguishable from a missing one.
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get(empty) = %#v, %v; want non-nil empty value", v, err)
	}
}

func TestStateSurvivesClosingAndReopeningTheDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, db, "raft/")
	mustStore(t, s, testLogs(1, 50)...)
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s = newStore(t, db, "raft/")
	assertBounds(t, s, 11, 50)
	assertMissing(t, s, 1, 10)
	for _, l := range testLogs(11, 50) {
		assertLog(t, s, l)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64(CurrentTerm) after reopen = %d, %v; want 42", v, err)
	}
	assertGet(t, s, "LastVoteCand", "node-1")
}

func TestTwoPrefixesInOneDBDoNotSeeEachOther(t *testing.T) {
	t.Parallel()
	db := openMemDB(t)
	a := newStore(t, db, "a/")
	b := newStore(t, db, "b/")

	mustStore(t, a, testLogs(1, 10)...)
	assertBounds(t, b, 0, 0)
	assertMissing(t, b, 1, 10)

	mustStore(t, b, testLogs(100, 105)...)
	assertBounds(t, a, 1, 10)
	assertMissing(t, a, 100, 105)

	if err := b.DeleteRange(0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, b, 0, 0)
	assertBounds(t, a, 1, 10)

	if err := a.Set([]byte("k"), []byte("from a")); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get([]byte("k")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("b.Get(k) = %q, %v; want ErrKeyNotFound", v, err)
	}

	// A second Store on an existing prefix sees what the first wrote.
	assertBounds(t, newStore(t, db, "a/"), 1, 10)
}

func TestCorruptRecordsGiveErrCorrupt(t *testing.T) {
	t.Parallel()
	db := openMemDB(t)
	s := newStore(t, db, "raft/")
	if err := db.Set(s.logKey(5), []byte{recordVersion, 0, 0x80}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(5, &l); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetLog(corrupt) err = %v, want ErrCorrupt", err)
	}
	if err := s.Set([]byte("n"), []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUint64([]byte("n")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetUint64 of a 3-byte value: err = %v, want ErrCorrupt", err)
	}
}
