package metadata

import (
	"context"
	"testing"
	"time"
)

func TestARaftSnapshotKeepsStateAndHistoryAcrossAReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() *Service {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := Open(ctx, Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s := open()
	ctx := context.Background()
	putN(t, s, "k/", 100)
	if err := s.node.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("raft snapshot: %v", err)
	}
	last, err := s.Put(ctx, "after", []byte("snapshot"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	res, err := s.Range(ctx, "", RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != 101 || res.Revision != last.ModRevision {
		t.Fatalf("after reopen: %d keys at revision %d; want 101 at %d", len(res.KVs), res.Revision, last.ModRevision)
	}
	ch, err := s.Watch(ctx, "", 1) // all history after the first revision
	if err != nil {
		t.Fatal(err)
	}
	for rev := int64(2); rev <= last.ModRevision; rev++ {
		if ev, ok := receive(t, ch); !ok || ev.KV.ModRevision != rev {
			t.Fatalf("history event = %+v, %v; want revision %d", ev, ok, rev)
		}
	}
}
