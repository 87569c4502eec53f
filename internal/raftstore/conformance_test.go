package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// logStableStore is what Raft needs from a Store: both interfaces at once.
type logStableStore interface {
	raft.LogStore
	raft.StableStore
}

// runConformance checks the behaviour hashicorp/raft relies on from a
// LogStore and StableStore. It runs against raft.InmemStore too, which proves
// that it tests the interface contract and not quirks of this package.
func runConformance(t *testing.T, newStore func(t *testing.T) logStableStore) {
	t.Run("an empty store has first and last index 0", func(t *testing.T) {
		s := newStore(t)
		assertBounds(t, s, 0, 0)
	})

	t.Run("GetLog of a missing index returns raft.ErrLogNotFound", func(t *testing.T) {
		s := newStore(t)
		var l raft.Log
		if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog on empty store: err = %v, want raft.ErrLogNotFound", err)
		}
		mustStore(t, s, testLogs(1, 3)...)
		if err := s.GetLog(4, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog past the end: err = %v, want raft.ErrLogNotFound", err)
		}
	})

	t.Run("StoreLog keeps every field of the entry", func(t *testing.T) {
		s := newStore(t)
		want := &raft.Log{
			Index:      7,
			Term:       3,
			Type:       raft.LogConfiguration,
			Data:       []byte("payload"),
			Extensions: []byte("ext"),
			AppendedAt: time.Unix(1700000000, 123456789),
		}
		if err := s.StoreLog(want); err != nil {
			t.Fatal(err)
		}
		assertLog(t, s, want)
		assertBounds(t, s, 7, 7)
	})

	t.Run("StoreLogs stores a batch and sets first and last index", func(t *testing.T) {
		s := newStore(t)
		logs := testLogs(1, 10)
		mustStore(t, s, logs...)
		assertBounds(t, s, 1, 10)
		for _, l := range logs {
			assertLog(t, s, l)
		}
		mustStore(t, s, testLogs(11, 20)...)
		assertBounds(t, s, 1, 20)
	})

	t.Run("StoreLogs overwrites an existing index", func(t *testing.T) {
		s := newStore(t)
		mustStore(t, s, testLogs(1, 3)...)
		repl := &raft.Log{Index: 3, Term: 9, Type: raft.LogCommand, Data: []byte("replacement")}
		mustStore(t, s, repl)
		assertLog(t, s, repl)
		assertBounds(t, s, 1, 3)
	})

	t.Run("DeleteRange of a prefix moves the first index (truncation after a snapshot)", func(t *testing.T) {
		s := newStore(t)
		mustStore(t, s, testLogs(1, 10)...)
		if err := s.DeleteRange(1, 4); err != nil {
			t.Fatal(err)
		}
		assertBounds(t, s, 5, 10)
		assertMissing(t, s, 1, 4)
		assertLog(t, s, testLogs(5, 5)[0])
	})

	t.Run("DeleteRange of a suffix moves the last index (a conflicting tail)", func(t *testing.T) {
		s := newStore(t)
		mustStore(t, s, testLogs(1, 10)...)
		if err := s.DeleteRange(6, 10); err != nil {
			t.Fatal(err)
		}
		assertBounds(t, s, 1, 5)
		assertMissing(t, s, 6, 10)
		mustStore(t, s, testLogs(6, 7)...)
		assertBounds(t, s, 1, 7)
	})

	t.Run("DeleteRange of every log empties the store", func(t *testing.T) {
		s := newStore(t)
		mustStore(t, s, testLogs(3, 8)...)
		if err := s.DeleteRange(3, 8); err != nil {
			t.Fatal(err)
		}
		assertBounds(t, s, 0, 0)
		assertMissing(t, s, 3, 8)
		mustStore(t, s, testLogs(20, 21)...)
		assertBounds(t, s, 20, 21)
	})

	t.Run("Set then Get returns the value, and Set overwrites", func(t *testing.T) {
		s := newStore(t)
		if err := s.Set([]byte("k"), []byte("v1")); err != nil {
			t.Fatal(err)
		}
		if err := s.Set([]byte("other"), []byte("x")); err != nil {
			t.Fatal(err)
		}
		assertGet(t, s, "k", "v1")
		if err := s.Set([]byte("k"), []byte("v2")); err != nil {
			t.Fatal(err)
		}
		assertGet(t, s, "k", "v2")
		assertGet(t, s, "other", "x")
	})

	t.Run("Get of a missing key returns no value and nil or a 'not found' error", func(t *testing.T) {
		s := newStore(t)
		v, err := s.Get([]byte("missing"))
		if len(v) != 0 {
			t.Fatalf("Get(missing) = %q, want empty", v)
		}
		if err != nil && err.Error() != "not found" {
			t.Fatalf("Get(missing): err = %v, want nil or \"not found\" (what raft checks for)", err)
		}
	})

	t.Run("SetUint64 then GetUint64 returns the number", func(t *testing.T) {
		s := newStore(t)
		for _, v := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
			if err := s.SetUint64([]byte("term"), v); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetUint64([]byte("term"))
			if err != nil || got != v {
				t.Fatalf("GetUint64 = %d, %v; want %d", got, err, v)
			}
		}
	})

	t.Run("GetUint64 of a missing key returns 0 and nil or a 'not found' error", func(t *testing.T) {
		s := newStore(t)
		v, err := s.GetUint64([]byte("missing"))
		if v != 0 {
			t.Fatalf("GetUint64(missing) = %d, want 0", v)
		}
		if err != nil && err.Error() != "not found" {
			t.Fatalf("GetUint64(missing): err = %v, want nil or \"not found\" (what raft checks for)", err)
		}
	})
}

func TestConformanceInmemStore(t *testing.T) {
	runConformance(t, func(*testing.T) logStableStore { return raft.NewInmemStore() })
}

// testLogs returns command entries lo..hi (inclusive) with distinct payloads.
func testLogs(lo, hi uint64) []*raft.Log {
	var out []*raft.Log
	for i := lo; i <= hi; i++ {
		out = append(out, &raft.Log{
			Index:      i,
			Term:       1 + i/4,
			Type:       raft.LogCommand,
			Data:       []byte{byte(i), byte(i >> 8), 'd'},
			AppendedAt: time.Unix(1700000000+int64(i), 0),
		})
	}
	return out
}

func mustStore(t *testing.T, s raft.LogStore, logs ...*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

func assertBounds(t *testing.T, s raft.LogStore, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("first, last = %d, %d; want %d, %d", f, l, first, last)
	}
}

func assertLog(t *testing.T, s raft.LogStore, want *raft.Log) {
	t.Helper()
	var got raft.Log
	if err := s.GetLog(want.Index, &got); err != nil {
		t.Fatalf("GetLog(%d): %v", want.Index, err)
	}
	if !logsEqual(&got, want) {
		t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, got, *want)
	}
}

func logsEqual(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func assertMissing(t *testing.T, s raft.LogStore, lo, hi uint64) {
	t.Helper()
	for i := lo; i <= hi; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) after delete: err = %v, want raft.ErrLogNotFound", i, err)
		}
	}
}

func assertGet(t *testing.T, s raft.StableStore, key, want string) {
	t.Helper()
	got, err := s.Get([]byte(key))
	if err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}
