package tests

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// BenchmarkProduce1KiB measures end-to-end produce throughput against a
// real `magnetar standalone` process: one producer, one partition, 1 KiB
// messages, SendAsync with the client's default batching, every message
// acknowledged only once durable (Raft commit, fsync). Run with
// `make bench`; MB/s comes from b.SetBytes, msgs/s is reported too.
func BenchmarkProduce1KiB(b *testing.B) {
	srv := startServer(b, b.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.New(client.Options{Address: srv.nativeAddr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "bench-produce"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	// Warm up: the partition loads and the first segment opens.
	if _, err := p.Send(ctx, &client.Message{Value: payload}); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		p.SendAsync(ctx, &client.Message{Value: payload}, func(_ client.MessageID, _ *client.Message, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d sends failed", f)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
