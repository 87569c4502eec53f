package broker

import (
	"container/heap"
	"strconv"
	"time"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// DeliverAtHeader is the record header holding a message's delayed-delivery
// time: milliseconds since the Unix epoch, in decimal. Shared and
// Key_Shared subscriptions hand the message out no earlier than that.
const DeliverAtHeader = "magnetar.deliver-at"

// DeliverAt returns the delayed-delivery time of r in Unix milliseconds, or
// 0 if it has none (or an unreadable one: it is then delivered at once).
func DeliverAt(r record.Record) int64 {
	for _, h := range r.Headers {
		if h.Key == DeliverAtHeader {
			at, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return 0
			}
			return at
		}
	}
	return 0
}

type timerKind uint8

const (
	// timerReplay hands a nacked message out again once its delay is over.
	timerReplay timerKind = iota
	// timerDelayed hands a delayed-delivery message out at its time.
	timerDelayed
	// timerAckTimeout hands a message out again if the delivery seq is
	// still pending.
	timerAckTimeout
)

// timer is one scheduled dispatcher event.
type timer struct {
	at   time.Time
	kind timerKind
	off  int64
	hash uint32
	seq  uint64
}

// timerHeap is a min-heap of timers by time.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func (h *timerHeap) push(t timer) { heap.Push(h, t) }

// next returns the time of the earliest timer, zero if none.
func (h timerHeap) next() time.Time {
	if len(h) == 0 {
		return time.Time{}
	}
	return h[0].at
}

// fireTimersLocked runs the timers due at now: nacked and delayed messages
// join the replay list; a message still pending under the delivery its ack
// timeout was set for is taken back, counted as redelivered, and replayed.
func (s *subscription) fireTimersLocked(d *dispatcher, now time.Time) {
	var back []replayEntry
	for len(d.timers) > 0 && !d.timers[0].at.After(now) {
		t := heap.Pop(&d.timers).(timer)
		switch t.kind {
		case timerReplay:
			back = append(back, replayEntry{t.off, t.hash})
		case timerDelayed:
			d.delayed--
			back = append(back, replayEntry{t.off, t.hash})
		case timerAckTimeout:
			pm, ok := d.pending[t.off]
			if !ok || pm.seq != t.seq {
				continue // acknowledged, or handed out again since
			}
			d.releaseLocked(t.off, pm)
			s.countRedeliveryLocked(t.off)
			back = append(back, replayEntry{t.off, pm.hash})
		}
	}
	d.addReplayLocked(back...)
}
