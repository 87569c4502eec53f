package chaos

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// logOf builds a partition's records from message IDs, at offsets from 0
// (or at the offsets given by at, when not nil).
func logOf(ids []msgID, at []int64) []stored {
	var out []stored
	for i, id := range ids {
		off := int64(i)
		if at != nil {
			off = at[i]
		}
		out = append(out, stored{offset: off, value: encodeValue(id)})
	}
	return out
}

func kindsOf(vs []violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.kind)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// The checker tells each broken promise apart, and accepts what the
// producers were not promised: a failed or unanswered send stored once, or
// not at all.
func TestCheckerReportsEachViolation(t *testing.T) {
	a := func(seq int) msgID { return msgID{"n1", seq} }
	tests := []struct {
		name  string
		log   []stored
		acked []int64 // offset acknowledged per sequence, -1: failed, -2: unanswered
		want  []string
	}{
		{"every acknowledged message once, in order: nothing", logOf([]msgID{a(0), a(1), a(2)}, nil), []int64{0, 1, 2}, nil},
		{"a failed send stored once, an unanswered one absent: nothing", logOf([]msgID{a(0), a(1)}, nil), []int64{0, -1, -2}, nil},
		{"an acknowledged message missing: lost", logOf([]msgID{a(0), a(2)}, nil), []int64{0, 1, 1}, []string{"lost"}},
		{"a failed send stored twice: duplicate", logOf([]msgID{a(0), a(1), a(1)}, nil), []int64{0, -1}, []string{"duplicate", "order"}},
		{"offset 1 missing: gap", logOf([]msgID{a(0), a(1)}, []int64{0, 2}), []int64{0, 2}, []string{"gap"}},
		{"a producer's messages swapped: order", logOf([]msgID{a(1), a(0)}, nil), []int64{1, 0}, []string{"order"}},
		{"stored elsewhere than acknowledged: misplaced", logOf([]msgID{a(0), a(1)}, nil), []int64{1, 0}, []string{"misplaced"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory()
			h.addProducer("n1", nativeTopic)
			for seq, off := range tt.acked {
				h.sent("n1", seq)
				switch off {
				case -1:
					h.failed("n1", seq, errors.New("boom"))
				case -2:
				default:
					h.acked("n1", seq, 0, off)
				}
			}
			_, vs := analyze(nativeTopic, partitionLog{0: tt.log}, h)
			if got := kindsOf(vs); !slices.Equal(got, tt.want) {
				t.Errorf("violations %v, want kinds %v: %v", got, tt.want, vs)
			}
		})
	}
}

// A stall is the longest a partition went without an acknowledgement from
// the fault on, up to the next fault: a gap still open then is clipped
// and marked open.
func TestStallIsTheLongestGapFromTheFault(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	k1, k2 := partKey{nativeTopic, 0}, partKey{nativeTopic, 1}
	f := &fault{start: t0.Add(950 * time.Millisecond)}
	tests := []struct {
		name   string
		k1, k2 []time.Time
		end    int // ms: the next fault
		want   stall
	}{
		{"the longest gap between acks after the fault", at(0, 900, 1000, 4000, 4100), at(0, 950, 2500), 5000,
			stall{d: 3 * time.Second, partition: k1}},
		{"the fault to the first ack", at(0, 900, 1000, 2000, 3000, 4000, 5000), at(0, 900, 2500, 3500, 4500, 5500), 5000,
			stall{d: 1550 * time.Millisecond, partition: k2}},
		{"a gap open at the next fault is clipped there", at(0, 900, 1000, 2000, 3000, 4000, 5000), at(0, 900, 1000, 2000, 9000), 5000,
			stall{d: 3 * time.Second, partition: k2, open: true}},
		{"no ack after the fault at all", at(0, 900, 1000, 1100), at(0, 900), 10000,
			stall{d: 9050 * time.Millisecond, partition: k2, open: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory()
			h.mu.ackTimes[k1], h.mu.ackTimes[k2] = tt.k1, tt.k2
			if got := stallOf(h, f, t0.Add(time.Duration(tt.end)*time.Millisecond)); got != tt.want {
				t.Errorf("stall %+v, want %+v", got, tt.want)
			}
		})
	}
}
