package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/config"
)

const benchUsage = `Usage: magnetar bench produce|latency|consume [flags]

Workloads against a running Magnetar:
  produce   produce as fast as the producers can; throughput and send-to-ack latency
  latency   produce at a fixed rate while a consumer reads; end-to-end latency
  consume   fill a backlog, then drain it with N consumers of one subscription;
            dispatch throughput (every message received and acknowledged once)

Examples:
  magnetar bench produce
  magnetar bench produce --messages 1000000 --size 100 --producers 4 --topic bench-4 --partitions 4
  magnetar bench produce --service-addr 10.0.0.5:6650 --admin-url http://10.0.0.5:8080
  magnetar bench latency --rate 2000 --duration 30s
  magnetar bench consume --consumers 10 --type shared --messages 500000

Flags:
`

type benchConfig struct {
	workload    string
	serviceAddr string
	adminURL    string
	topic       string
	partitions  int
	messages    int
	size        int
	producers   int
	batchDelay  time.Duration
	rate        int
	duration    time.Duration
	consumers   int
	subType     string
}

func runBench(args []string, stdout io.Writer) error {
	workloads := map[string]func(context.Context, benchConfig, io.Writer) error{
		"produce": func(ctx context.Context, cfg benchConfig, w io.Writer) error {
			res, err := benchProduce(ctx, cfg)
			if err == nil {
				res.print(w, cfg)
			}
			return err
		},
		"latency": benchLatency,
		"consume": benchConsume,
	}
	if len(args) == 0 || workloads[args[0]] == nil {
		fmt.Fprint(os.Stderr, benchUsage)
		return errors.New("bench: want a workload: produce, latency or consume")
	}
	cfg := benchConfig{workload: args[0]}
	fs := flag.NewFlagSet("magnetar bench "+args[0], flag.ContinueOnError)
	fs.StringVar(&cfg.serviceAddr, "service-addr", "127.0.0.1:6650", "native protocol address of a broker")
	fs.StringVar(&cfg.adminURL, "admin-url", "http://127.0.0.1:8080", "admin REST API, to create the topic")
	fs.StringVar(&cfg.topic, "topic", "bench", "topic to produce to")
	fs.IntVar(&cfg.partitions, "partitions", 1, "partitions of the topic, if it is created")
	fs.IntVar(&cfg.messages, "messages", 200_000, "messages to send, over all producers")
	fs.IntVar(&cfg.size, "size", 1024, "message size in bytes")
	fs.IntVar(&cfg.producers, "producers", 1, "concurrent producers")
	fs.DurationVar(&cfg.batchDelay, "batch-delay", 5*time.Millisecond, "producers' batching delay")
	fs.IntVar(&cfg.rate, "rate", 1000, "latency: messages per second to produce")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "latency: how long to produce")
	fs.IntVar(&cfg.consumers, "consumers", 1, "consume: consumers of the subscription")
	fs.StringVar(&cfg.subType, "type", "shared", "consume: subscription type (exclusive, shared, failover, key_shared)")
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
	if cfg.messages <= 0 || cfg.size < 0 || cfg.producers <= 0 || cfg.partitions <= 0 || cfg.rate <= 0 || cfg.consumers <= 0 {
		return errors.New("bench: --messages, --producers, --partitions, --rate and --consumers must be positive, --size not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return workloads[cfg.workload](ctx, cfg, stdout)
}

type benchResult struct {
	elapsed   time.Duration
	latencies []time.Duration
}

func (r benchResult) print(w io.Writer, cfg benchConfig) {
	n := len(r.latencies)
	secs := r.elapsed.Seconds()
	fmt.Fprintf(w, "produced %d messages of %d bytes with %d producer(s) to %s in %.2fs\n",
		n, cfg.size, cfg.producers, cfg.topic, secs)
	fmt.Fprintf(w, "throughput: %.0f msgs/s, %.1f MB/s\n", float64(n)/secs, float64(n*cfg.size)/secs/1e6)
	fmt.Fprintf(w, "latency (send to ack): %s\n", percentiles(r.latencies))
}

// ensureTopic creates the benchmark's topic unless it exists.
func ensureTopic(ctx context.Context, cfg benchConfig) error {
	admin := client.NewAdmin(cfg.adminURL)
	if _, err := admin.CreateTopic(ctx, cfg.topic, int32(cfg.partitions)); err != nil {
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 409 {
			return fmt.Errorf("creating topic: %w", err)
		}
	}
	return nil
}

func benchPayload(size int) []byte {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	return payload
}

func benchProduce(ctx context.Context, cfg benchConfig) (benchResult, error) {
	if err := ensureTopic(ctx, cfg); err != nil {
		return benchResult{}, err
	}
	c, err := client.New(client.Options{Address: cfg.serviceAddr})
	if err != nil {
		return benchResult{}, err
	}
	defer c.Close()
	payload := benchPayload(cfg.size)
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
