package broker

import (
	"fmt"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

func rangesString(rs []*catalogpb.OffsetRange) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("[%d,%d)", r.Start, r.End)
	}
	return s
}

func TestAckedRangesMergeNeighbours(t *testing.T) {
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
	}
	for _, tt := range tests {
		var rs []*catalogpb.OffsetRange
		for _, a := range tt.acks {
			if !isAcked(rs, a) {
				rs = addRange(rs, a)
			}
		}
		if got := rangesString(rs); got != tt.want {
			t.Errorf("acks %v: ranges %s, want %s", tt.acks, got, tt.want)
		}
		for _, a := range tt.acks {
			if !isAcked(rs, a) {
				t.Errorf("acks %v: %d not reported acked", tt.acks, a)
			}
		}
		if isAcked(rs, 2) || isAcked(rs, 10) {
			t.Errorf("acks %v: an offset never acked is reported acked", tt.acks)
		}
	}
}

func TestSubscriptionAckAdvancesNextOverContiguousAcks(t *testing.T) {
	s := &subscription{}
	s.mu.next = 10
	s.ack([]int64{12, 11, 4})
	if s.mu.next != 10 || rangesString(s.mu.acked) != "[11,13)" {
		t.Fatalf("next %d ranges %s; want 10 and [11,13)", s.mu.next, rangesString(s.mu.acked))
	}
	if got := s.backlogLocked(20); got != 8 {
		t.Fatalf("backlog = %d, want 8 (10 messages, 2 acked individually)", got)
	}
	s.ack([]int64{10})
	if s.mu.next != 13 || len(s.mu.acked) != 0 {
		t.Fatalf("next %d ranges %s; want 13 and none", s.mu.next, rangesString(s.mu.acked))
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
