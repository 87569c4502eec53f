package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// percentiles formats p50/p99/p99.9/max of sorted durations.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	slices.Sort(ds)
	pct := func(p float64) time.Duration {
		return ds[min(len(ds)-1, int(float64(len(ds))*p))].Round(time.Microsecond)
	}
	return fmt.Sprintf("p50 %v, p99 %v, p99.9 %v, max %v", pct(0.50), pct(0.99), pct(0.999), ds[len(ds)-1].Round(time.Microsecond))
}

// benchLatency produces at a fixed rate while one consumer reads, and
// reports the end-to-end latency: from the moment a message was due to be
// sent (so a producer falling behind shows up as latency, not as a lower
// rate) to the moment the consumer received it.
func benchLatency(ctx context.Context, cfg benchConfig, w io.Writer) error {
	if cfg.size < 8 {
		return errors.New("bench latency: --size must be at least 8 (the send time is carried in the message)")
	}
	if err := ensureTopic(ctx, cfg); err != nil {
		return err
	}
	c, err := client.New(client.Options{Address: cfg.serviceAddr})
	if err != nil {
		return err
	}
	defer c.Close()
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: cfg.topic, Subscription: fmt.Sprintf("bench-latency-%d", time.Now().UnixNano())})
	if err != nil {
		return err
	}
	defer cons.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: cfg.topic, BatchingMaxDelay: cfg.batchDelay})
	if err != nil {
		return err
	}
	defer p.Close()

	total := int(cfg.duration.Seconds() * float64(cfg.rate))
	e2e := make([]time.Duration, 0, total)
	publish := make([]time.Duration, total)
	var received atomic.Int64
	recvDone := make(chan error, 1)
	go func() {
		for int(received.Load()) < total {
			m, err := cons.Receive(ctx)
			if err != nil {
				recvDone <- err
				return
			}
			if len(m.Value) >= 8 {
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(m.Value)))
				e2e = append(e2e, time.Since(sent))
			}
			_ = cons.Ack(m)
			received.Add(1)
		}
		recvDone <- nil
	}()

	var (
		mu       sync.Mutex
		firstErr error
	)
	interval := time.Second / time.Duration(cfg.rate)
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		payload := benchPayload(cfg.size)
		binary.BigEndian.PutUint64(payload, uint64(due.UnixNano()))
		p.SendAsync(ctx, &client.Message{Value: payload}, func(_ client.MessageID, _ *client.Message, err error) {
			publish[i] = time.Since(due)
			if err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	sendSecs := time.Since(start).Seconds()
	if firstErr != nil {
		return fmt.Errorf("bench: sends failed: %w", firstErr)
	}
	select {
	case err := <-recvDone:
		if err != nil {
			return err
		}
	case <-time.After(30 * time.Second):
		return fmt.Errorf("bench: received %d of %d messages", received.Load(), total)
	}
	fmt.Fprintf(w, "produced %d messages of %d bytes at %.0f msgs/s (asked %d) to %s\n", total, cfg.size, float64(total)/sendSecs, cfg.rate, cfg.topic)
	fmt.Fprintf(w, "end-to-end latency (due to send -> received): %s\n", percentiles(e2e))
	fmt.Fprintf(w, "publish latency (due to send -> acknowledged): %s\n", percentiles(publish))
	return nil
}

var benchTypes = map[string]client.SubscriptionType{
	"exclusive": client.Exclusive, "shared": client.Shared, "failover": client.Failover, "key_shared": client.KeyShared,
}

// benchConsume fills a backlog, then drains it with cfg.consumers
// consumers of one subscription, each acknowledging what it receives, and
// reports the dispatch throughput. It checks that every message arrived
// exactly once.
func benchConsume(ctx context.Context, cfg benchConfig, w io.Writer) error {
	typ, ok := benchTypes[strings.ToLower(cfg.subType)]
	if !ok {
		return fmt.Errorf("bench: unknown --type %q (exclusive, shared, failover, key_shared)", cfg.subType)
	}
	if err := ensureTopic(ctx, cfg); err != nil {
		return err
	}
	c, err := client.New(client.Options{Address: cfg.serviceAddr})
	if err != nil {
		return err
	}
	defer c.Close()
	opts := client.ConsumerOptions{Topic: cfg.topic, Subscription: fmt.Sprintf("bench-%s-%d", cfg.subType, time.Now().UnixNano()), Type: typ}
	first, err := c.Subscribe(ctx, opts) // creates the subscription at the end of the topic
	if err != nil {
		return err
	}
	first.Close()
	if _, err := benchProduce(ctx, cfg); err != nil {
		return err
	}
	total := cfg.messages + cfg.producers // benchProduce sends one more per producer first

	var (
		mu   sync.Mutex
		seen = make(map[client.MessageID]struct{}, total)
		dups int
		wg   sync.WaitGroup
	)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumers := make([]*client.Consumer, cfg.consumers)
	for i := range consumers {
		cons, err := c.Subscribe(ctx, opts)
		if err != nil {
			return err
		}
		defer cons.Close()
		consumers[i] = cons
	}
	start := time.Now()
	for _, cons := range consumers {
		wg.Go(func() {
			for {
				m, err := cons.Receive(dctx)
				if err != nil {
					return
				}
				_ = cons.Ack(m)
				mu.Lock()
				if _, dup := seen[m.ID]; dup {
					dups++
				}
				seen[m.ID] = struct{}{}
				if len(seen) == total {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(seen) != total {
		return fmt.Errorf("bench: received %d of %d messages: %w", len(seen), total, ctx.Err())
	}
	secs := elapsed.Seconds()
	fmt.Fprintf(w, "%d %s consumer(s) drained %d messages of %d bytes from %s in %.2fs (%d duplicates)\n",
		cfg.consumers, cfg.subType, total, cfg.size, cfg.topic, secs, dups)
	fmt.Fprintf(w, "dispatch throughput: %.0f msgs/s, %.1f MB/s\n", float64(total)/secs, float64(total*cfg.size)/secs/1e6)
	return nil
}
