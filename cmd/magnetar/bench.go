package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/config"
)

const benchUsage = `Usage: magnetar bench produce [flags]

Produces messages to a running Magnetar as fast as the producers can and
reports throughput and send-to-acknowledgement latency. Every message
counts once the broker has acknowledged it (stored durably).

Examples:
  magnetar bench produce
  magnetar bench produce --messages 1000000 --size 100 --producers 4 --topic bench-4 --partitions 4
  magnetar bench produce --service-addr 10.0.0.5:6650 --admin-url http://10.0.0.5:8080

Flags:
`

type benchConfig struct {
	serviceAddr string
	adminURL    string
	topic       string
	partitions  int
	messages    int
	size        int
	producers   int
	batchDelay  time.Duration
}

func runBench(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "produce" {
		fmt.Fprint(os.Stderr, benchUsage)
		return errors.New("bench: want a workload: produce")
	}
	var cfg benchConfig
	fs := flag.NewFlagSet("magnetar bench produce", flag.ContinueOnError)
	fs.StringVar(&cfg.serviceAddr, "service-addr", "127.0.0.1:6650", "native protocol address of a broker")
	fs.StringVar(&cfg.adminURL, "admin-url", "http://127.0.0.1:8080", "admin REST API, to create the topic")
	fs.StringVar(&cfg.topic, "topic", "bench", "topic to produce to")
	fs.IntVar(&cfg.partitions, "partitions", 1, "partitions of the topic, if it is created")
	fs.IntVar(&cfg.messages, "messages", 200_000, "messages to send, over all producers")
	fs.IntVar(&cfg.size, "size", 1024, "message size in bytes")
	fs.IntVar(&cfg.producers, "producers", 1, "concurrent producers")
	fs.DurationVar(&cfg.batchDelay, "batch-delay", 5*time.Millisecond, "producers' batching delay")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args[1:], "", os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if cfg.messages <= 0 || cfg.size < 0 || cfg.producers <= 0 || cfg.partitions <= 0 {
		return errors.New("bench: --messages, --producers and --partitions must be positive, --size not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := benchProduce(ctx, cfg)
	if err != nil {
		return err
	}
	res.print(stdout, cfg)
	return nil
}

type benchResult struct {
	elapsed   time.Duration
	latencies []time.Duration
}

func (r benchResult) print(w io.Writer, cfg benchConfig) {
	n := len(r.latencies)
	secs := r.elapsed.Seconds()
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration { return r.latencies[min(n-1, int(float64(n)*p))] }
	fmt.Fprintf(w, "produced %d messages of %d bytes with %d producer(s) to %s in %.2fs\n",
		n, cfg.size, cfg.producers, cfg.topic, secs)
	fmt.Fprintf(w, "throughput: %.0f msgs/s, %.1f MB/s\n", float64(n)/secs, float64(n*cfg.size)/secs/1e6)
	fmt.Fprintf(w, "latency (send to ack): p50 %v, p99 %v, max %v\n",
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), r.latencies[n-1].Round(time.Microsecond))
}

func benchProduce(ctx context.Context, cfg benchConfig) (benchResult, error) {
	admin := client.NewAdmin(cfg.adminURL)
	if _, err := admin.CreateTopic(ctx, cfg.topic, int32(cfg.partitions)); err != nil {
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 409 {
			return benchResult{}, fmt.Errorf("creating topic: %w", err)
		}
	}
	c, err := client.New(client.Options{Address: cfg.serviceAddr})
	if err != nil {
		return benchResult{}, err
	}
	defer c.Close()
	payload := make([]byte, cfg.size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	producers := make([]*client.Producer, cfg.producers)
	for i := range producers {
		p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: cfg.topic, BatchingMaxDelay: cfg.batchDelay})
		if err != nil {
			return benchResult{}, err
		}
		defer p.Close()
		// One synchronous send first: the partition is loaded before timing.
		if _, err := p.Send(ctx, &client.Message{Value: payload}); err != nil {
			return benchResult{}, err
		}
		producers[i] = p
	}

	latencies := make([]time.Duration, cfg.messages)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for i, p := range producers {
		from, to := cfg.messages*i/cfg.producers, cfg.messages*(i+1)/cfg.producers
		wg.Go(func() {
			for j := from; j < to; j++ {
				sent := time.Now()
				p.SendAsync(ctx, &client.Message{Value: payload}, func(_ client.MessageID, _ *client.Message, err error) {
					latencies[j] = time.Since(sent)
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				})
			}
			if err := p.Flush(ctx); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return benchResult{}, fmt.Errorf("bench: sends failed: %w", firstErr)
	}
	return benchResult{elapsed: elapsed, latencies: latencies}, nil
}
