package broker

import (
	"testing"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// A million scattered acknowledgements (every other offset of two million)
// stay small in memory and in the metadata store, a flush rewrites only the
// chunks that changed, and a new owner reads them back exactly.
func TestMillionScatteredAcksArePersistedCompactly(t *testing.T) {
	t.Parallel()
	st := newStores(t)
	b := newBroker(t, st)
	n := topic(t, b, "scattered", 1)
	if _, err := b.Publish(ctxT(t), n, 0, values("v", 0, 1)); err != nil {
		t.Fatal(err)
	}
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	const total = 2_000_000
	offs := make([]int64, 0, total/2)
	for off := int64(1); off < total; off += 2 {
		offs = append(offs, off)
	}
	// Straight to the subscription: the consumer ignores offsets not
	// published yet, and publishing two million messages is not the point.
	s := c.sub
	s.ack(offs, total)
	if err := s.flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var mem uint64
	s.mu.Lock()
	for _, bm := range s.mu.acks.chunks {
		mem += bm.GetSizeInBytes()
	}
	s.mu.Unlock()
	if mem > 512<<10 {
		t.Fatalf("%d acknowledgements take %d bytes in memory", len(offs), mem)
	}

	rows := func() (map[int64]int64, int) {
		t.Helper()
		versions, bytes := map[int64]int64{}, 0
		var page catalog.Page
		for {
			l, err := b.cat.AckChunks.List(ctxT(t), s.cn, page)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range l.Entries {
				versions[e.Name.Chunk] = e.Version
				bytes += len(e.Value.Bitmap)
			}
			if l.Next == "" {
				return versions, bytes
			}
			page.After = l.Next
		}
	}
	before, stored := rows()
	if len(before) != total>>chunkBits+1 || stored > 512<<10 {
		t.Fatalf("%d chunk rows of %d bytes in all; want %d rows, at most 512 KiB", len(before), stored, total>>chunkBits+1)
	}
	t.Logf("%d scattered acks: %d bytes in memory, %d chunk rows of %d bytes in all", len(offs), mem, len(before), stored)

	// One more acknowledgement rewrites one chunk row.
	s.ack([]int64{total/2 + 10}, total)
	if err := s.flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	after, _ := rows()
	changed := 0
	for k, v := range after {
		if v != before[k] {
			changed++
		}
	}
	if changed != 1 {
		t.Fatalf("one acknowledgement rewrote %d chunk rows, want 1", changed)
	}
	s.mu.Lock()
	want := runsString(&s.mu.acks)
	s.mu.Unlock()
	c.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// A new owner loads the same set.
	b2 := newBroker(t, st)
	c2, err := b2.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.sub.mu.Lock()
	got, next := runsString(&c2.sub.mu.acks), c2.sub.mu.next
	c2.sub.mu.Unlock()
	if next != 0 || got != want {
		t.Fatalf("reloaded cursor: next %d, %d bytes of ranges; want 0 and the %d bytes written", next, len(got), len(want))
	}

	// Acknowledging offset 0 moves the cursor over the first run; a seek
	// back forgets the acknowledgements, also for the next owner.
	c2.Ack([]int64{0})
	c2.sub.mu.Lock()
	next = c2.sub.mu.next
	c2.sub.mu.Unlock()
	if next != 2 {
		t.Fatalf("next after acknowledging 0: %d, want 2", next)
	}
	if _, err := b2.ResetSubscription(ctxT(t), n, 0, "s", Position{Offset: 0}); err != nil {
		t.Fatal(err)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	b3 := newBroker(t, st)
	c3, err := b3.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.sub.mu.Lock()
	defer c3.sub.mu.Unlock()
	if c3.sub.mu.next != 0 || len(c3.sub.mu.acks.keys) != 0 {
		t.Fatalf("after the reset and a reload: next %d, %d chunks; want 0 and none", c3.sub.mu.next, len(c3.sub.mu.acks.keys))
	}
}

// A chunk row read back from the metadata store decodes or fails; it
// never panics, and what it decodes stays within its chunk.
func FuzzAckChunkLoad(f *testing.F) {
	var a ackSet
	a.addRange(3, 9000)
	a.add(60000)
	chunks, err := a.takeDirty()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(chunks[0])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b ackSet
		if err := b.load(5, data); err != nil {
			return
		}
		for start, end := range b.runs() {
			if start < 5<<chunkBits || end > 6<<chunkBits {
				t.Fatalf("run [%d,%d) outside chunk 5", start, end)
			}
		}
	})
}
