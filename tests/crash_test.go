package tests

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// TestKill9KeepsEveryAcknowledgedMessageInOrder is the walking skeleton's
// promise: a producer streams 100,000 messages, the server is killed with
// SIGKILL halfway and restarted on the same data directory; the producer
// resends what had no receipt, every send succeeds, and a consumer then
// reads every message exactly once, in order, at the offset its
// acknowledgement named, with offsets continuing after the
// restart.
func TestKill9KeepsEveryAcknowledgedMessageInOrder(t *testing.T) {
	skipIfShort(t)
	const (
		total  = 100_000
		killAt = total / 2
		topic  = "crash"
	)
	dataDir := t.TempDir()
	ctx := testContext(t, 5*time.Minute)
	srv := startServer(t, dataDir)

	// seq -> offset acknowledged for it, or -1.
	ackedOffset := make([]int64, total)
	for i := range ackedOffset {
		ackedOffset[i] = -1
	}
	var mu sync.Mutex
	var acked, failed atomic.Int64
	killed := make(chan struct{})
	var killOnce sync.Once

	c, err := client.New(client.Options{Address: srv.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic, MaxPendingMessages: 5000})
	if err != nil {
		t.Fatal(err)
	}
	// Send from a goroutine: SendAsync blocks while the server is down.
	native := srv.nativeAddr
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < total; i++ {
			seq := i
			p.SendAsync(ctx, &client.Message{Value: []byte(fmt.Sprintf("m-%06d", seq))}, func(id client.MessageID, _ *client.Message, err error) {
				if err != nil {
					failed.Add(1)
					return
				}
				mu.Lock()
				ackedOffset[seq] = id.Offset
				mu.Unlock()
				if acked.Add(1) == killAt {
					killOnce.Do(func() {
						go func() {
							srv.kill()
							close(killed)
						}()
					})
				}
			})
		}
	}()
	select {
	case <-killed:
	case <-ctx.Done():
		t.Fatalf("only %d of %d messages were acknowledged; the kill never happened", acked.Load(), total)
	}
	// Restart on the same directory and address: the producer sends what
	// had no receipt again, and the rest.
	srv = startServer(t, dataDir, "--native-addr", native)
	<-sent
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	t.Logf("across the kill and restart: %d acknowledged, %d failed", acked.Load(), failed.Load())
	if acked.Load()+failed.Load() != total {
		t.Fatalf("%d acknowledged + %d failed != %d sent: some callbacks never ran", acked.Load(), failed.Load(), total)
	}
	if failed.Load() > 0 {
		t.Fatalf("%d sends failed although the server came back within the producer's retry time", failed.Load())
	}

	// Produce more: offsets continue.
	defer c.Close()
	p, err = c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var maxAcked int64 = -1
	for _, off := range ackedOffset {
		maxAcked = max(maxAcked, off)
	}
	const after = 1000
	afterOffset := make([]int64, after)
	for i := 0; i < after; i++ {
		id, err := p.Send(ctx, &client.Message{Value: []byte(fmt.Sprintf("after-%06d", i))})
		if err != nil {
			t.Fatalf("send after restart: %v", err)
		}
		if id.Offset <= maxAcked {
			t.Fatalf("offset %d after the restart does not continue after %d, the last acknowledged before it", id.Offset, maxAcked)
		}
		afterOffset[i] = id.Offset
	}
	p.Close()

	// Read everything back from the start.
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: topic, Subscription: "verify", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := make([]bool, total)
	lastOffset := int64(-1)
	lastSeq := -1
	afterSeen := 0
	for afterSeen < after {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("receive after %d post-restart messages: %v", afterSeen, err)
		}
		if m.ID.Offset <= lastOffset {
			t.Fatalf("offset %d received after %d: out of order or duplicated", m.ID.Offset, lastOffset)
		}
		lastOffset = m.ID.Offset
		v := string(m.Value)
		switch {
		case strings.HasPrefix(v, "m-"):
			if afterSeen > 0 {
				t.Fatalf("pre-crash message %q after post-restart ones", v)
			}
			seq, err := strconv.Atoi(v[2:])
			if err != nil || seq < 0 || seq >= total {
				t.Fatalf("unexpected message %q", v)
			}
			if seen[seq] {
				t.Fatalf("message %q delivered twice", v)
			}
			if seq <= lastSeq {
				t.Fatalf("message %q after m-%06d: out of order", v, lastSeq)
			}
			seen[seq], lastSeq = true, seq
			if want := ackedOffset[seq]; want >= 0 && want != m.ID.Offset {
				t.Fatalf("message %q at offset %d, but its acknowledgement said %d", v, m.ID.Offset, want)
			}
		case strings.HasPrefix(v, "after-"):
			i, _ := strconv.Atoi(v[len("after-"):])
			if i != afterSeen || m.ID.Offset != afterOffset[i] {
				t.Fatalf("post-restart message %q at offset %d; want after-%06d at %d", v, m.ID.Offset, afterSeen, afterOffset[afterSeen])
			}
			afterSeen++
		default:
			t.Fatalf("unexpected message %q", v)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	lost := 0
	for seq, off := range ackedOffset {
		if off >= 0 && !seen[seq] {
			if lost < 10 {
				t.Errorf("acknowledged message m-%06d (offset %d) was lost", seq, off)
			}
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged messages lost", lost)
	}
}

// TestGracefulShutdownKeepsAcknowledgedProgress shows that SIGTERM loses
// nothing: a consumer acknowledges half of the messages, the server is
// stopped with SIGTERM while the consumer is still attached, and after a
// restart the same subscription resumes with exactly the other half.
func TestGracefulShutdownKeepsAcknowledgedProgress(t *testing.T) {
	skipIfShort(t)
	const n = 2000
	dataDir := t.TempDir()
	ctx := testContext(t, 2*time.Minute)
	srv := startServer(t, dataDir)

	c, err := client.New(client.Options{Address: srv.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "graceful"})
	if err != nil {
		t.Fatal(err)
	}
	sendAll(ctx, t, p, n)
	p.Close()
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "graceful", Subscription: "s", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n/2; i++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(m.Value), fmt.Sprintf("v-%d", i); got != want {
			t.Fatalf("message %d = %q, want %q", i, got, want)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	// The broker has applied the acks (they travel in batches)...
	admin := client.NewAdmin(srv.adminURL())
	waitFor(t, 10*time.Second, "acks to reach the broker", func() bool {
		st, err := admin.TopicStats(ctx, "graceful")
		return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].NextOffset == n/2
	})
	// ...and SIGTERM, with the consumer still attached, persists them.
	srv.stop()
	cons.Close()
	c.Close()

	srv = startServer(t, dataDir)
	c, err = client.New(client.Options{Address: srv.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cons, err = c.Subscribe(ctx, client.ConsumerOptions{Topic: "graceful", Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := n / 2; i < n; i++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(m.Value), fmt.Sprintf("v-%d", i); got != want {
			t.Fatalf("after restart, message = %q, want %q (the first unacknowledged one)", got, want)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
}

func sendAll(ctx context.Context, t *testing.T, p *client.Producer, n int) {
	t.Helper()
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		p.SendAsync(ctx, &client.Message{Value: []byte(fmt.Sprintf("v-%d", i))}, func(_ client.MessageID, _ *client.Message, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d sends failed", f, n)
	}
}
