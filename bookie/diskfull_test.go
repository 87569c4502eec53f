package bookie_test

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// smallDisk is the OS file system with a byte budget, a disk that fills
// up: every byte written with Write (or rewritten: Pebble's files) spends
// it, and so does every byte a file grows by through WriteAt or
// Preallocate (the Raft log's segment files, which raft-wal preallocates
// whole and then fills with WriteAt: a write into preallocated space
// spends nothing more, as on a real disk). Deletes give nothing back, a
// write that does not fit fails with ENOSPC, and GetDiskUsage reports what
// is left.
type smallDisk struct {
	vfs.FS
	avail  atomic.Int64
	enospc atomic.Int64 // writes refused
}

func newSmallDisk(capacity int64) *smallDisk {
	d := &smallDisk{FS: vfs.Default}
	d.avail.Store(capacity)
	return d
}

func (d *smallDisk) spend(n int) error {
	for {
		a := d.avail.Load()
		if int64(n) > a {
			d.enospc.Add(1)
			return syscall.ENOSPC
		}
		if d.avail.CompareAndSwap(a, a-int64(n)) {
			return nil
		}
	}
}

func (d *smallDisk) GetDiskUsage(string) (vfs.DiskUsage, error) {
	a := uint64(max(d.avail.Load(), 0))
	return vfs.DiskUsage{AvailBytes: a, TotalBytes: 1 << 40, UsedBytes: 1<<40 - a}, nil
}

func (d *smallDisk) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := d.FS.Create(name, c)
	return d.wrap(f, err)
}

func (d *smallDisk) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := d.FS.OpenReadWrite(name, c, opts...)
	return d.wrap(f, err)
}

func (d *smallDisk) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := d.FS.ReuseForWrite(oldname, newname, c)
	return d.wrap(f, err)
}

func (d *smallDisk) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	sf := &smallDiskFile{File: f, d: d}
	sf.end.Store(fi.Size())
	return sf, nil
}

type smallDiskFile struct {
	vfs.File
	d *smallDisk
	// end is how far the file is allocated: its size when opened, grown
	// by WriteAt and Preallocate.
	end atomic.Int64
}

// grow spends the bytes by which [off, off+n) extends the file.
func (f *smallDiskFile) grow(off, n int64) error {
	for {
		end := f.end.Load()
		if off+n <= end {
			return nil
		}
		if err := f.d.spend(int(off + n - end)); err != nil {
			return err
		}
		if f.end.CompareAndSwap(end, off+n) {
			return nil
		}
		f.d.avail.Add(off + n - end) // raced with another grow: retry
	}
}

func (f *smallDiskFile) Preallocate(off, n int64) error {
	if err := f.grow(off, n); err != nil {
		return err
	}
	return f.File.Preallocate(off, n)
}

func (f *smallDiskFile) Write(p []byte) (int, error) {
	if err := f.d.spend(len(p)); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *smallDiskFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.grow(off, int64(len(p))); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

// A disk that fills up: four writers append 64 KiB entries to a shard on a
// 48 MiB disk with a 16 MiB reserve until each is refused. The Raft log
// (4 MiB segments, preallocated) and the state's Pebble are both on that
// disk. Every refusal is ErrDiskFull (over gRPC too, with code
// ResourceExhausted), neither the log nor Pebble ever sees a failed write
// (a log segment that cannot be preallocated stops the log taking entries
// until a restart; Pebble panics on some failed writes), every
// acknowledged entry reads back byte for byte, seals and deletes still
// work, and once space is freed appends resume.
func TestAFullDiskFailsAppendsAndKeepsServingReads(t *testing.T) {
	disk := newSmallDisk(48 << 20)
	cfg := testConfig(t.TempDir())
	cfg.MinFreeBytes = 16 << 20
	cfg.WALSegmentSize = 4 << 20
	s, err := bookie.OpenShardFS(ctx, cfg, disk)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc := dialTCP(t, s)

	const writers = 4
	value := bytes.Repeat([]byte("full disk "), 64<<10/10)
	acked := make([][][]byte, writers) // acked[w] are segment w+1's entries
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		seg := uint64(w + 1)
		if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for next := int64(0); ; next++ {
				e, err := record.AppendBatch(nil, record.BatchOptions{BaseOffset: next}, []record.Record{{Value: value}})
				if err != nil {
					errs[w] = err
					return
				}
				var c bookie.Client = s
				if w%2 == 1 {
					c = rc // half the writers over gRPC
				}
				if _, err := c.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}}); err != nil {
					errs[w] = err
					return
				}
				acked[w] = append(acked[w], e)
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if !errors.Is(err, bookie.ErrDiskFull) {
			t.Fatalf("writer %d stopped with %v, want ErrDiskFull", w, err)
		}
		if w%2 == 1 && status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("writer %d over gRPC: code %v, want ResourceExhausted", w, status.Code(err))
		}
		if len(acked[w]) == 0 {
			t.Fatalf("writer %d had no append acknowledged before the disk filled", w)
		}
	}
	if n := disk.enospc.Load(); n != 0 {
		t.Fatalf("%d writes hit ENOSPC: the reserve did not keep the log and Pebble off a full disk", n)
	}
	t.Logf("disk full after %d, %d, %d, %d acknowledged 64 KiB appends; %d bytes left",
		len(acked[0]), len(acked[1]), len(acked[2]), len(acked[3]), disk.avail.Load())

	if err := rc.CreateSegment(ctx, 99, 0, 1); !errors.Is(err, bookie.ErrDiskFull) {
		t.Fatalf("CreateSegment on a full disk: %v, want ErrDiskFull", err)
	}
	for w, want := range acked {
		seg := uint64(w + 1)
		es, err := rc.Read(ctx, seg, 0, 1<<30)
		if err != nil {
			t.Fatalf("reading segment %d on a full disk: %v", seg, err)
		}
		if len(es) != len(want) {
			t.Fatalf("segment %d: %d entries, want the %d acknowledged", seg, len(es), len(want))
		}
		for i := range es {
			if !bytes.Equal(es[i].Data, want[i]) {
				t.Fatalf("segment %d entry %d differs from what was acknowledged", seg, i)
			}
		}
	}
	info, err := rc.Seal(ctx, 1, 2, 0)
	if err != nil || info.NextOffset != int64(len(acked[0])) {
		t.Fatalf("Seal on a full disk = %+v, %v; want sealed at %d", info, err, len(acked[0]))
	}
	if err := rc.DeleteSegment(ctx, 2); err != nil {
		t.Fatalf("DeleteSegment on a full disk: %v", err)
	}

	disk.avail.Add(64 << 20) // the operator makes room
	seg, next := uint64(3), int64(len(acked[2]))
	e, err := record.AppendBatch(nil, record.BatchOptions{BaseOffset: next}, []record.Record{{Value: value}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rc.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}}); err != nil || n != next+1 {
		t.Fatalf("Append after space was freed: %d, %v; want next offset %d", n, err, next+1)
	}
}
