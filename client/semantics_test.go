package client_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func subscribeT(t *testing.T, c *client.Client, opts client.ConsumerOptions) *client.Consumer {
	t.Helper()
	cons, err := c.Subscribe(ctxFor(t, 10*time.Second), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Close() })
	return cons
}

func produceT(t *testing.T, c *client.Client, topic string, msgs ...*client.Message) {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, m := range msgs {
		if _, err := p.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// Key_Shared through the client: three consumers (one joins late, one
// leaves midway with messages unacknowledged) process a keyed stream, and
// every key's messages are processed exactly once and in order.
func TestKeySharedOrderWhileConsumersJoinAndLeave(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 60*time.Second)
	const total, keys = 600, 20
	msgs := make([]*client.Message, total)
	for i := range msgs {
		msgs[i] = &client.Message{Key: []byte("key-" + strconv.Itoa(i%keys)), Value: []byte(strconv.Itoa(i))}
	}
	produceT(t, c, "ks-order", msgs...)
	opts := client.ConsumerOptions{Topic: "ks-order", Subscription: "ks", Type: client.KeyShared,
		InitialPosition: client.Earliest, ReceiverQueueSize: 20}

	var mu sync.Mutex
	processed := map[string][]int{}
	count := 0
	work := func(cons *client.Consumer, stopAfter int) {
		for n := 0; stopAfter < 0 || n < stopAfter; n++ {
			rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			m, err := cons.Receive(rctx)
			cancel()
			mu.Lock()
			finished := count == total
			mu.Unlock()
			if finished {
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			if err != nil {
				t.Error(err)
				return
			}
			v, _ := strconv.Atoi(string(m.Value))
			mu.Lock()
			processed[string(m.Key)] = append(processed[string(m.Key)], v)
			count++
			mu.Unlock()
			if err := cons.Ack(m); err != nil {
				t.Error(err)
				return
			}
		}
	}
	a, err := c.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := subscribeT(t, c, opts)
	var wg sync.WaitGroup
	wg.Go(func() {
		work(a, 100)
		a.Close() // leaves with up to 20 buffered, unacknowledged messages
	})
	wg.Go(func() { work(b, -1) })
	late := subscribeT(t, c, opts)
	wg.Go(func() { work(late, -1) })
	wg.Wait()

	if count != total {
		t.Fatalf("processed %d of %d messages", count, total)
	}
	for k, vs := range processed {
		if !slices.IsSorted(vs) || len(slices.Compact(slices.Clone(vs))) != len(vs) {
			t.Errorf("key %s processed as %v: not once each in order", k, vs)
		}
	}
}

// A message nacked past the dead-letter policy's limit lands in the
// dead-letter topic with its key, value and properties plus its origin,
// and is acknowledged on the subscription.
func TestNackedPastTheLimitGoesToTheDeadLetterTopic(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	produceT(t, c, "orders", &client.Message{Key: []byte("o-1"), Value: []byte("poison"), Properties: map[string]string{"kind": "order"}},
		&client.Message{Value: []byte("fine")})
	cons := subscribeT(t, c, client.ConsumerOptions{Topic: "orders", Subscription: "billing", Type: client.Shared,
		InitialPosition: client.Earliest, DeadLetter: &client.DeadLetterPolicy{MaxRedeliveries: 2}})
	dlq := subscribeT(t, c, client.ConsumerOptions{Topic: "orders-billing-DLQ", Subscription: "ops", InitialPosition: client.Earliest})

	deliveries := 0
	for {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Value) == "fine" {
			if err := cons.Ack(m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if m.RedeliveryCount != uint32(deliveries) {
			t.Fatalf("delivery %d of the poison message has redelivery count %d", deliveries, m.RedeliveryCount)
		}
		deliveries++
		if err := cons.Nack(m); err != nil {
			t.Fatal(err)
		}
		if deliveries == 3 {
			break
		}
	}
	dead, err := dlq.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(dead.Key) != "o-1" || string(dead.Value) != "poison" || dead.Properties["kind"] != "order" {
		t.Fatalf("dead letter %q=%q %v lost its key, value or properties", dead.Key, dead.Value, dead.Properties)
	}
	if dead.Properties[client.PropertyOriginTopic] != "public/default/orders" ||
		dead.Properties[client.PropertyOriginSubscription] != "billing" || dead.Properties[client.PropertyOriginMessageID] != "0:0" {
		t.Fatalf("dead letter origin properties %v", dead.Properties)
	}
	// It never reaches the application again: received at most
	// MaxRedeliveries+1 times.
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if m, err := cons.Receive(rctx); err == nil {
		t.Fatalf("received %q after it went to the dead-letter topic", m.Value)
	}
}

// Delayed messages survive a broker restart and arrive no earlier than
// asked; undelayed ones flow at once.
func TestDelayedMessagesSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	srv, c := startStandalone(t, dir)
	ctx := ctxFor(t, 30*time.Second)
	at := time.UnixMilli(time.Now().Add(1500 * time.Millisecond).UnixMilli())
	produceT(t, c, "reminders", &client.Message{Value: []byte("later"), DeliverAt: at}, &client.Message{Value: []byte("now")})
	opts := client.ConsumerOptions{Topic: "reminders", Subscription: "s", Type: client.Shared, InitialPosition: client.Earliest}
	cons := subscribeT(t, c, opts)
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Value) != "now" {
		t.Fatalf("first message %q, want the undelayed one", m.Value)
	}
	if err := cons.Ack(m); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	c.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv, c = startStandalone(t, dir)
	defer srv.Close()
	defer c.Close()
	cons = subscribeT(t, c, opts)
	m, err = cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Value) != "later" || time.Now().Before(at) {
		t.Fatalf("got %q at %v, want \"later\" no earlier than %v", m.Value, time.Now(), at)
	}
	if !m.DeliverAt.Equal(at) {
		t.Fatalf("DeliverAt %v, want %v", m.DeliverAt, at)
	}
}

// Failover through the client: the standby takes over, in order, from the
// first message the active consumer did not acknowledge.
func TestFailoverConsumerTakesOver(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	msgs := make([]*client.Message, 10)
	for i := range msgs {
		msgs[i] = &client.Message{Value: []byte(strconv.Itoa(i))}
	}
	produceT(t, c, "fo", msgs...)
	opts := client.ConsumerOptions{Topic: "fo", Subscription: "f", Type: client.Failover, InitialPosition: client.Earliest, ReceiverQueueSize: 5}
	opts.Name = "a"
	a, err := c.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Name = "b"
	b := subscribeT(t, c, opts)
	for i := range 4 {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("active got %q, want %d", m.Value, i)
		}
		if i == 3 {
			if err := a.AckCumulative(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.Close()
	for i := 4; i < 10; i++ {
		m, err := b.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("standby got %q, want %d", m.Value, i)
		}
		b.Ack(m)
	}
}

// A Reader reads from an offset or a time without a subscription, and can
// seek.
func TestReaderFromOffsetAndTime(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	msgs := make([]*client.Message, 10)
	for i := range msgs {
		msgs[i] = &client.Message{Value: []byte(strconv.Itoa(i)), EventTime: time.UnixMilli(int64(1_000_000 + i*1000))}
	}
	produceT(t, c, "history", msgs...)
	next := func(r *client.Reader) string {
		t.Helper()
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(m.Value)
	}
	r, err := c.CreateReader(ctx, client.ReaderOptions{Topic: "history", StartAtOffset: true, StartOffset: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := next(r); got != "7" {
		t.Fatalf("reader from offset 7 read %s", got)
	}
	byTime, err := c.CreateReader(ctx, client.ReaderOptions{Topic: "history", StartTime: time.UnixMilli(1_004_500)})
	if err != nil {
		t.Fatal(err)
	}
	defer byTime.Close()
	if got := next(byTime); got != "5" {
		t.Fatalf("reader from time read %s, want 5", got)
	}
	if err := byTime.SeekID(ctx, client.MessageID{Offset: 2}); err != nil {
		t.Fatal(err)
	}
	if got := next(byTime); got != "2" {
		t.Fatalf("after seeking to 2 read %s", got)
	}
	if got := next(byTime); got != "3" {
		t.Fatalf("after 2 read %s", got)
	}
}

// Seeking a consumer back redelivers acknowledged messages; forward skips.
func TestConsumerSeek(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	msgs := make([]*client.Message, 5)
	for i := range msgs {
		msgs[i] = &client.Message{Value: []byte(strconv.Itoa(i))}
	}
	produceT(t, c, "seekme", msgs...)
	cons := subscribeT(t, c, client.ConsumerOptions{Topic: "seekme", Subscription: "s", InitialPosition: client.Earliest})
	for range 5 {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cons.Ack(m)
	}
	if err := cons.SeekID(ctx, client.MessageID{Offset: 1}); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Value) != "1" {
		t.Fatalf("after seeking back to 1 got %s", m.Value)
	}
}

// Ack timeout through the client: a message received and neither acked
// nor nacked comes back with its redelivery count raised.
func TestAckTimeoutRedelivers(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	produceT(t, c, "slow", &client.Message{Value: []byte("x")})
	cons := subscribeT(t, c, client.ConsumerOptions{Topic: "slow", Subscription: "s", Type: client.Shared,
		InitialPosition: client.Earliest, AckTimeout: 200 * time.Millisecond})
	for want := uint32(0); want < 2; want++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.RedeliveryCount != want {
			t.Fatalf("delivery with count %d, want %d", m.RedeliveryCount, want)
		}
	}
}

// An exclusive producer keeps others out: a second exclusive or shared
// producer is refused at creation, and one waiting for exclusive access
// gets it once the first closes.
func TestExclusiveProducer(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	first, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "single-writer", AccessMode: client.ExclusiveAccess})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Send(ctx, &client.Message{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "single-writer", AccessMode: client.ExclusiveAccess}); err == nil {
		p.Close()
		t.Fatal("a second exclusive producer was accepted")
	}
	waiting := make(chan error, 1)
	go func() {
		p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "single-writer", AccessMode: client.WaitForExclusiveAccess})
		if err == nil {
			_, err = p.Send(ctx, &client.Message{Value: []byte("b")})
			p.Close()
		}
		waiting <- err
	}()
	select {
	case err := <-waiting:
		t.Fatalf("waiting producer finished (%v) while the exclusive one is open", err)
	case <-time.After(100 * time.Millisecond):
	}
	first.Close()
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
}

// ReconsumeLater: a message comes back through the retry topic, no earlier
// than asked, with its key, value and properties and a count of retries;
// past MaxRetries it goes to the dead-letter topic. Each copy
// acknowledges the message it replaces, so nothing is left behind.
func TestReconsumeLaterGoesThroughTheRetryTopicThenTheDeadLetterTopic(t *testing.T) {
	c := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	produceT(t, c, "jobs", &client.Message{Key: []byte("j-1"), Value: []byte("flaky"), Properties: map[string]string{"kind": "job"}},
		&client.Message{Value: []byte("fine")})
	opts := client.ConsumerOptions{Topic: "jobs", Subscription: "workers", InitialPosition: client.Earliest,
		Retry: &client.RetryPolicy{MaxRetries: 2}}
	cons := subscribeT(t, c, opts)
	dlq := subscribeT(t, c, client.ConsumerOptions{Topic: "jobs-workers-DLQ", Subscription: "ops", InitialPosition: client.Earliest})

	delays := []time.Duration{400 * time.Millisecond, 200 * time.Millisecond, 0}
	var due time.Time
	for retry := 0; retry < len(delays); {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Value) == "fine" {
			if err := cons.Ack(m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if now := time.Now(); now.Before(due) {
			t.Fatalf("retry %d arrived %v early", retry, due.Sub(now))
		}
		if string(m.Key) != "j-1" || m.Properties["kind"] != "job" {
			t.Fatalf("retry %d lost its key or properties: %q %v", retry, m.Key, m.Properties)
		}
		if retry > 0 && (m.Properties[client.PropertyReconsumeTimes] != strconv.Itoa(retry) ||
			m.Properties[client.PropertyOriginTopic] != "public/default/jobs" || m.Properties[client.PropertyOriginMessageID] != "0:0") {
			t.Fatalf("retry %d properties %v", retry, m.Properties)
		}
		due = time.Now().Add(delays[retry])
		if err := cons.ReconsumeLater(ctx, m, delays[retry]); err != nil {
			t.Fatal(err)
		}
		retry++
	}
	dead, err := dlq.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(dead.Value) != "flaky" || dead.Properties[client.PropertyReconsumeTimes] != "3" ||
		dead.Properties[client.PropertyOriginTopic] != "public/default/jobs" || dead.Properties[client.PropertyOriginSubscription] != "workers" {
		t.Fatalf("dead letter %q %v", dead.Value, dead.Properties)
	}
	// Every copy acknowledged the one before: a new consumer of the
	// subscription gets nothing from either topic.
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	again := subscribeT(t, c, opts)
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := again.Receive(rctx); err == nil {
		t.Fatalf("received %q (%v) again after it was reconsumed", m.Value, m.Properties)
	}
}
