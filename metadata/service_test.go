package metadata_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// TestMain fails the package if a test leaves a goroutine behind (Raft's,
// Pebble's or a watcher's): Close must stop them all.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openService(t testing.TB, dir string, history int64) *metadata.Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := metadata.Open(ctx, metadata.Config{Dir: dir, HistoryRevisions: history})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestServiceConformance(t *testing.T) {
	const history = 1000
	var mu sync.Mutex
	dirs := map[metadata.Store]string{}
	newStore := func(t *testing.T) metadata.Store {
		dir := t.TempDir()
		s := openService(t, dir, history)
		mu.Lock()
		dirs[s] = dir
		mu.Unlock()
		return s
	}
	reopen := func(t *testing.T, s metadata.Store) metadata.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		dir := dirs[s]
		mu.Unlock()
		return openService(t, dir, history)
	}
	metadatatest.RunConformance(t, newStore, metadatatest.Reopen(reopen), metadatatest.HistoryRevisions(history))
}
