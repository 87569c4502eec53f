package client_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/standalone"
)

func startServer(t *testing.T) *client.Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "magnetar-client-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, c := startStandalone(t, dir)
	t.Cleanup(func() { srv.Close() })
	t.Cleanup(func() { c.Close() })
	return c
}

// startStandalone starts a standalone on dir and a client of it; the
// caller closes both.
func startStandalone(t *testing.T, dir string) (*standalone.Server, *client.Client) {
	t.Helper()
	cfg := standalone.DefaultConfig()
	cfg.DataDir, cfg.NativeAddr, cfg.HTTPAddr = dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.Kafka.ListenAddr = "127.0.0.1:0"
	srv, err := standalone.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Address: srv.NativeAddr()})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return srv, c
}

// Flush promises that every callback of an earlier message has run when it
// returns. Here the receipt of a batch has arrived and its callback is
// still running when Flush is called: Flush must wait for the callback.
func TestFlushWaitsForCallbacksStillRunning(t *testing.T) {
	c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "flush"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	started, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock() // never leave the callback blocked, even on failure
	var finished atomic.Bool
	p.SendAsync(ctx, &client.Message{Value: []byte("v")}, func(_ client.MessageID, _ *client.Message, err error) {
		if err != nil {
			t.Errorf("send: %v", err)
		}
		close(started)
		<-release
		finished.Store(true)
	})
	<-started // the receipt is in; the callback is running

	flushed := make(chan bool, 1) // whether the callback had finished when Flush returned
	go func() {
		if err := p.Flush(ctx); err != nil {
			t.Errorf("Flush: %v", err)
		}
		flushed <- finished.Load()
	}()
	// Give a wrong Flush the chance to return early; a right one blocks.
	select {
	case <-flushed:
		t.Fatal("Flush returned while the callback of an earlier message was still running")
	case <-time.After(200 * time.Millisecond):
	}
	unblock()
	if !<-flushed {
		t.Fatal("Flush returned before the callback finished")
	}
}
