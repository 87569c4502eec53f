package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/nettest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// idleProduces is how many records each sub-benchmark first produces one
// at a time (ProduceSync), for the latency of a lone record on an idle
// connection. They also warm the topic up (partition loaded, producer ID
// issued) before the timed phase.
const idleProduces = 300

// BenchmarkKafkaVsKfake runs the same franz-go workload against a real
// `magnetar standalone` process (Raft, Pebble, fsync before every ack) and
// against franz-go's in-memory fake cluster kfake (one broker, in the
// benchmark's process, no durability), side by side in one run, for
// {1 KiB, 100 B} records x {1, 8} partitions.
//
// Each sub-benchmark creates a fresh topic, produces idleProduces records
// one at a time, then b.N records with Produce (acks=all, idempotent,
// default linger and buffering, no compression, incompressible values)
// and flushes, then reads every record back with a direct partition
// consumer from the start (no group). ns/op is the produce time per
// record; the other metrics are:
//
//	produce_MB/s, produce_rec/s  throughput of the b.N records
//	p50_ms, p99_ms               Produce call to promise, under that load
//	idle_p50_ms, idle_p99_ms     ProduceSync of one record at a time
//	consume_MB/s, consume_rec/s  reading all records back
//
// Run: go test -run '^$' -bench BenchmarkKafkaVsKfake -benchtime 100000x ./tests/
func BenchmarkKafkaVsKfake(b *testing.B) {
	skipIfShort(b)
	kafkaAddr := nettest.FreeAddr(b)
	startServer(b, b.TempDir(), "--kafka.listen-addr", kafkaAddr)
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	targets := []struct{ name, addr string }{
		{"magnetar", kafkaAddr},
		{"kfake", fake.ListenAddrs()[0]},
	}
	var topicSeq atomic.Int64
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KiB", 1024}, {"100B", 100}} {
		for _, partitions := range []int32{1, 8} {
			for _, target := range targets {
				name := fmt.Sprintf("%s/partitions=%d/%s", size.name, partitions, target.name)
				b.Run(name, func(b *testing.B) {
					topic := fmt.Sprintf("bench-%d", topicSeq.Add(1))
					benchKafkaTarget(b, target.addr, topic, partitions, size.bytes)
				})
			}
		}
	}
}

// benchKafkaTarget runs one sub-benchmark of BenchmarkKafkaVsKfake on the
// cluster at addr.
func benchKafkaTarget(b *testing.B, addr, topic string, partitions int32, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	adm := kadm.NewClient(benchKafkaClient(b, addr))
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		b.Fatal(err)
	}
	defer func() {
		// Frees kfake's memory and Magnetar's disk for the next
		// sub-benchmark; not timed.
		if _, err := adm.DeleteTopics(ctx, topic); err != nil {
			b.Logf("deleting %s: %v", topic, err)
		}
	}()
	// Incompressible values, the same on both targets.
	value := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(size)})
	_, _ = rng.Read(value)

	p := benchKafkaClient(b, addr,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)

	idle := make([]time.Duration, idleProduces)
	for i := range idle {
		start := time.Now()
		if err := p.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			b.Fatalf("producing to %s: %v", topic, err)
		}
		idle[i] = time.Since(start)
	}

	lat := make([]time.Duration, b.N)
	var (
		acked  sync.WaitGroup
		failed atomic.Int64
	)
	acked.Add(b.N)
	b.ResetTimer()
	begin := time.Now()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		p.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			lat[i] = time.Since(start)
			if err != nil {
				failed.Add(1)
			}
			acked.Done()
		})
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	acked.Wait()
	produceTime := time.Since(begin)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d records failed", f, b.N)
	}
	produced := float64(b.N)
	b.ReportMetric(produced*float64(size)/1e6/produceTime.Seconds(), "produce_MB/s")
	b.ReportMetric(produced/produceTime.Seconds(), "produce_rec/s")
	b.ReportMetric(percentileMs(lat, 50), "p50_ms")
	b.ReportMetric(percentileMs(lat, 99), "p99_ms")
	b.ReportMetric(percentileMs(idle, 50), "idle_p50_ms")
	b.ReportMetric(percentileMs(idle, 99), "idle_p99_ms")

	total := b.N + idleProduces
	offsets := map[int32]kgo.Offset{}
	for part := range partitions {
		offsets[part] = kgo.NewOffset().AtStart()
	}
	begin = time.Now()
	c := benchKafkaClient(b, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	var read, readBytes int
	for read < total {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			b.Fatalf("consuming %s after %d of %d records: %v", topic, read, total, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			readBytes += len(r.Value)
		})
	}
	consumeTime := time.Since(begin)
	b.ReportMetric(float64(readBytes)/1e6/consumeTime.Seconds(), "consume_MB/s")
	b.ReportMetric(float64(read)/consumeTime.Seconds(), "consume_rec/s")
}

// benchKafkaClient is a franz-go client of addr, closed when b ends.
func benchKafkaClient(b *testing.B, addr string, opts ...kgo.Opt) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// percentileMs returns the q-th percentile of ds in milliseconds; it sorts
// ds.
func percentileMs(ds []time.Duration, q int) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := min(len(ds)*q/100, len(ds)-1)
	return float64(ds[i]) / float64(time.Millisecond)
}
