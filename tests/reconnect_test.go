package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// TestClientsReconnectAfterTheServerRestarts kills the server under a
// connected producer and consumer and restarts it on the same address:
// the producer reports the break instead of hiding it, works again once
// the server is back, and the consumer resumes by itself and receives
// what is produced after the restart.
func TestClientsReconnectAfterTheServerRestarts(t *testing.T) {
	skipIfShort(t)
	dataDir := t.TempDir()
	ctx := testContext(t, 2*time.Minute)
	native := nettest.FreeAddr(t)
	srv := startServer(t, dataDir, "--native-addr", native)

	c, err := client.New(client.Options{Address: native})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "restart"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "restart", Subscription: "s", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	if _, err := p.Send(ctx, &client.Message{Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Receive(ctx)
	if err != nil || string(m.Value) != "before" {
		t.Fatalf("receive before the restart: %v %v", m, err)
	}
	if err := cons.Ack(m); err != nil {
		t.Fatal(err)
	}

	srv.kill()
	// A send made while the server is down is sent again once it is back.
	type result struct {
		id  client.MessageID
		err error
	}
	during := make(chan result, 1)
	go func() {
		id, err := p.Send(ctx, &client.Message{Value: []byte("during")})
		during <- result{id, err}
	}()
	time.Sleep(200 * time.Millisecond) // the send is in flight, the stream broken
	startServer(t, dataDir, "--native-addr", native)
	r := <-during
	if r.err != nil {
		t.Fatalf("send while the server was down: %v", r.err)
	}
	sent, err := p.Send(ctx, &client.Message{Value: []byte("after")})
	if err != nil {
		t.Fatalf("send after the restart: %v", err)
	}
	gotDuring := false
	// The consumer reconnects by itself; "before" may come again if its
	// ack had not been persisted when the server died.
	for {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("receive after the restart: %v", err)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
		switch string(m.Value) {
		case "before":
			continue
		case "during":
			if m.ID != r.id {
				t.Fatalf("received during at %v, sent at %v", m.ID, r.id)
			}
			gotDuring = true
		case "after":
			if !gotDuring {
				t.Fatal("received after before during")
			}
			if m.ID != sent {
				t.Fatalf("received after at %v, sent at %v", m.ID, sent)
			}
			return
		default:
			t.Fatalf("unexpected message %q (%v)", m.Value, fmt.Sprint(m.ID))
		}
	}
}
