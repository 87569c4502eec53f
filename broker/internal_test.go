package broker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
)

func runsString(a *ackSet) string {
	var s strings.Builder
	for start, end := range a.runs() {
		fmt.Fprintf(&s, "[%d,%d)", start, end)
	}
	return s.String()
}

func TestAckedRangesMergeNeighbours(t *testing.T) {
	const c = 1 << chunkBits // ranges across a chunk boundary merge too
	tests := []struct {
		acks []int64
		want string
	}{
		{[]int64{5}, "[5,6)"},
		{[]int64{5, 6, 7}, "[5,8)"},
		{[]int64{7, 6, 5}, "[5,8)"},
		{[]int64{5, 7}, "[5,6)[7,8)"},
		{[]int64{5, 7, 6}, "[5,8)"},
		{[]int64{9, 5, 7, 3}, "[3,4)[5,6)[7,8)[9,10)"},
		{[]int64{9, 5, 7, 3, 4, 8, 6}, "[3,10)"},
		{[]int64{c - 1, c, 3 * c}, fmt.Sprintf("[%d,%d)[%d,%d)", c-1, c+1, 3*c, 3*c+1)},
	}
	for _, tt := range tests {
		var a ackSet
		for _, off := range tt.acks {
			if !a.add(off) {
				t.Errorf("acks %v: %d reported present before it was added", tt.acks, off)
			}
		}
		if got := runsString(&a); got != tt.want {
			t.Errorf("acks %v: ranges %s, want %s", tt.acks, got, tt.want)
		}
		for _, off := range tt.acks {
			if !a.has(off) || a.add(off) {
				t.Errorf("acks %v: %d not reported acked", tt.acks, off)
			}
		}
		if a.has(2) || a.has(10) || a.has(c+1) {
			t.Errorf("acks %v: an offset never acked is reported acked", tt.acks)
		}
		if got := a.len(); got != int64(len(tt.acks)) {
			t.Errorf("acks %v: len %d", tt.acks, got)
		}
	}
}

func TestAckSetAdvancesAcrossChunks(t *testing.T) {
	const c = 1 << chunkBits
	var a ackSet
	a.addRange(10, 2*c+5) // the rest of chunk 0, all of chunk 1, the start of chunk 2
	a.add(2*c + 7)
	if got := a.firstAbsent(10); got != 2*c+5 {
		t.Fatalf("firstAbsent(10) = %d, want %d", got, 2*c+5)
	}
	if got := a.firstAbsent(3); got != 3 {
		t.Fatalf("firstAbsent(3) = %d, want 3", got)
	}
	if got := a.countBelow(c); got != c-10 {
		t.Fatalf("countBelow(%d) = %d, want %d", c, got, c-10)
	}
	a.dropBelow(2*c + 5)
	if len(a.keys) != 1 || a.keys[0] != 2 || runsString(&a) != fmt.Sprintf("[%d,%d)", 2*c+7, 2*c+8) {
		t.Fatalf("after dropBelow: chunks %v, ranges %s", a.keys, runsString(&a))
	}
	// Chunks 0 and 1 are gone: the next flush deletes their rows.
	chunks, err := a.takeDirty()
	if err != nil {
		t.Fatal(err)
	}
	if chunks[0] != nil || chunks[1] != nil || chunks[2] == nil || len(chunks) != 3 {
		t.Fatalf("dirty chunks %v, want 0 and 1 deleted and 2 written", chunks)
	}
	var b ackSet
	if err := b.load(2, chunks[2]); err != nil || runsString(&b) != runsString(&a) {
		t.Fatalf("chunk 2 reloaded: %s, %v; want %s", runsString(&b), err, runsString(&a))
	}
}

func TestSubscriptionAckAdvancesNextOverContiguousAcks(t *testing.T) {
	s := &subscription{}
	s.mu.next = 10
	s.ack([]int64{12, 11, 4, 20}, 20)
	if s.mu.next != 10 || runsString(&s.mu.acks) != "[11,13)" {
		t.Fatalf("next %d ranges %s; want 10 and [11,13)", s.mu.next, runsString(&s.mu.acks))
	}
	if got := s.backlogLocked(20); got != 8 {
		t.Fatalf("backlog = %d, want 8 (10 messages, 2 acked individually)", got)
	}
	s.ack([]int64{10}, 20)
	if s.mu.next != 13 || len(s.mu.acks.keys) != 0 {
		t.Fatalf("next %d ranges %s; want 13 and none", s.mu.next, runsString(&s.mu.acks))
	}
}

func entry(base, last int64, size int) bookie.Entry {
	return bookie.Entry{BaseOffset: base, LastOffset: last, Data: make([]byte, size)}
}

func TestTailCacheEvictsOldestAndServesFromTheMiddleOfABatch(t *testing.T) {
	c := tailCache{maxBytes: 300}
	c.add(entry(0, 9, 100))
	c.add(entry(10, 19, 100))
	c.add(entry(20, 29, 100))
	if got := c.read(15, 1000); len(got) != 2 || got[0].BaseOffset != 10 {
		t.Fatalf("read(15) = %d entries starting %d, want the batch holding 15 and the next", len(got), got[0].BaseOffset)
	}
	c.add(entry(30, 39, 100)) // evicts [0,9]
	if got := c.read(5, 1000); got != nil {
		t.Fatalf("read(5) after eviction = %v, want a miss", got)
	}
	if got := c.read(40, 1000); got != nil {
		t.Fatalf("read(40) past the end = %v, want a miss", got)
	}
	if got := c.read(10, 150); len(got) != 1 {
		t.Fatalf("read with maxBytes 150 returned %d entries, want 1", len(got))
	}
	if got := c.read(10, 1); len(got) != 1 {
		t.Fatalf("read with a tiny maxBytes returned %d entries, want at least one", len(got))
	}
	c.add(entry(40, 49, 400)) // larger than the cache: drops everything
	if got := c.read(30, 1000); got != nil {
		t.Fatalf("read after an oversized add = %v, want a miss", got)
	}
}
