package bookie_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/internal/record"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var ctx = context.Background()

func testConfig(dir string) bookie.ShardConfig {
	return bookie.ShardConfig{Dir: dir, CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: slog.New(slog.DiscardHandler)}
}

func openShard(t testing.TB, dir string) *bookie.Shard {
	t.Helper()
	s, err := bookie.OpenShard(ctx, testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestShardConformance(t *testing.T) {
	bookietest.RunConformance(t, func(t *testing.T) bookie.Client {
		s := openShard(t, t.TempDir())
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	})
}

// ackedLog records what a shard acknowledged, per segment.
type ackedLog struct {
	mu   sync.Mutex
	next map[uint64]int64
}

// writeConcurrently has writers append to their own segments at once and
// records every acknowledged next offset.
func writeConcurrently(t *testing.T, s *bookie.Shard, writers, appends int) *ackedLog {
	t.Helper()
	acked := &ackedLog{next: make(map[uint64]int64)}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range uint64(writers) {
		entries := make([][]byte, appends)
		for i := range entries {
			entries[i] = bookietest.BatchN(t, 3*int64(i), 3)
		}
		wg.Go(func() {
			if err := s.CreateSegment(ctx, w, 0, 1); err != nil {
				errs <- err
				return
			}
			for i, e := range entries {
				next, err := s.Append(ctx, bookie.AppendRequest{Segment: w, Epoch: 1, Entries: [][]byte{e}})
				if err != nil {
					errs <- fmt.Errorf("segment %d append %d: %w", w, i, err)
					return
				}
				acked.mu.Lock()
				acked.next[w] = next
				acked.mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return acked
}

// checkAcked checks that every acknowledged entry is readable and that the
// segments end exactly at the last acknowledgement.
func checkAcked(t *testing.T, c bookie.Client, acked *ackedLog) {
	t.Helper()
	for seg, next := range acked.next {
		info, err := c.Info(ctx, seg)
		if err != nil {
			t.Fatalf("segment %d: %v", seg, err)
		}
		if info.NextOffset != next {
			t.Fatalf("segment %d ends at %d, last acknowledged next offset %d", seg, info.NextOffset, next)
		}
		es, err := c.Read(ctx, seg, 0, 1<<30)
		if err != nil {
			t.Fatalf("segment %d: %v", seg, err)
		}
		want := int64(0)
		for _, e := range es {
			if e.BaseOffset != want {
				t.Fatalf("segment %d: entry at %d, want %d", seg, e.BaseOffset, want)
			}
			want = e.LastOffset + 1
		}
		if want != next {
			t.Fatalf("segment %d: entries end at %d, want %d", seg, want, next)
		}
	}
}

func TestAcknowledgedEntriesAreReadableAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openShard(t, dir)
	acked := writeConcurrently(t, s, 8, 25)
	sealed, err := s.Seal(ctx, 3, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openShard(t, dir)
	defer s.Close()
	checkAcked(t, s, acked)
	if info, err := s.Info(ctx, 3); err != nil || info != sealed {
		t.Fatalf("sealed segment after reopen: %+v, %v; want %+v", info, err, sealed)
	}
	// Writers carry on where they were.
	next, err := s.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, acked.next[1], 1)}})
	if err != nil || next != acked.next[1]+1 {
		t.Fatalf("append after reopen: %d, %v", next, err)
	}
}

func TestAcknowledgedEntriesSurviveACrash(t *testing.T) {
	// Pebble on a file system that can produce what a crash would leave:
	// exactly the synced data. The state machine writes without fsync, so
	// its last writes are lost, and the Raft log must bring them back.
	fs := vfs.NewCrashableMem()
	cfg := testConfig("shard")
	cfg.Raft.Dir = t.TempDir()
	s, err := bookie.OpenShardFS(ctx, cfg, fs)
	if err != nil {
		t.Fatal(err)
	}
	acked := writeConcurrently(t, s, 4, 20)
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = bookie.OpenShardFS(ctx, cfg, crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkAcked(t, s, acked)
}

func TestCallsAfterCloseFailWithErrClosed(t *testing.T) {
	s := openShard(t, t.TempDir())
	if err := s.CreateSegment(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := s.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, 0, 1)}})
	if !errors.Is(err, bookie.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.Read(ctx, 1, 0, 100); !errors.Is(err, bookie.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := s.Info(ctx, 1); !errors.Is(err, bookie.ErrClosed) {
		t.Fatalf("Info after Close: %v", err)
	}
}

func TestCloseWhileCallsAreInFlight(t *testing.T) {
	s := openShard(t, t.TempDir())
	const writers = 8
	for w := range uint64(writers) {
		if err := s.CreateSegment(ctx, w, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	started := make(chan struct{}, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range uint64(writers) {
		e := bookietest.BatchN(t, 0, 1)
		wg.Go(func() {
			for i := int64(0); ; i++ {
				record.SetBaseOffset(e, i)
				_, err := s.Append(ctx, bookie.AppendRequest{Segment: w, Epoch: 1, Entries: [][]byte{e}})
				if _, rerr := s.Read(ctx, w, 0, 1<<10); err == nil {
					err = rerr
				}
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					if !errors.Is(err, bookie.ErrClosed) {
						errs <- err
					}
					return
				}
			}
		})
	}
	for range writers {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a call racing Close failed with %v, want ErrClosed", err)
	}
}

func TestOpenShardRejectsBadConfig(t *testing.T) {
	if _, err := bookie.OpenShard(ctx, bookie.ShardConfig{}); !errors.Is(err, bookie.ErrInvalidConfig) {
		t.Fatalf("empty dir: %v", err)
	}
}

func TestEntriesSurviveRaftSnapshotsAndLogTruncation(t *testing.T) {
	// With one trailing log entry, a snapshot truncates the Raft log: what
	// the state machine applied before it must be durable on its own, and
	// what came after must be replayed on top of it.
	fs := vfs.NewCrashableMem()
	cfg := testConfig("shard")
	cfg.Raft.Dir = t.TempDir()
	cfg.Raft.TrailingLogs = 1
	s, err := bookie.OpenShardFS(ctx, cfg, fs)
	if err != nil {
		t.Fatal(err)
	}
	acked := writeConcurrently(t, s, 3, 10)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for seg, next := range acked.next {
		n, err := s.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, next, 2)}})
		if err != nil {
			t.Fatal(err)
		}
		acked.next[seg] = n
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = bookie.OpenShardFS(ctx, cfg, crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkAcked(t, s, acked)
}

// Usage sums what the replica stores: segments, open ones, entry bytes;
// a seal and a delete show in it.
func TestShardUsageCountsSegmentsAndBytes(t *testing.T) {
	s := openShard(t, t.TempDir())
	defer s.Close()
	for seg := uint64(1); seg <= 3; seg++ {
		if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	e := bookietest.BatchN(t, 0, 5)
	if _, err := s.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{e}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal(ctx, 2, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSegment(ctx, 3); err != nil {
		t.Fatal(err)
	}
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (bookie.Usage{Segments: 2, OpenSegments: 1, Bytes: int64(len(e))}); u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
}
