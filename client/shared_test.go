package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// Two consumers of a Shared subscription split a topic's messages; a
// message one of them nacks is delivered again, and once everything is
// acknowledged no message is left over or duplicated.
func TestSharedConsumersSplitAndRedeliverNacked(t *testing.T) {
	c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "shared-work"})
	if err != nil {
		t.Fatal(err)
	}
	opts := client.ConsumerOptions{Topic: "shared-work", Subscription: "workers", Type: client.Shared,
		InitialPosition: client.Earliest, ReceiverQueueSize: 10}
	a, err := c.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := c.Subscribe(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 100
	for i := range n {
		if _, err := p.Send(ctx, &client.Message{Value: fmt.Appendf(nil, "job-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	acked := map[string]int{}
	nacked := false
	perConsumer := [2]int{}
	for len(acked) < n {
		for i, cons := range []*client.Consumer{a, b} {
			rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			m, err := cons.Receive(rctx)
			rcancel()
			if err != nil {
				continue
			}
			if !nacked && string(m.Value) == "job-7" {
				nacked = true
				if err := cons.Nack(m); err != nil {
					t.Fatal(err)
				}
				continue
			}
			acked[string(m.Value)]++
			perConsumer[i]++
			if err := cons.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for v, count := range acked {
		if count != 1 {
			t.Fatalf("%s acknowledged %d times", v, count)
		}
	}
	if !nacked || acked["job-7"] != 1 {
		t.Fatalf("the nacked message was not delivered again (nacked=%v)", nacked)
	}
	if perConsumer[0] == 0 || perConsumer[1] == 0 {
		t.Fatalf("one consumer got everything: %v", perConsumer)
	}
	if _, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "shared-work", Subscription: "workers"}); err == nil {
		t.Fatal("an Exclusive consumer attached to a Shared subscription with consumers")
	}
}
