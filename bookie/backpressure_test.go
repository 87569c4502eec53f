package bookie_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// slowDisk is the OS's file system with every fsync taking 5 ms more.
type slowDisk struct{ vfs.FS }

func (d slowDisk) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := d.FS.Create(name, c)
	return slowFile{f}, err
}

func (d slowDisk) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := d.FS.OpenReadWrite(name, c, opts...)
	return slowFile{f}, err
}

func (d slowDisk) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := d.FS.ReuseForWrite(oldname, newname, c)
	return slowFile{f}, err
}

type slowFile struct{ vfs.File }

func (f slowFile) Sync() error {
	time.Sleep(5 * time.Millisecond)
	return f.File.Sync()
}

func (f slowFile) SyncData() error {
	time.Sleep(5 * time.Millisecond)
	return f.File.SyncData()
}

// On a slow disk, 32 writers pushing 64 KiB appends at once do not pile
// up in the shard: at most MaxInflightBytes of appends are taken in at a
// time, the rest wait their turn (the writers are slowed, not the heap
// grown), and every append still succeeds, densely.
func TestASlowDiskSlowsWritersInsteadOfGrowingMemory(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxInflightBytes = 256 << 10
	s, err := bookie.OpenShardFS(ctx, cfg, slowDisk{vfs.Default})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const writers, appends = 32, 8
	value := make([]byte, 64<<10)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		seg := uint64(w + 1)
		if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := range appends {
				e, err := record.AppendBatch(nil, record.BatchOptions{BaseOffset: int64(i)}, []record.Record{{Value: value}})
				if err == nil {
					_, err = s.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	peak, waits := s.InflightStats()
	if peak > cfg.MaxInflightBytes {
		t.Fatalf("%d bytes of appends in flight at the peak, the bound is %d", peak, cfg.MaxInflightBytes)
	}
	if waits == 0 {
		t.Fatal("no append waited for room: the test did not apply backpressure")
	}
	for w := range writers {
		info, err := s.Info(ctx, uint64(w+1))
		if err != nil || info.NextOffset != appends {
			t.Fatalf("segment %d: %+v, %v; want %d entries", w+1, info, err, appends)
		}
	}
	t.Logf("peak in flight %d KiB (bound %d KiB), %d appends waited", peak>>10, cfg.MaxInflightBytes>>10, waits)
}
