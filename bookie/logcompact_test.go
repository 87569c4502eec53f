package bookie_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/magnetar-mq/magnetar/bookie"
)

// logTestConfig makes a shard whose Raft log is cut into 1 MiB files and
// truncated as far as it may at every snapshot.
func logTestConfig(t *testing.T, maxHeld int64) bookie.ShardConfig {
	cfg := testConfig("shard")
	cfg.Raft.Dir = t.TempDir()
	cfg.Raft.TrailingLogs = 1
	cfg.WALSegmentSize = 1 << 20
	cfg.MinFreeBytes = -1
	cfg.MaxHeldLogBytes = maxHeld
	return cfg
}

// appendBig appends n entries of ~4 KiB (two records each) to seg from
// offset next and returns them.
func appendBig(t *testing.T, s *bookie.Shard, seg uint64, next int64, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for range n {
		e := bigBatch(t, next)
		var err error
		if next, err = s.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}}); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// checkEntries reads seg whole and wants exactly want.
func checkEntries(t *testing.T, s *bookie.Shard, seg uint64, want [][]byte) {
	t.Helper()
	es, err := s.Read(ctx, seg, 0, 1<<30)
	if err != nil {
		t.Fatalf("segment %d: %v", seg, err)
	}
	if len(es) != len(want) {
		t.Fatalf("segment %d: %d entries, want %d", seg, len(es), len(want))
	}
	for i, e := range es {
		if !bytes.Equal(e.Data, want[i]) {
			t.Fatalf("segment %d: entry %d differs from the one appended", seg, i)
		}
	}
}

func firstIndex(t *testing.T, s *bookie.Shard) uint64 {
	t.Helper()
	first, err := s.RaftFirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	return first
}

// Entries are stored once, in the Raft log, and the state refers to them:
// a snapshot truncates the log no further than the oldest entry of a
// segment still stored, and deleting the segment lets the next one go
// further.
func TestTheLogIsTruncatedNoFurtherThanTheEntriesStillStored(t *testing.T) {
	s, err := bookie.OpenShardFS(ctx, logTestConfig(t, -1), vfs.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, seg := range []uint64{1, 2} {
		if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	old := appendBig(t, s, 1, 0, 1)
	pinned := s.RaftLastIndex() // the append to segment 1
	busy := appendBig(t, s, 2, 0, 600)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if first := firstIndex(t, s); first != pinned {
		t.Fatalf("after a snapshot the log starts at %d, want %d (segment 1's entry)", first, pinned)
	}
	checkEntries(t, s, 1, old)
	checkEntries(t, s, 2, busy)

	// Segment 2's entries start right after segment 1's.
	if err := s.DeleteSegment(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if first := firstIndex(t, s); first != pinned+1 {
		t.Fatalf("with segment 1 deleted the log starts at %d, want %d", first, pinned+1)
	}
	checkEntries(t, s, 2, busy)

	if err := s.DeleteSegment(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if first, last := firstIndex(t, s), s.RaftLastIndex(); first < last-1 {
		t.Fatalf("with no entries stored the log is %d-%d, want only the trailing entry", first, last)
	}
}

// A segment kept while the log moves on would pin the whole log. Past
// MaxHeldLogBytes, its oldest entries are copied into the state and the
// log is truncated; the entries read back the same, after a clean restart
// and after a crash.
func TestLogCompactionCopiesLongLivedEntriesAndTruncates(t *testing.T) {
	fs := vfs.NewCrashableMem()
	cfg := logTestConfig(t, 2<<20)
	s, err := bookie.OpenShardFS(ctx, cfg, fs)
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range []uint64{1, 2} {
		if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	want := map[uint64][][]byte{1: appendBig(t, s, 1, 0, 3)}
	longLived := s.RaftLastIndex()
	want[2] = appendBig(t, s, 2, 0, 1200) // ~5 MiB of log
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// The compaction runs in the background after the snapshot.
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for firstIndex(t, s) <= longLived {
		select {
		case <-wait.Done():
			t.Fatalf("the log still starts at %d, holding segment 1's entries (up to %d); %d bytes copied", firstIndex(t, s), longLived, s.Status().LogCompactedBytes)
		case <-time.After(10 * time.Millisecond): // poll
		}
	}
	copied := s.Status().LogCompactedBytes
	if copied < int64(3*len(want[1][0])) || copied > 4<<20 {
		t.Fatalf("compaction copied %d bytes: want segment 1's entries and no more than what exceeds the budget", copied)
	}
	for seg, es := range want {
		checkEntries(t, s, seg, es)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, disk := range []vfs.FS{fs, crashed} {
		s, err := bookie.OpenShardFS(ctx, cfg, disk)
		if err != nil {
			t.Fatal(err)
		}
		for seg, es := range want {
			checkEntries(t, s, seg, es)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
