package tests

import (
	"strconv"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// Two brokers over one metadata service and one bookie. The broker that
// owns a topic is paused (SIGSTOP): it closes no connection, so nothing
// tells the client it is gone. While it stays paused:
//
//   - its lease expires (--broker.lease-ttl 2s) and the topic's bundle goes
//     to the other broker;
//   - the client's pings on the paused broker's connection go unanswered
//     (Options.KeepAlive), so the producer's stream breaks and the
//     unanswered send goes to the new owner, where it is acknowledged.
//
// Then the paused broker resumes. It was fenced: the new owner sealed its
// segment, so whatever it still tries to append fails, and the log holds
// every acknowledged message once, in order.
func TestAPausedOwnerLosesItsTopicsAndTheClientFollows(t *testing.T) {
	skipIfShort(t)
	const topic = "public/default/paused-owner"
	bc := startTwoBrokers(t, topic)
	c, owner := bc.client, bc.owner
	ctx := testContext(t, 3*time.Minute)
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const before = 50
	for i := range before {
		if _, err := p.Send(ctx, &client.Message{Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}

	resume := owner.pause()
	defer resume() // before the clients close, should the test fail while it is paused
	paused := time.Now()
	// The owner stays paused until this send is acknowledged: by the other
	// broker, as the paused one cannot answer.
	done := make(chan error, 1)
	go func() {
		_, err := p.Send(ctx, &client.Message{Value: []byte(strconv.Itoa(before))})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the send made while the owner was paused failed: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the send made while the owner was paused was not acknowledged while it stayed paused")
	}
	t.Logf("owner paused: the send made then acknowledged by the new owner after %v", time.Since(paused).Round(time.Millisecond))
	resume()

	const total = 100
	for i := before + 1; i < total; i++ {
		if _, err := p.Send(ctx, &client.Message{Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatalf("send %d after the owner resumed: %v", i, err)
		}
	}
	r, err := c.CreateReader(ctx, client.ReaderOptions{Topic: topic, InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for want := range total {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reading the log back at message %d: %v", want, err)
		}
		if got := string(m.Value); got != strconv.Itoa(want) {
			t.Fatalf("offset %d holds %q, want %q: a message was stored twice, lost or reordered", m.ID.Offset, got, strconv.Itoa(want))
		}
	}
}
