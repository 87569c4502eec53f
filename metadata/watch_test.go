package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// openSmall opens a service whose watch ring holds only ring events and
// whose history keeps history revisions, so the slow paths are exercised.
func openSmall(t *testing.T, ring int, history int64) *Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Dir: t.TempDir(), HistoryRevisions: history})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.hub.mu.Lock()
	s.hub.ringSize = ring
	s.hub.mu.Unlock()
	return s
}

func putN(t *testing.T, s *Service, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if _, err := s.Put(context.Background(), fmt.Sprintf("%s%05d", prefix, i), []byte("v"), AnyVersion); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func receive(t *testing.T, ch <-chan Event) (Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event")
		return Event{}, false
	}
}

func TestAWatcherBehindTheRingCatchesUpFromPebbleWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	s := openSmall(t, 16, 100_000)
	ch, err := s.Watch(context.Background(), "w/", 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	done := make(chan struct{})
	go func() { // writers race the reader, so it keeps crossing the ring's edge
		defer close(done)
		putN(t, s, "w/", n)
	}()
	var last int64
	for i := range n {
		ev, ok := receive(t, ch)
		if !ok {
			t.Fatalf("channel closed after %d events", i)
		}
		if last != 0 && ev.KV.ModRevision != last+1 {
			t.Fatalf("event %d: revision %d after %d", i, ev.KV.ModRevision, last)
		}
		last = ev.KV.ModRevision
	}
	<-done
}

func TestAWatcherOfAnotherPrefixIsNotPushedOutOfTheHistoryByUnrelatedWrites(t *testing.T) {
	t.Parallel()
	s := openSmall(t, 8, 50)
	ch, err := s.Watch(context.Background(), "quiet/", 0)
	if err != nil {
		t.Fatal(err)
	}
	putN(t, s, "busy/", 500) // ten times the history, all elsewhere
	kv, err := s.Put(context.Background(), "quiet/a", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := receive(t, ch); !ok || ev.KV.ModRevision != kv.ModRevision {
		t.Fatalf("quiet watcher got %+v, %v; want the put at revision %d", ev, ok, kv.ModRevision)
	}
}

func TestAWatcherThatFallsBehindTheHistoryIsClosedAfterAGaplessPrefix(t *testing.T) {
	t.Parallel()
	s := openSmall(t, 8, 50)
	ch, err := s.Watch(context.Background(), "w/", 0)
	if err != nil {
		t.Fatal(err)
	}
	putN(t, s, "w/", 500) // nobody reads: the watcher falls behind
	var last int64
	got := 0
	for {
		ev, ok := receive(t, ch)
		if !ok {
			break
		}
		if last != 0 && ev.KV.ModRevision != last+1 {
			t.Fatalf("gap before the channel closed: revision %d after %d", ev.KV.ModRevision, last)
		}
		last = ev.KV.ModRevision
		got++
	}
	if got >= 500 {
		t.Fatalf("got all %d events; the watcher was expected to fall behind", got)
	}
	// Resuming from the last event seen says the history is gone.
	if _, err := s.Watch(context.Background(), "w/", last); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Watch from %d: err = %v, want ErrCompacted", last, err)
	}
}

func TestPublishNeverWaitsForWatchers(t *testing.T) {
	t.Parallel()
	s := openSmall(t, 16, 100_000)
	for i := range 50 { // fifty watchers that never read
		if _, err := s.Watch(context.Background(), fmt.Sprintf("w/%d", i%3), 0); err != nil {
			t.Fatal(err)
		}
	}
	putN(t, s, "w/", 1000) // would block forever if Apply waited on a watcher
}
