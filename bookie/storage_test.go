package bookie_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

// A crash in the middle of a stream of appends, leaving a random part of
// every unsynced write on disk (torn segment tails, half-written blocks of
// the state's files): each time, every append acknowledged before the
// crash is there after the restart, and each segment is a dense run of
// entries (appends that were written but not acknowledged may be there or
// not, never half).
func TestAcknowledgedAppendsSurviveACrashThatTearsUnsyncedWrites(t *testing.T) {
	for seed := range uint64(3) {
		fs := vfs.NewCrashableMem()
		cfg := testConfig("shard")
		cfg.Raft.Dir = t.TempDir()
		cfg.WALSegmentSize = 1 << 20 // several segments, rotations mid-stream
		cfg.MinFreeBytes = -1
		s, err := bookie.OpenShardFS(ctx, cfg, fs)
		if err != nil {
			t.Fatal(err)
		}
		const writers = 4
		var acked [writers]atomic.Int64 // next offset after the last acknowledged append
		// Crash once the log has rotated a few times (about 600 appends
		// of ~4 KiB in 1 MiB segments), with appends in flight.
		var total atomic.Int64
		enough := make(chan struct{})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			seg := uint64(w + 1)
			if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for next := int64(0); ; {
					select {
					case <-stop:
						return
					default:
					}
					n, err := s.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{bigBatch(t, next)}})
					if err != nil {
						if !errors.Is(err, bookie.ErrClosed) {
							t.Errorf("segment %d: %v", seg, err)
						}
						return
					}
					next = n
					acked[w].Store(n)
					if total.Add(1) == 600 {
						close(enough)
					}
				}
			})
		}
		<-enough
		var before [writers]int64
		for w := range writers {
			before[w] = acked[w].Load()
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 1))})
		close(stop)
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s, err = bookie.OpenShardFS(ctx, cfg, crashed)
		if err != nil {
			t.Fatalf("seed %d: reopening after the crash: %v", seed, err)
		}
		for w := range writers {
			seg := uint64(w + 1)
			info, err := s.Info(ctx, seg)
			if err != nil {
				t.Fatalf("seed %d: segment %d: %v", seed, seg, err)
			}
			if info.NextOffset < before[w] {
				t.Fatalf("seed %d: segment %d ends at %d after the crash, but %d was acknowledged", seed, seg, info.NextOffset, before[w])
			}
			es, err := s.Read(ctx, seg, 0, 1<<30)
			if err != nil {
				t.Fatalf("seed %d: segment %d: %v", seed, seg, err)
			}
			want := int64(0)
			for _, e := range es {
				if e.BaseOffset != want {
					t.Fatalf("seed %d: segment %d: entry at %d, want %d", seed, seg, e.BaseOffset, want)
				}
				want = e.LastOffset + 1
			}
			if want != info.NextOffset {
				t.Fatalf("seed %d: segment %d: entries end at %d, its metadata at %d", seed, seg, want, info.NextOffset)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// bigBatch is an entry at base of two 2 KiB records.
func bigBatch(t *testing.T, base int64) []byte {
	v := strings.Repeat("x", 2<<10)
	return bookietest.Batch(t, base, v, v)
}

// A shard directory from before the Raft log moved out of Pebble (a log/
// database) is refused, not silently started empty beside it.
func TestOpenShardRefusesThePebbleLogLayout(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := bookie.OpenShard(ctx, testConfig(dir))
	if err == nil || !strings.Contains(err.Error(), "Raft log in Pebble (log/)") {
		t.Fatalf("OpenShard on a directory with log/: %v, want the old-layout error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenShard created wal/ beside the old log: %v", err)
	}
}

// A WAL segment must fit in the disk-space reserve: a rotation
// preallocates a whole one.
func TestShardConfigWantsTheReserveToHoldAWALSegment(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.WALSegmentSize = 8 << 20
	cfg.MinFreeBytes = 4 << 20
	if _, err := bookie.OpenShard(ctx, cfg); !errors.Is(err, bookie.ErrInvalidConfig) {
		t.Fatalf("a 4 MiB reserve with 8 MiB segments: %v, want ErrInvalidConfig", err)
	}
}
