package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/record"
)

func subscribe(t *testing.T, b *Broker, opts SubscribeOptions) *Consumer {
	t.Helper()
	c, err := b.Subscribe(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// nothingWithin checks that c is handed nothing for a while: a safety
// check (it can only fail if something is delivered).
func nothingWithin(t *testing.T, c *Consumer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), d)
	defer cancel()
	if ds, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected nothing, got %v (err %v)", offsetsOf(ds), err)
	}
}

// Failover: only the active consumer receives. When it leaves, the other
// gets what it left unacknowledged, in order, then the rest.
func TestFailoverHandsOverInOrder(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "failover", 1)
	if _, err := b.Publish(ctx, n, 0, values("m", 0, 10)); err != nil {
		t.Fatal(err)
	}
	opts := SubscribeOptions{Topic: n, Subscription: "f", Type: Failover, Initial: Earliest}
	// Partition 0 goes to the first consumer by name.
	opts.ConsumerName = "a"
	a, err := b.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.ConsumerName = "b"
	standby := subscribe(t, b, opts)
	standby.Flow(100)

	got := receive(t, a, 6)
	if !slices.Equal(offsetsOf(got), []int64{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("active consumer got %v", offsetsOf(got))
	}
	nothingWithin(t, standby, 100*time.Millisecond)
	a.Ack([]int64{0, 1, 2})
	a.Close() // 3, 4, 5 were not acknowledged

	var rest []Delivery
	for len(rest) < 7 {
		ds, err := standby.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, ds...)
	}
	if !slices.Equal(offsetsOf(rest), []int64{3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("after the fail-over the standby got %v, want 3..9 in order", offsetsOf(rest))
	}
}

// A partitioned topic's partitions spread over Failover consumers.
func TestFailoverSpreadsPartitions(t *testing.T) {
	b := newBroker(t, newStores(t))
	n := topic(t, b, "failover-spread", 2)
	active := map[int32]string{}
	for part := range int32(2) {
		for _, name := range []string{"x", "y"} {
			c := subscribe(t, b, SubscribeOptions{Topic: n, Partition: part, Subscription: "f", Type: Failover, ConsumerName: name})
			c.sub.mu.Lock()
			if c.sub.mu.disp.active == c {
				active[part] = name
			}
			c.sub.mu.Unlock()
		}
	}
	if active[0] != "x" || active[1] != "y" {
		t.Fatalf("active consumers by partition: %v, want 0:x 1:y", active)
	}
}

func keyed(n int, keys int) []record.Record {
	rs := make([]record.Record, n)
	for i := range rs {
		rs[i] = record.Record{Key: []byte("k" + strconv.Itoa(i%keys)), Value: []byte(strconv.Itoa(i)), Timestamp: 1}
	}
	return rs
}

// Key_Shared keeps every key's order while a consumer joins and another
// leaves: a key never goes to a new consumer while an earlier message of
// it is unacknowledged elsewhere, and the messages a leaving consumer held
// come before the later ones of their keys.
func TestKeySharedKeepsKeyOrderAcrossJoinAndLeave(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "keyshared", 1)
	const total, keys = 300, 12
	if _, err := b.Publish(ctx, n, 0, keyed(total, keys)); err != nil {
		t.Fatal(err)
	}
	opts := SubscribeOptions{Topic: n, Subscription: "ks", Type: KeyShared, Initial: Earliest}
	a, err := b.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	heldByA := receive(t, a, 40) // every key is now held by a

	bc := subscribe(t, b, opts)
	bc.Flow(1000)
	// b owns some keys now, but each of them is held by a: b must wait.
	nothingWithin(t, bc, 100*time.Millisecond)

	processed := map[string][]int64{} // key -> offsets in the order they were acknowledged
	process := func(c *Consumer, ds []Delivery) {
		for _, d := range ds {
			k := string(d.Record.Key)
			processed[k] = append(processed[k], d.Offset)
		}
		c.Ack(offsetsOf(ds))
	}
	process(a, heldByA[:20])
	// a leaves holding 20..39: they are handed out again before the later
	// messages of their keys.
	a.Close()

	cc := subscribe(t, b, opts) // a third consumer joins
	cc.Flow(1000)
	done := 20
	for done < total {
		progressed := false
		for _, c := range []*Consumer{bc, cc} {
			nctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			ds, err := c.Next(nctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			process(c, ds)
			done += len(ds)
			progressed = true
		}
		if !progressed && ctx.Err() != nil {
			t.Fatalf("stuck after %d of %d messages", done, total)
		}
	}
	seen := 0
	for k, offs := range processed {
		if !slices.IsSorted(offs) {
			t.Errorf("key %s processed out of order: %v", k, offs)
		}
		if len(slices.Compact(slices.Clone(offs))) != len(offs) {
			t.Errorf("key %s processed a message twice: %v", k, offs)
		}
		seen += len(offs)
	}
	if seen != total {
		t.Fatalf("processed %d messages, want %d", seen, total)
	}
}

// A nacked message comes back after the consumer's nack delay with its
// redelivery count raised; one neither acked nor nacked comes back after
// the ack timeout.
func TestNackDelayAndAckTimeoutRedeliver(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "redeliver", 1)
	if _, err := b.Publish(ctx, n, 0, values("m", 0, 2)); err != nil {
		t.Fatal(err)
	}
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "r", Type: Shared, Initial: Earliest,
		NackDelay: 150 * time.Millisecond, AckTimeout: 300 * time.Millisecond})
	first := receive(t, c, 2)
	if first[0].RedeliveryCount != 0 || first[1].RedeliveryCount != 0 {
		t.Fatalf("first deliveries count %d, %d redeliveries", first[0].RedeliveryCount, first[1].RedeliveryCount)
	}
	nacked := time.Now()
	if err := c.Nack([]int64{0}); err != nil {
		t.Fatal(err)
	}
	// Offset 1 is left alone: its ack timeout hands it out again.
	again := receive(t, c, 1)
	if again[0].Offset != 0 || again[0].RedeliveryCount != 1 {
		t.Fatalf("after the nack got offset %d with count %d, want 0 with 1", again[0].Offset, again[0].RedeliveryCount)
	}
	if waited := time.Since(nacked); waited < 150*time.Millisecond {
		t.Fatalf("nacked message came back after %v, before its 150ms delay", waited)
	}
	c.Ack([]int64{0})
	timedOut := receive(t, c, 1)
	if timedOut[0].Offset != 1 || timedOut[0].RedeliveryCount != 1 {
		t.Fatalf("after the ack timeout got offset %d with count %d, want 1 with 1", timedOut[0].Offset, timedOut[0].RedeliveryCount)
	}
}

// The nack delay doubles with each redelivery up to the maximum.
func TestNackBackoff(t *testing.T) {
	c := &Consumer{opts: SubscribeOptions{NackDelay: 100 * time.Millisecond, NackMaxDelay: time.Second}}
	var got []time.Duration
	for n := uint32(1); n <= 6; n++ {
		got = append(got, c.nackDelay(n))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
}

// Redelivery counts outlive the consumer: a consumer that nacks and
// reconnects sees the count keep rising.
func TestRedeliveryCountSurvivesReconnect(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "poison", 1)
	if _, err := b.Publish(ctx, n, 0, values("m", 0, 1)); err != nil {
		t.Fatal(err)
	}
	opts := SubscribeOptions{Topic: n, Subscription: "p", Initial: Earliest}
	for want := uint32(0); want < 3; want++ {
		c, err := b.Subscribe(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		d := receive(t, c, 1)[0]
		if d.RedeliveryCount != want {
			t.Fatalf("delivery %d has count %d", want, d.RedeliveryCount)
		}
		if err := c.Nack([]int64{d.Offset}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

func delayedRecord(value string, at time.Time) record.Record {
	return record.Record{Value: []byte(value), Timestamp: time.Now().UnixMilli(),
		Headers: []record.Header{{Key: DeliverAtHeader, Value: strconv.AppendInt(nil, at.UnixMilli(), 10)}}}
}

// Delayed messages are handed out no earlier than their time, while the
// others flow at once; they survive a broker restart, as they are just
// unacknowledged messages in the log.
func TestDelayedDeliverySurvivesRestart(t *testing.T) {
	st := newStores(t)
	b := newBroker(t, st)
	ctx := ctxT(t)
	n := topic(t, b, "delayed", 1)
	at := time.UnixMilli(time.Now().Add(700 * time.Millisecond).UnixMilli()) // the header's precision
	recs := []record.Record{delayedRecord("later-0", at), {Value: []byte("now"), Timestamp: 1}, delayedRecord("later-1", at)}
	if _, err := b.Publish(ctx, n, 0, recs); err != nil {
		t.Fatal(err)
	}
	opts := SubscribeOptions{Topic: n, Subscription: "d", Type: Shared, Initial: Earliest}
	c, err := b.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := receive(t, c, 1)
	if string(now[0].Record.Value) != "now" {
		t.Fatalf("first delivery %q, want the undelayed message", now[0].Record.Value)
	}
	c.Ack([]int64{now[0].Offset})
	c.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := newBroker(t, st)
	c2 := subscribe(t, b2, opts)
	later := receive(t, c2, 2)
	if time.Now().Before(at) {
		t.Fatalf("delayed messages delivered before their time")
	}
	if got := []string{string(later[0].Record.Value), string(later[1].Record.Value)}; !slices.Equal(got, []string{"later-0", "later-1"}) {
		t.Fatalf("after the restart got %v", got)
	}
}

// Exclusive and Failover subscriptions ignore delivery times: they deliver
// in order.
func TestExclusiveIgnoresDeliveryTime(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "delayed-ex", 1)
	if _, err := b.Publish(ctx, n, 0, []record.Record{delayedRecord("x", time.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "e", Initial: Earliest})
	if got := receive(t, c, 1); string(got[0].Record.Value) != "x" {
		t.Fatalf("got %q", got[0].Record.Value)
	}
}

// A cumulative ack acknowledges everything up to the offset; on a Shared
// subscription it is refused.
func TestCumulativeAck(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "cumulative", 1)
	if _, err := b.Publish(ctx, n, 0, values("m", 0, 10)); err != nil {
		t.Fatal(err)
	}
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "c", Initial: Earliest})
	receive(t, c, 10)
	c.Ack([]int64{8})
	if err := c.AckCumulative(6); err != nil {
		t.Fatal(err)
	}
	if bl := backlogOf(t, b, n, "c"); bl != 2 {
		t.Fatalf("backlog %d after acking 0..6 and 8, want 2 (7 and 9)", bl)
	}
}

// Seeking moves the cursor both ways and ends the consumers with
// ErrSubscriptionReset; a new consumer starts at the target.
func TestSeekByOffsetAndTime(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "seek", 1)
	recs := values("m", 0, 10)
	for i := range recs {
		recs[i].Timestamp = int64(1000 + i*10)
	}
	if _, err := b.Publish(ctx, n, 0, recs); err != nil {
		t.Fatal(err)
	}
	opts := SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest}
	c, err := b.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ds := receive(t, c, 10)
	c.Ack(offsetsOf(ds))
	if off, err := c.Seek(ctx, Position{Offset: 4}); err != nil || off != 4 {
		t.Fatalf("seek: %d, %v", off, err)
	}
	c.Flow(1)
	if _, err := c.Next(ctx); !errors.Is(err, ErrSubscriptionReset) {
		t.Fatalf("Next after a seek: %v, want ErrSubscriptionReset", err)
	}
	c2 := subscribe(t, b, opts)
	if got := receive(t, c2, 6); got[0].Offset != 4 {
		t.Fatalf("after seeking to 4 the first delivery is %d", got[0].Offset)
	}
	c2.Close()
	// By time: offset 7 is the first at or after 1065.
	off, err := b.ResetSubscription(ctx, n, 0, "s", Position{Time: time.UnixMilli(1065)})
	if err != nil || off != 7 {
		t.Fatalf("reset by time: %d, %v; want 7", off, err)
	}
	c3 := subscribe(t, b, opts)
	if got := receive(t, c3, 3); got[0].Offset != 7 {
		t.Fatalf("after reset by time the first delivery is %d", got[0].Offset)
	}
	if _, err := b.ResetSubscription(ctx, n, 0, "missing", Position{}); !errors.Is(err, ErrSubscriptionNotFound) {
		t.Fatalf("reset of a missing subscription: %v", err)
	}
}

// Skip acknowledges the next n unacknowledged messages; expire those
// published before a time.
func TestSkipAndExpire(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "skip", 1)
	recs := values("m", 0, 10)
	for i := range recs {
		recs[i].Timestamp = int64(1000 + i*10)
	}
	if _, err := b.Publish(ctx, n, 0, recs); err != nil {
		t.Fatal(err)
	}
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	receive(t, c, 10)
	c.Ack([]int64{1, 2})
	c.Close()
	// Unacknowledged: 0, 3, 4, ... Skipping 2 acknowledges 0 and 3.
	if next, err := b.SkipMessages(ctx, n, 0, "s", 2); err != nil || next != 4 {
		t.Fatalf("skip 2: next %d, %v; want 4", next, err)
	}
	if next, err := b.ExpireMessages(ctx, n, 0, "s", time.UnixMilli(1075)); err != nil || next != 8 {
		t.Fatalf("expire before 1075: next %d, %v; want 8", next, err)
	}
	// Expiring never moves the cursor back.
	if next, err := b.ExpireMessages(ctx, n, 0, "s", time.UnixMilli(1000)); err != nil || next != 8 {
		t.Fatalf("expire before 1000: next %d, %v; want 8", next, err)
	}
}

// A non-durable subscription (a Reader) starts where asked, keeps no
// cursor in the metadata store and vanishes with its consumer.
func TestNonDurableSubscription(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "reader", 1)
	if _, err := b.Publish(ctx, n, 0, values("m", 0, 10)); err != nil {
		t.Fatal(err)
	}
	r, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "reader-1", NonDurable: true, Start: &Position{Offset: 6}})
	if err != nil {
		t.Fatal(err)
	}
	if got := receive(t, r, 4); got[0].Offset != 6 {
		t.Fatalf("reader from 6 got %d first", got[0].Offset)
	}
	r.Close()
	if _, ok, err := b.CommittedOffset(ctx, n, 0, "reader-1"); err != nil || ok {
		t.Fatalf("a reader left a cursor behind: %v %v", ok, err)
	}
	if s := b.loadedSubscription(n, 0, "reader-1"); s != nil {
		t.Fatal("the reader's subscription is still loaded after it closed")
	}
	if _, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "durable"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ctx, SubscribeOptions{Topic: n, Subscription: "durable", NonDurable: true}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("non-durable over a durable subscription: %v", err)
	}
}

func TestSubscriptionTypeNames(t *testing.T) {
	for typ, want := range map[SubscriptionType]string{Exclusive: "Exclusive", Shared: "Shared", Failover: "Failover", KeyShared: "Key_Shared", 9: "SubscriptionType(9)"} {
		if got := fmt.Sprint(typ); got != want {
			t.Errorf("%d: %q, want %q", int(typ), got, want)
		}
	}
}
