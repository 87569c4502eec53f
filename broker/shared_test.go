package broker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func subscribeShared(t *testing.T, b *Broker, n TopicName, sub string) *Consumer {
	t.Helper()
	return subscribe(t, b, SubscribeOptions{Topic: n, Subscription: sub, Initial: Earliest, Type: Shared})
}

// Two consumers of a Shared subscription split the messages: each message
// goes to exactly one of them, and acknowledging all of them moves the
// cursor to the end.
func TestSharedConsumersSplitTheMessages(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "work", 1)
	if _, err := b.Publish(ctx, n, 0, values("m", 0, 200)); err != nil {
		t.Fatal(err)
	}
	cs := []*Consumer{subscribeShared(t, b, n, "w"), subscribeShared(t, b, n, "w")}
	var mu sync.Mutex
	got := map[int64]int{} // offset -> consumer
	// Each is handed a share of its own while the other holds what it got.
	for i, c := range cs {
		ds := receive(t, c, 7)
		for _, d := range ds {
			if prev, dup := got[d.Offset]; dup {
				t.Fatalf("offset %d delivered to consumer %d and %d", d.Offset, prev, i)
			}
			got[d.Offset] = i
		}
	}
	for _, c := range cs {
		var offs []int64
		for off, i := range got {
			if cs[i] == c {
				offs = append(offs, off)
			}
		}
		c.Ack(offs)
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for {
				mu.Lock()
				done := len(got) == 200
				mu.Unlock()
				if done {
					return
				}
				c.Flow(7)
				dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				ds, err := c.Next(dctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				var offs []int64
				mu.Lock()
				for _, d := range ds {
					if prev, dup := got[d.Offset]; dup {
						t.Errorf("offset %d delivered to consumer %d and %d", d.Offset, prev, i)
					}
					got[d.Offset] = i
					offs = append(offs, d.Offset)
				}
				mu.Unlock()
				c.Ack(offs)
			}
		})
	}
	wg.Wait()
	if next := backlogOf(t, b, n, "w"); next != 0 {
		t.Fatalf("backlog after acknowledging everything: %d", next)
	}
}

func backlogOf(t *testing.T, b *Broker, n TopicName, sub string) int64 {
	t.Helper()
	st, err := b.TopicStats(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range st.Subscriptions {
		if s.Name == sub {
			total += s.Backlog
		}
	}
	return total
}

// Messages a consumer held unacknowledged when it closed, and messages
// negatively acknowledged, are delivered again to a consumer still
// attached.
func TestSharedRedeliversOnCloseAndNack(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "redeliver", 1)
	if _, err := b.Publish(ctx, n, 0, values("m", 0, 10)); err != nil {
		t.Fatal(err)
	}
	a, c := subscribeShared(t, b, n, "s"), subscribeShared(t, b, n, "s")
	held := receive(t, a, 4) // offsets 0-3, never acknowledged
	if held[0].Offset != 0 || held[3].Offset != 3 {
		t.Fatalf("a got %v", offsetsOf(held))
	}
	a.Close()
	rest := receive(t, c, 10)
	if want := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(offsetsOf(rest), want) {
		t.Fatalf("after a closed, c got %v, want %v (a's first)", offsetsOf(rest), want)
	}
	c.Ack([]int64{0, 1, 2, 3, 4, 5, 6, 8, 9})
	if err := c.Nack([]int64{7}); err != nil {
		t.Fatal(err)
	}
	if again := receive(t, c, 1); again[0].Offset != 7 || string(again[0].Record.Value) != "m-7" {
		t.Fatalf("after the nack: %v", offsetsOf(again))
	}
	c.Ack([]int64{7})
	if bl := backlogOf(t, b, n, "s"); bl != 0 {
		t.Fatalf("backlog %d after acknowledging everything", bl)
	}
}

// An Exclusive consumer is refused while Shared consumers are attached,
// and the reverse, and likewise for other types; cumulative acks need an
// ordered type.
func TestSubscriptionTypesDoNotMix(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "types", 1)
	subscribeShared(t, b, n, "s")
	if _, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "s"}); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("exclusive on a shared subscription: %v, want ErrConsumerBusy", err)
	}
	ex, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if _, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "x", Type: Shared}); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("shared on an exclusive subscription: %v, want ErrConsumerBusy", err)
	}
	fo, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "f", Type: Failover})
	if err != nil {
		t.Fatal(err)
	}
	defer fo.Close()
	if _, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "f", Type: KeyShared}); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("key_shared on a failover subscription: %v, want ErrConsumerBusy", err)
	}
	sh, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "s", Type: Shared})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	if err := sh.AckCumulative(0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("cumulative ack on shared: %v, want ErrInvalidArgument", err)
	}
}

func offsetsOf(ds []Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Offset
	}
	return out
}
