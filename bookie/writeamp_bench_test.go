package bookie_test

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// BenchmarkShardWriteAmp measures the write amplification of the append
// path: bytes written to disk per byte of entry appended, by 16 writers
// with the default storage and Raft settings. Every byte the shard's
// storage writes (the Raft log's segment files and the state's Pebble) goes
// through a counting vfs.FS and is reported by directory and kind of file
// (wal.seg: log segments, wal.other: their metadata; state.sst, state.blob,
// state.other); osWB/B is the process's write_bytes from /proc/self/io
// (Raft snapshots included, page cache flushes delayed), for a
// cross-check. The shard is closed before counting, so what a close writes
// is included; compaction debt left at that moment is not. Run 1 KiB
// entries long enough for the state's memtable to flush several times:
//
//	go test -run '^$' -bench 'BenchmarkShardWriteAmp/entry=64KiB' -benchtime 30000x ./bookie/
//	go test -run '^$' -bench 'BenchmarkShardWriteAmp/entry=1KiB' -benchtime 200000x ./bookie/
//
// No segment is ever deleted. With the default settings (held-log=default)
// a run of this length takes no Raft snapshot, so the log is never
// truncated and it measures the append path alone; held-log=64MiB
// snapshots every 256 entries and keeps only 64 MiB of log for the entries,
// so log compaction copies nearly every entry into the state: the cost of
// data that outlives its budget of log.
func BenchmarkShardWriteAmp(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, held := range []int64{0, 64 << 20} {
			b.Run(fmt.Sprintf("entry=%dKiB/held-log=%s", size>>10, heldName(held)), func(b *testing.B) {
				benchWriteAmp(b, size, held)
			})
		}
	}
}

func heldName(held int64) string {
	if held == 0 {
		return "default"
	}
	return fmt.Sprintf("%dMiB", held>>20)
}

func benchWriteAmp(b *testing.B, size int, held int64) {
	cfg := testConfig(b.TempDir())
	cfg.CacheSize, cfg.MemTableSize = 0, 0 // the defaults
	if held != 0 {
		cfg.MaxHeldLogBytes = held
		cfg.Raft.SnapshotThreshold, cfg.Raft.TrailingLogs = 256, 256
		cfg.Raft.SnapshotInterval = 100 * time.Millisecond
	}
	fs := &countingFS{FS: vfs.Default}
	s, err := bookie.OpenShardFS(ctx, cfg, fs)
	if err != nil {
		b.Fatal(err)
	}
	const writers = 16
	entry := randomEntry(b, size)
	var segments atomic.Uint64
	startIO := procWriteBytes(b)
	fs.reset()
	b.SetBytes(int64(len(entry)))
	b.SetParallelism(writers / 2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		seg := segments.Add(1)
		// Distinct entries, so block compression cannot fold
		// repeats of one into a few bytes.
		pool := make([][]byte, max(2<<20/size, 2))
		for i := range pool {
			pool[i] = randomEntry(b, size)
		}
		if err := s.CreateSegment(ctx, seg, 0, 1); err != nil {
			b.Error(err)
			return
		}
		for next := int64(0); pb.Next(); next++ {
			e := pool[next%int64(len(pool))]
			record.SetBaseOffset(e, next)
			if _, err := s.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	appended := float64(b.N) * float64(len(entry))
	c := fs.snapshot()
	total := 0.0
	for kind, n := range c {
		b.ReportMetric(float64(n)/appended, kind+"B/B")
		total += float64(n)
	}
	b.ReportMetric(total/appended, "diskB/B")
	b.ReportMetric(float64(procWriteBytes(b)-startIO)/appended, "osWB/B")
	b.ReportMetric(float64(s.Status().LogCompactedBytes)/appended, "copiedB/B")
}

// randomEntry returns an entry holding one record of size random bytes:
// incompressible, like most produced batches, so Pebble's block
// compression does not hide bytes.
func randomEntry(b *testing.B, size int) []byte {
	value := make([]byte, size)
	rand.Read(value)
	e, err := record.AppendBatch(nil, record.BatchOptions{}, []record.Record{{Value: value}})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// countingFS counts the bytes written to files, by kind of file.
type countingFS struct {
	vfs.FS
	mu sync.Mutex
	n  map[string]*atomic.Int64
}

func (fs *countingFS) reset() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, c := range fs.n {
		c.Store(0)
	}
}

func (fs *countingFS) snapshot() map[string]int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := map[string]int64{}
	for k, c := range fs.n {
		out[k] = c.Load()
	}
	return out
}

func (fs *countingFS) counter(name string) *atomic.Int64 {
	kind := "other"
	switch filepath.Ext(name) {
	case ".log":
		kind = "wal"
	case ".wal":
		kind = "seg"
	case ".sst":
		kind = "sst"
	case ".blob":
		kind = "blob"
	}
	kind = filepath.Base(filepath.Dir(name)) + "." + kind
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.n == nil {
		fs.n = map[string]*atomic.Int64{}
	}
	c, ok := fs.n[kind]
	if !ok {
		c = new(atomic.Int64)
		fs.n[kind] = c
	}
	return c
}

func (fs *countingFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return countingFile{f, fs.counter(name)}, nil
}

func (fs *countingFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	return countingFile{f, fs.counter(newname)}, nil
}

func (fs *countingFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, cat, opts...)
	if err != nil {
		return nil, err
	}
	return countingFile{f, fs.counter(name)}, nil
}

type countingFile struct {
	vfs.File
	n *atomic.Int64
}

func (f countingFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.n.Add(int64(n))
	return n, err
}

func (f countingFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.n.Add(int64(n))
	return n, err
}

// procWriteBytes is this process's write_bytes from /proc/self/io (0 where
// there is none).
func procWriteBytes(b *testing.B) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	return 0
}
