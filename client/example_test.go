package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/standalone"
)

// Example produces three messages and consumes them back. It starts a
// standalone server in-process; against a running `magnetar standalone`,
// only the client part is needed, with Address "127.0.0.1:6650".
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "magnetar-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := standalone.DefaultConfig()
	cfg.DataDir, cfg.NativeAddr, cfg.HTTPAddr = dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.Kafka.ListenAddr = "127.0.0.1:0"
	srv, err := standalone.Start(ctx, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := client.New(client.Options{Address: srv.NativeAddr()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	producer, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "greetings"})
	if err != nil {
		log.Fatal(err)
	}
	for _, text := range []string{"hello", "bonjour", "hallo"} {
		// Send waits until the message is durably stored.
		id, err := producer.Send(ctx, &client.Message{Value: []byte(text)})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("sent", text, "at", id)
	}
	producer.Close()

	consumer, err := c.Subscribe(ctx, client.ConsumerOptions{
		Topic:           "greetings",
		Subscription:    "example",
		InitialPosition: client.Earliest,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()
	for range 3 {
		m, err := consumer.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("received", string(m.Value), "at", m.ID)
		consumer.Ack(m)
	}
	// Output:
	// sent hello at 0:0
	// sent bonjour at 0:1
	// sent hallo at 0:2
	// received hello at 0:0
	// received bonjour at 0:1
	// received hallo at 0:2
}
