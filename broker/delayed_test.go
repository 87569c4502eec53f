package broker

import (
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// With an index far smaller than the number of delayed messages, every
// message is still delivered once and no earlier than its time, and the
// index never holds more than its bound.
func TestDelayedIndexStaysBounded(t *testing.T) {
	defer func(old int) { maxDelayedIndex = old }(maxDelayedIndex)
	maxDelayedIndex = 8
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "many-delayed", 1)
	base := time.Now().Add(300 * time.Millisecond)
	const total = 120
	due := map[int64]time.Time{}
	var recs []record.Record
	for i := range total {
		// Due times spread over ~3s, out of offset order.
		at := time.UnixMilli(base.Add(time.Duration(i*37%total) * 25 * time.Millisecond).UnixMilli())
		recs = append(recs, delayedRecord("d", at))
		due[int64(i)] = at
	}
	if _, err := b.Publish(ctx, n, 0, recs); err != nil {
		t.Fatal(err)
	}
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "s", Type: Shared, Initial: Earliest})
	got := map[int64]bool{}
	for len(got) < total {
		c.Flow(10)
		ds, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d: %v", len(got), total, err)
		}
		now := time.Now()
		for _, d := range ds {
			if got[d.Offset] {
				t.Fatalf("offset %d delivered twice", d.Offset)
			}
			got[d.Offset] = true
			if now.Before(due[d.Offset]) {
				t.Fatalf("offset %d delivered %v early", d.Offset, due[d.Offset].Sub(now))
			}
		}
		c.Ack(offsetsOf(ds))
		c.sub.mu.Lock()
		if d := c.sub.mu.disp; d != nil && d.delayed > maxDelayedIndex {
			t.Errorf("delayed index holds %d entries, bound %d", d.delayed, maxDelayedIndex)
		}
		c.sub.mu.Unlock()
	}
	if bl := backlogOf(t, b, n, "s"); bl != 0 {
		t.Fatalf("backlog %d after all were acknowledged", bl)
	}
}
