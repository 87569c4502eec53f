package bookie

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/segment"
)

// walCodec writes exactly the bytes raft-wal's BinaryCodec writes, for
// logs of every shape (empty and large data, extensions, zero and local
// times), into one allocation of the buffer raft-wal hands it, and decodes
// them back to the same log.
func TestWALCodecWritesBinaryCodecBytesInOneAllocation(t *testing.T) {
	big := bytes.Repeat([]byte{0xa5}, 64<<10)
	for _, l := range []*raft.Log{
		{},
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")},
		{Index: 1 << 40, Term: 1 << 20, Type: raft.LogConfiguration, Data: big, Extensions: []byte("ext"), AppendedAt: time.Now()},
		{Index: 300, Term: 2, Type: raft.LogBarrier, AppendedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))},
		{Index: 7, Term: 3, Type: raft.LogCommand, Data: big[:1000], AppendedAt: time.Now().UTC()},
	} {
		var want, got bytes.Buffer
		if err := (&raftwal.BinaryCodec{}).Encode(l, &want); err != nil {
			t.Fatal(err)
		}
		if err := (newWALCodec(nil)).Encode(l, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("index %d: walCodec wrote %d bytes different from BinaryCodec's %d", l.Index, got.Len(), want.Len())
		}
		if got.Len() > encodedLogSize(l) {
			t.Fatalf("index %d: encoded %d bytes, above the size bound %d", l.Index, got.Len(), encodedLogSize(l))
		}
		// One right-sized buffer (a small one for a small log; the
		// allocator rounds a large one up to whole pages), where
		// BinaryCodec's writes double it.
		if got.Cap() > max(encodedLogSize(l)+8<<10, 64) {
			t.Fatalf("index %d: a buffer of %d bytes for %d", l.Index, got.Cap(), got.Len())
		}
		encode := func(c raftwal.Codec) float64 {
			return testing.AllocsPerRun(10, func() {
				var b bytes.Buffer
				_ = c.Encode(l, &b)
			})
		}
		if ours, theirs := encode(newWALCodec(nil)), encode(&raftwal.BinaryCodec{}); ours > theirs {
			t.Fatalf("index %d: %v allocations per Encode, BinaryCodec %v", l.Index, ours, theirs)
		}
		var back raft.Log
		if err := (newWALCodec(nil)).Decode(got.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if back.Index != l.Index || back.Term != l.Term || back.Type != l.Type || !bytes.Equal(back.Data, l.Data) ||
			!bytes.Equal(back.Extensions, l.Extensions) || !back.AppendedAt.Equal(l.AppendedAt) {
			t.Fatalf("index %d decoded to %+v", l.Index, back)
		}
	}
}

// walCodec stands in for BinaryCodec on disk: a log it writes is read by a
// WAL opened with raft-wal's own BinaryCodec (what earlier versions did)
// and the other way round, across reopens in both directions and segment
// rotations, every segment saying codec CodecBinaryV1.
func TestALogMovesBetweenWALCodecAndBinaryCodec(t *testing.T) {
	fs := vfs.NewMem()
	walDir := filepath.Join("shard", "wal")
	if err := fs.MkdirAll(walDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// open opens the log as openStorage does (walCodec), or with raft-wal's
	// default codec, as earlier versions did.
	open := func(t *testing.T, ours bool) storage {
		t.Helper()
		st := storage{meta: newWALMeta(fs, walDir), arena: new(encodeArena)}
		filer := raftwal.WithSegmentFiler(segment.NewFiler(walDir, walVFS{fs: fs, syncs: new(atomic.Uint64)}))
		size := raftwal.WithSegmentSize(1 << 20)
		var err error
		if ours {
			st.wal, err = raftwal.Open(walDir, raftwal.WithMetaStore(st.meta), filer, size, raftwal.WithCodec(newWALCodec(st.arena)))
		} else {
			st.wal, err = raftwal.Open(walDir, raftwal.WithMetaStore(st.meta), filer, size)
		}
		if err != nil {
			t.Fatalf("opening with walCodec %v: %v", ours, err)
		}
		return st
	}
	// Entries of ~10 KiB: 200 of them fill two 1 MiB segments.
	pad := bytes.Repeat([]byte{'.'}, 10<<10)
	// store stores a batch through walLog, as Raft does: with walCodec,
	// each batch is encoded in the arena the one before used.
	store := func(t *testing.T, st storage, from, to uint64) {
		t.Helper()
		var logs []*raft.Log
		for i := from; i <= to; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d %s", i, pad), AppendedAt: time.Now()})
		}
		if err := st.log(nil, nil).StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, st storage, last uint64) {
		t.Helper()
		for i := uint64(1); i <= last; i++ {
			var l raft.Log
			if err := st.wal.GetLog(i, &l); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			if want := fmt.Appendf(nil, "entry %d %s", i, pad); !bytes.Equal(l.Data, want) {
				t.Fatalf("entry %d holds %.20q, want %.20q", i, l.Data, want)
			}
		}
		ps, err := st.meta.Load(walDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, si := range ps.Segments {
			if si.Codec != raftwal.CodecBinaryV1 {
				t.Fatalf("segment %d says codec %d", si.ID, si.Codec)
			}
		}
	}
	closeLog := func(t *testing.T, st storage) {
		t.Helper()
		if err := st.closeLog(); err != nil {
			t.Fatal(err)
		}
	}
	last := uint64(0)
	for _, ours := range []bool{false, true, true, false, true} {
		st := open(t, ours)
		check(t, st, last)
		// Batches of 1, 50 and 500 entries (5 MiB, more than the arena
		// keeps).
		for _, n := range []uint64{1, 50, 500, 50} {
			store(t, st, last+1, last+n)
			last += n
		}
		check(t, st, last)
		closeLog(t, st)
	}
	st := open(t, false)
	defer closeLog(t, st)
	check(t, st, last)
}

// walCodec passes raft-wal's check of a custom codec's ID once, at Open,
// and reports BinaryCodec's ID ever after.
func TestWALCodecIDPassesTheCheckOnceThenIsBinaryCodecs(t *testing.T) {
	c := newWALCodec(nil)
	if id := c.ID(); id < raftwal.FirstExternalCodecID {
		t.Fatalf("first ID %d is in raft-wal's reserved range", id)
	}
	for range 3 {
		if id := c.ID(); id != (&raftwal.BinaryCodec{}).ID() {
			t.Fatalf("ID %d, want BinaryCodec's %d", id, (&raftwal.BinaryCodec{}).ID())
		}
	}
}

// The arena lends memory only to the logs of the batch it is armed for, in
// their order, each once, within its bound, and not after disarm; what it
// lends encodes to BinaryCodec's bytes.
func TestEncodeArenaLendsOnlyToTheArmedBatch(t *testing.T) {
	a := new(encodeArena)
	c := newWALCodec(a)
	inArena := func(b []byte) bool {
		if len(b) == 0 || len(a.buf) == 0 {
			return false
		}
		p, lo := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&a.buf[0]))
		return p >= lo && p < lo+uintptr(len(a.buf))
	}
	encode := func(l *raft.Log) (inA bool) {
		t.Helper()
		var got, want bytes.Buffer
		if err := c.Encode(l, &got); err != nil {
			t.Fatal(err)
		}
		if err := (&raftwal.BinaryCodec{}).Encode(l, &want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("index %d: encoded bytes differ from BinaryCodec's", l.Index)
		}
		return inArena(got.Bytes())
	}
	mk := func(i uint64, size int) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Data: bytes.Repeat([]byte{byte(i)}, size), AppendedAt: time.Now()}
	}
	batch := []*raft.Log{mk(1, 100), mk(2, 64<<10), mk(3, 0)}
	other := mk(1, 100)
	a.arm(batch)
	if encode(other) {
		t.Fatal("a log of another batch was encoded into the arena")
	}
	if encode(batch[1]) {
		t.Fatal("a log out of order was encoded into the arena")
	}
	for i, l := range batch {
		if !encode(l) {
			t.Fatalf("log %d of the armed batch was not encoded into the arena", i)
		}
	}
	if encode(batch[0]) {
		t.Fatal("a log was lent memory twice")
	}
	a.disarm(batch)
	a.arm(batch)
	a.disarm(other0(batch))
	if !encode(batch[0]) {
		t.Fatal("disarming another batch disarmed this one")
	}
	a.disarm(batch)
	if encode(batch[1]) {
		t.Fatal("the arena lent after disarm")
	}
	// A batch over maxEncodeArena: the logs that fit are lent memory, the
	// rest get their own; the arena stays within its bound.
	var big []*raft.Log
	for i := range uint64(100) {
		big = append(big, mk(i+1, 64<<10))
	}
	a.arm(big)
	lent := 0
	for _, l := range big {
		if encode(l) {
			lent++
		}
	}
	a.disarm(big)
	if want := maxEncodeArena / encodedLogSize(big[0]); lent != want || cap(a.buf) > maxEncodeArena {
		t.Fatalf("%d of 100 logs lent memory from an arena of %d bytes, want %d", lent, cap(a.buf), want)
	}
}

// other0 is a batch holding the same log as logs[0] in a different slice.
func other0(logs []*raft.Log) []*raft.Log { return []*raft.Log{logs[0]} }
