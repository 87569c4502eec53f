package bookietest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// Batch returns an uncompressed RecordBatch v2 entry with base offset base
// and one record per value.
func Batch(tb testing.TB, base int64, values ...string) []byte {
	tb.Helper()
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Timestamp: 1_700_000_000_000 + int64(i), Value: []byte(v)}
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{BaseOffset: base}, recs)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BatchN returns an entry at base holding n records.
func BatchN(tb testing.TB, base int64, n int) []byte {
	tb.Helper()
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("value-%d", base+int64(i))
	}
	return Batch(tb, base, values...)
}

// RunConformance runs the behaviour every bookie.Client must have against
// clients made by newClient (one per subtest; newClient registers their
// cleanup).
func RunConformance(t *testing.T, newClient func(t *testing.T) bookie.Client) {
	for _, tc := range conformanceTests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newClient(t))
		})
	}
}

var conformanceTests = []struct {
	name string
	run  func(t *testing.T, c bookie.Client)
}{
	{"a created segment is open, empty and at its start offset", testCreate},
	{"creating an existing segment fails with ErrSegmentExists", testCreateTwice},
	{"appended entries are read back in order with the segment's next offset", testAppendRead},
	{"the first entry must start at the next offset", testDenseFirst},
	{"entries of one append must be dense; a bad one stores nothing", testDenseWithin},
	{"corrupt entries are rejected with ErrCorrupt", testCorrupt},
	{"reading from inside a batch returns the batch holding the offset", testReadMiddle},
	{"reads stop near maxBytes but return at least one entry", testReadMaxBytes},
	{"stored entries do not alias the caller's buffers", testNoAlias},
	{"calls on unknown segments fail with ErrSegmentNotFound", testNotFound},
	{"a writer fenced by a seal with a newer epoch cannot append", testFencing},
	{"the writer's own seal makes later appends fail with ErrSegmentSealed", testSealOwn},
	{"sealing twice returns the same state", testSealTwice},
	{"sealing an unknown segment records it sealed and empty", testSealUnknown},
	{"a seal with an older epoch than an open segment's is fenced", testStaleSeal},
	{"an append with a newer epoch fences older writers", testNewerWriter},
	{"deleting a segment removes it and its entries", testDelete},
	{"listing pages through the segments in ID order with their state", testList},
	{"concurrent appends to different segments all land", testConcurrent},
	{"a cancelled context fails the call and changes nothing", testCancelled},
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func info(t *testing.T, c bookie.Client, seg uint64) bookie.SegmentInfo {
	t.Helper()
	i, err := c.Info(ctx, seg)
	must(t, err)
	return i
}

func appendOK(t *testing.T, c bookie.Client, seg, epoch uint64, entries ...[]byte) int64 {
	t.Helper()
	next, err := c.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: epoch, Entries: entries})
	must(t, err)
	return next
}

func read(t *testing.T, c bookie.Client, seg uint64, from int64, maxBytes int) []bookie.Entry {
	t.Helper()
	es, err := c.Read(ctx, seg, from, maxBytes)
	must(t, err)
	for _, e := range es {
		h, err := record.VerifyCRC(e.Data)
		if err != nil || h.BaseOffset != e.BaseOffset || h.LastOffset() != e.LastOffset {
			t.Fatalf("entry %d..%d does not match its bytes (%+v, %v)", e.BaseOffset, e.LastOffset, h, err)
		}
	}
	return es
}

func bases(es []bookie.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.BaseOffset
	}
	return out
}

func wantBases(t *testing.T, es []bookie.Entry, want ...int64) {
	t.Helper()
	if got := bases(es); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries start at %v, want %v", got, want)
	}
}

func testCreate(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 7, 100, 3))
	want := bookie.SegmentInfo{ID: 7, State: bookie.SegmentOpen, Epoch: 3, StartOffset: 100, NextOffset: 100}
	if got := info(t, c, 7); got != want {
		t.Fatalf("info = %+v, want %+v", got, want)
	}
	if es := read(t, c, 7, 100, 1<<20); len(es) != 0 {
		t.Fatalf("new segment has %d entries", len(es))
	}
}

func testCreateTwice(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	wantErr(t, c.CreateSegment(ctx, 1, 0, 1), bookie.ErrSegmentExists)
	wantErr(t, c.CreateSegment(ctx, 1, 50, 2), bookie.ErrSegmentExists)
}

func testAppendRead(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 10, 1))
	e1, e2, e3 := BatchN(t, 10, 3), BatchN(t, 13, 1), BatchN(t, 14, 5)
	if next := appendOK(t, c, 1, 1, e1, e2); next != 14 {
		t.Fatalf("next = %d, want 14", next)
	}
	if next := appendOK(t, c, 1, 1, e3); next != 19 {
		t.Fatalf("next = %d, want 19", next)
	}
	got := info(t, c, 1)
	if got.NextOffset != 19 || got.Bytes != int64(len(e1)+len(e2)+len(e3)) || got.State != bookie.SegmentOpen {
		t.Fatalf("info = %+v", got)
	}
	es := read(t, c, 1, 10, 1<<20)
	wantBases(t, es, 10, 13, 14)
	for i, want := range [][]byte{e1, e2, e3} {
		if !bytes.Equal(es[i].Data, want) {
			t.Fatalf("entry %d differs from what was appended", i)
		}
	}
	if es := read(t, c, 1, 19, 1<<20); len(es) != 0 {
		t.Fatalf("read at the next offset returned %v", bases(es))
	}
	if es := read(t, c, 1, 0, 1<<20); len(es) != 3 {
		t.Fatalf("read before the start offset returned %v, want every entry", bases(es))
	}
	if next := appendOK(t, c, 1, 1); next != 19 {
		t.Fatalf("an empty append returned next %d, want 19", next)
	}
}

func testDenseFirst(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 10, 1))
	for _, base := range []int64{0, 9, 11} {
		_, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{BatchN(t, base, 2)}})
		wantErr(t, err, bookie.ErrBadOffset)
	}
	appendOK(t, c, 1, 1, BatchN(t, 10, 2))
	_, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{BatchN(t, 10, 2)}})
	wantErr(t, err, bookie.ErrBadOffset) // a replay of the same entry
}

func testDenseWithin(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	for _, entries := range [][][]byte{
		{BatchN(t, 0, 2), BatchN(t, 3, 1)},                  // gap
		{BatchN(t, 0, 2), BatchN(t, 1, 1)},                  // overlap
		{BatchN(t, 0, 2), BatchN(t, 2, 1), BatchN(t, 2, 1)}, // repeat
	} {
		_, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: entries})
		wantErr(t, err, bookie.ErrBadOffset)
	}
	if got := info(t, c, 1); got.NextOffset != 0 || got.Bytes != 0 {
		t.Fatalf("a rejected append changed the segment: %+v", got)
	}
	if es := read(t, c, 1, 0, 1<<20); len(es) != 0 {
		t.Fatalf("a rejected append stored entries %v", bases(es))
	}
}

func testCorrupt(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	good := BatchN(t, 0, 2)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	for name, entries := range map[string][][]byte{
		"flipped byte":     {flipped},
		"trailing bytes":   {append(bytes.Clone(good), 0)},
		"truncated":        {good[:len(good)-1]},
		"not a batch":      {[]byte("hello")},
		"second corrupted": {good, flipped},
	} {
		_, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: entries})
		if !errors.Is(err, bookie.ErrCorrupt) && !(name == "second corrupted" && errors.Is(err, bookie.ErrBadOffset)) {
			t.Fatalf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	if got := info(t, c, 1); got.NextOffset != 0 {
		t.Fatalf("a rejected append changed the segment: %+v", got)
	}
}

func testReadMiddle(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	appendOK(t, c, 1, 1, BatchN(t, 0, 5), BatchN(t, 5, 5), BatchN(t, 10, 5))
	wantBases(t, read(t, c, 1, 7, 1<<20), 5, 10)
	wantBases(t, read(t, c, 1, 5, 1<<20), 5, 10)
	wantBases(t, read(t, c, 1, 4, 1<<20), 0, 5, 10)
	wantBases(t, read(t, c, 1, 10, 1<<20), 10)
	wantBases(t, read(t, c, 1, 14, 1<<20), 10)
	wantBases(t, read(t, c, 1, 15, 1<<20))
}

func testReadMaxBytes(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	e := BatchN(t, 0, 1)
	entries := [][]byte{e}
	for i := int64(1); i < 10; i++ {
		entries = append(entries, BatchN(t, i, 1))
	}
	appendOK(t, c, 1, 1, entries...)
	wantBases(t, read(t, c, 1, 0, 0), 0)
	wantBases(t, read(t, c, 1, 3, 1), 3)
	es := read(t, c, 1, 0, 3*len(e))
	if len(es) < 3 || len(es) > 4 {
		t.Fatalf("maxBytes of 3 entries returned %d entries", len(es))
	}
	wantBases(t, read(t, c, 1, 0, 1<<30), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
}

func testNoAlias(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	e := BatchN(t, 0, 3)
	orig := bytes.Clone(e)
	appendOK(t, c, 1, 1, e)
	for i := range e {
		e[i] = 0
	}
	if es := read(t, c, 1, 0, 1<<20); !bytes.Equal(es[0].Data, orig) {
		t.Fatal("changing the appended buffer changed the stored entry")
	}
}

func testNotFound(t *testing.T, c bookie.Client) {
	_, err := c.Append(ctx, bookie.AppendRequest{Segment: 9, Epoch: 1, Entries: [][]byte{BatchN(t, 0, 1)}})
	wantErr(t, err, bookie.ErrSegmentNotFound)
	_, err = c.Read(ctx, 9, 0, 100)
	wantErr(t, err, bookie.ErrSegmentNotFound)
	_, err = c.Info(ctx, 9)
	wantErr(t, err, bookie.ErrSegmentNotFound)
	wantErr(t, c.DeleteSegment(ctx, 9), bookie.ErrSegmentNotFound)
}

func testFencing(t *testing.T, c bookie.Client) {
	// Writer A (epoch 1) owns the segment; B (epoch 2) takes over.
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	appendOK(t, c, 1, 1, BatchN(t, 0, 3))
	lastAck := appendOK(t, c, 1, 1, BatchN(t, 3, 2))
	sealed, err := c.Seal(ctx, 1, 2, 0)
	must(t, err)
	if sealed.State != bookie.SegmentSealed || sealed.Epoch != 2 || sealed.NextOffset != lastAck {
		t.Fatalf("sealed = %+v, want sealed at epoch 2 ending at A's last ack %d", sealed, lastAck)
	}
	_, err = c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{BatchN(t, lastAck, 1)}})
	wantErr(t, err, bookie.ErrFenced)
	if got := info(t, c, 1); got != sealed {
		t.Fatalf("info after the fenced append = %+v, want %+v", got, sealed)
	}
	wantBases(t, read(t, c, 1, 0, 1<<20), 0, 3)
}

func testSealOwn(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 4))
	appendOK(t, c, 1, 4, BatchN(t, 0, 1))
	sealed, err := c.Seal(ctx, 1, 4, 0)
	must(t, err)
	if sealed.Epoch != 4 || sealed.NextOffset != 1 {
		t.Fatalf("sealed = %+v", sealed)
	}
	_, err = c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 4, Entries: [][]byte{BatchN(t, 1, 1)}})
	wantErr(t, err, bookie.ErrSegmentSealed)
	_, err = c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 5, Entries: [][]byte{BatchN(t, 1, 1)}})
	wantErr(t, err, bookie.ErrSegmentSealed)
}

func testSealTwice(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	appendOK(t, c, 1, 1, BatchN(t, 0, 2))
	first, err := c.Seal(ctx, 1, 2, 0)
	must(t, err)
	for _, epoch := range []uint64{2, 1} {
		again, err := c.Seal(ctx, 1, epoch, 99)
		must(t, err)
		if again != first {
			t.Fatalf("resealing at epoch %d = %+v, want %+v", epoch, again, first)
		}
	}
	raised, err := c.Seal(ctx, 1, 3, 0)
	must(t, err)
	if raised.Epoch != 3 || raised.NextOffset != first.NextOffset || raised.State != bookie.SegmentSealed {
		t.Fatalf("resealing with a newer epoch = %+v", raised)
	}
}

func testSealUnknown(t *testing.T, c bookie.Client) {
	sealed, err := c.Seal(ctx, 5, 3, 40)
	must(t, err)
	want := bookie.SegmentInfo{ID: 5, State: bookie.SegmentSealed, Epoch: 3, StartOffset: 40, NextOffset: 40}
	if sealed != want {
		t.Fatalf("sealed = %+v, want %+v", sealed, want)
	}
	if got := info(t, c, 5); got != want {
		t.Fatalf("info = %+v, want %+v", got, want)
	}
	// The writer that never managed to create it cannot do so now.
	wantErr(t, c.CreateSegment(ctx, 5, 40, 2), bookie.ErrSegmentExists)
	_, err = c.Append(ctx, bookie.AppendRequest{Segment: 5, Epoch: 2, Entries: [][]byte{BatchN(t, 40, 1)}})
	wantErr(t, err, bookie.ErrFenced)
	if es := read(t, c, 5, 40, 1<<20); len(es) != 0 {
		t.Fatalf("sealed-empty segment has entries %v", bases(es))
	}
}

func testStaleSeal(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 5))
	_, err := c.Seal(ctx, 1, 4, 0)
	wantErr(t, err, bookie.ErrFenced)
	if got := info(t, c, 1); got.State != bookie.SegmentOpen || got.Epoch != 5 {
		t.Fatalf("a stale seal changed the segment: %+v", got)
	}
	appendOK(t, c, 1, 5, BatchN(t, 0, 1))
}

func testNewerWriter(t *testing.T, c bookie.Client) {
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	appendOK(t, c, 1, 1, BatchN(t, 0, 1))
	appendOK(t, c, 1, 2, BatchN(t, 1, 1))
	if got := info(t, c, 1); got.Epoch != 2 {
		t.Fatalf("epoch after a newer writer's append = %d, want 2", got.Epoch)
	}
	_, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{BatchN(t, 2, 1)}})
	wantErr(t, err, bookie.ErrFenced)
}

func testDelete(t *testing.T, c bookie.Client) {
	for seg := uint64(1); seg <= 3; seg++ {
		must(t, c.CreateSegment(ctx, seg, 0, 1))
		appendOK(t, c, seg, 1, BatchN(t, 0, 2), BatchN(t, 2, 2))
	}
	must(t, c.DeleteSegment(ctx, 2))
	_, err := c.Info(ctx, 2)
	wantErr(t, err, bookie.ErrSegmentNotFound)
	_, err = c.Read(ctx, 2, 0, 1<<20)
	wantErr(t, err, bookie.ErrSegmentNotFound)
	// Its neighbours are untouched, and the id can be used again.
	wantBases(t, read(t, c, 1, 0, 1<<20), 0, 2)
	wantBases(t, read(t, c, 3, 0, 1<<20), 0, 2)
	must(t, c.CreateSegment(ctx, 2, 10, 1))
	wantBases(t, read(t, c, 2, 0, 1<<20))
}

func testConcurrent(t *testing.T, c bookie.Client) {
	const writers, appends = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range uint64(writers) {
		wg.Go(func() {
			seg := 100 + w
			if err := c.CreateSegment(ctx, seg, 0, 1); err != nil {
				errs <- err
				return
			}
			for i := range int64(appends) {
				next, err := c.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{BatchN(t, 2*i, 2)}})
				if err != nil || next != 2*i+2 {
					errs <- fmt.Errorf("segment %d append %d: next %d, %w", seg, i, next, err)
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
	for w := range uint64(writers) {
		if es := read(t, c, 100+w, 0, 1<<30); len(es) != appends {
			t.Fatalf("segment %d has %d entries, want %d", 100+w, len(es), appends)
		}
	}
}

func testCancelled(t *testing.T, c bookie.Client) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	wantErr(t, c.CreateSegment(cctx, 1, 0, 1), context.Canceled)
	_, err := c.Info(ctx, 1)
	wantErr(t, err, bookie.ErrSegmentNotFound)
	must(t, c.CreateSegment(ctx, 1, 0, 1))
	_, err = c.Append(cctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{BatchN(t, 0, 1)}})
	wantErr(t, err, context.Canceled)
	if got := info(t, c, 1); got.NextOffset != 0 {
		t.Fatalf("a cancelled append changed the segment: %+v", got)
	}
}

func testList(t *testing.T, c bookie.Client) {
	if l, err := c.ListSegments(ctx, 0, 0); err != nil || len(l) != 0 {
		t.Fatalf("list of an empty shard: %+v, %v", l, err)
	}
	for _, seg := range []uint64{5, 1, 3, 9} {
		must(t, c.CreateSegment(ctx, seg, int64(seg)*10, 1))
	}
	appendOK(t, c, 3, 1, BatchN(t, 30, 2))
	_, err := c.Seal(ctx, 9, 2, 90)
	must(t, err)
	must(t, c.DeleteSegment(ctx, 5))

	all, err := c.ListSegments(ctx, 0, 0)
	must(t, err)
	var ids []uint64
	for _, s := range all {
		ids = append(ids, s.ID)
	}
	if fmt.Sprint(ids) != "[1 3 9]" {
		t.Fatalf("listed %v, want [1 3 9]", ids)
	}
	if all[1] != info(t, c, 3) || all[1].NextOffset != 32 || all[2].State != bookie.SegmentSealed || all[2].Epoch != 2 {
		t.Fatalf("listed states %+v", all)
	}
	page, err := c.ListSegments(ctx, 1, 1)
	must(t, err)
	if len(page) != 1 || page[0].ID != 3 {
		t.Fatalf("the page after 1 of 1: %+v", page)
	}
	page, err = c.ListSegments(ctx, 9, 10)
	must(t, err)
	if len(page) != 0 {
		t.Fatalf("the page after the last: %+v", page)
	}
}
