package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/internal/record/recordtest"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// bigRecordBatch is a batch produced by the package's encoder: one record
// of n zero bytes, compressed with codec.
func bigRecordBatch(t testing.TB, codec record.Codec, n int) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, record.BatchOptions{Codec: codec}, []record.Record{{Value: make([]byte, n), Timestamp: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedValues reads every record of a partition through ReadBatches.
func storedValues(t *testing.T, b *Broker, n TopicName) []string {
	t.Helper()
	res, err := b.ReadBatches(ctxT(t), n, 0, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range res.Batches {
		if err := record.DecodeRecords(e.Data, func(r record.Record) error { out = append(out, string(r.Value)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Issue 15: a 1 MiB gzip bomb cost ~270 MB while it was validated, and a
// 120 KiB gzip batch holding a 120 MiB record was stored (only its
// compressed size was checked) and became a poison message. The limit on
// a produced batch now applies to what it holds once decompressed.
func TestKafkaProduceRefusesBatchesOverTheLimitOnceDecompressed(t *testing.T) {
	b := newBroker(t, newStores(t)) // max-message-bytes: 5 MiB
	n := topic(t, b, "bombs", 1)
	// The value that makes a one-record batch exactly 5 MiB uncompressed.
	atLimit := 5<<20 - 100
	atLimit += 5<<20 - len(bigRecordBatch(t, record.CodecNone, atLimit))
	good := producerBatch(t, -1, -1, -1, 2, record.CodecGzip)
	if _, err := appendWait(t, b, n, good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		batch []byte
	}{
		{"a 1 MiB gzip bomb of 1 GiB", recordtest.Batch(record.CodecGzip, 1, recordtest.GzipBomb(t, 1<<30))},
		{"a valid gzip batch of one 120 MiB record", recordtest.Batch(record.CodecGzip, 1, recordtest.GzipRecord(t, 120<<20))},
		{"a snappy batch of one 16 MiB record", bigRecordBatch(t, record.CodecSnappy, 16<<20)},
		{"an lz4 batch of one 16 MiB record", bigRecordBatch(t, record.CodecLZ4, 16<<20)},
		{"a zstd batch of one 16 MiB record", bigRecordBatch(t, record.CodecZstd, 16<<20)},
		{"a gzip batch one byte over the limit once decompressed", bigRecordBatch(t, record.CodecGzip, atLimit+1)},
	} {
		if len(tc.batch) > b.cfg.MaxMessageBytes/4 {
			t.Fatalf("%s: %d bytes compressed; the test wants a small batch", tc.name, len(tc.batch))
		}
		_, err := b.AppendBatch(ctxT(t), n, 0, tc.batch)
		if !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("%s (%d bytes): %v, want ErrMessageTooLarge", tc.name, len(tc.batch), err)
		}
	}
	// A batch exactly at the limit once decompressed is stored.
	if _, err := appendWait(t, b, n, bigRecordBatch(t, record.CodecGzip, atLimit)); err != nil {
		t.Fatalf("a batch exactly at the limit once decompressed: %v", err)
	}
	// Nothing refused was stored; what was stored before is readable.
	if got := storedValues(t, b, n); len(got) != 3 || got[0] != "v--1" || got[1] != "v-0" || len(got[2]) != atLimit {
		t.Fatalf("stored %d records, want the 2 produced before and the one at the limit", len(got))
	}
}

func TestNativePublishRefusesRecordsOverTheLimitBeforeEncodingThem(t *testing.T) {
	b := newBroker(t, newStores(t), func(c *Config) { c.MaxMessageBytes = 1 << 20 })
	n := topic(t, b, "big-native", 1)
	if _, err := b.Publish(ctxT(t), n, 0, values("before", 0, 1)); err != nil {
		t.Fatal(err)
	}
	for _, recs := range [][]record.Record{
		{{Value: make([]byte, 120<<20)}},
		{{Key: make([]byte, 600<<10), Value: make([]byte, 600<<10)}},
		{{Value: []byte("v"), Headers: []record.Header{{Key: "h", Value: make([]byte, 2<<20)}}}},
	} {
		if _, err := b.PublishAsync(ctxT(t), n, 0, recs); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("publish over the limit: %v, want ErrMessageTooLarge", err)
		}
	}
	if got := storedValues(t, b, n); len(got) != 1 || got[0] != "before-0" {
		t.Fatalf("stored %q, want only what was published before", got)
	}
}

func TestCompressedBatchesWaitForTheDecompressionBudget(t *testing.T) {
	b := newBroker(t, newStores(t), func(c *Config) {
		c.MaxMessageBytes = 1 << 20
		c.DecompressBudgetBytes = 2 << 20
	})
	n := topic(t, b, "budget", 1)
	// Another validation holds the whole budget.
	if err := b.decompressing.Acquire(ctxT(t), 2<<20); err != nil {
		t.Fatal(err)
	}
	held := true
	defer func() {
		if held {
			b.decompressing.Release(2 << 20)
		}
	}()
	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	_, err := b.AppendBatch(ctx, n, 0, producerBatch(t, -1, -1, -1, 1, record.CodecGzip))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a compressed batch with the budget spent: %v, want it to wait until its deadline", err)
	}
	// An uncompressed batch needs no budget.
	if _, err := appendWait(t, b, n, producerBatch(t, -1, -1, -1, 1, record.CodecNone)); err != nil {
		t.Fatal(err)
	}
	b.decompressing.Release(2 << 20)
	held = false
	if _, err := appendWait(t, b, n, producerBatch(t, -1, -1, -1, 1, record.CodecGzip)); err != nil {
		t.Fatal(err)
	}
	if got := storedValues(t, b, n); len(got) != 2 {
		t.Fatalf("stored %q, want the uncompressed batch and the one sent once the budget was free", got)
	}
}

// BenchmarkParallelGzipBombs sends gzip bombs of 1 GiB (1 MiB each) at
// once, 40 as issue 15 did and 200, and reports the peak of the heap's
// objects, live and not yet swept (peak-heap-MiB), with the default
// decompression budget and without one. With max-message-bytes at 5 MiB
// each bomb stops at about 5 MiB; the budget (64 MiB) lets 12 decompress
// at once whatever the number sent, where without it the peak grows with
// the bombs.
func BenchmarkParallelGzipBombs(b *testing.B) {
	bomb := recordtest.Batch(record.CodecGzip, 1, recordtest.GzipBomb(b, 1<<30))
	for _, parallel := range []int{40, 200} {
		for _, budget := range []int64{64 << 20, 1 << 40} {
			name := fmt.Sprintf("bombs=%d/budget=%dMiB", parallel, budget>>20)
			if budget == 1<<40 {
				name = fmt.Sprintf("bombs=%d/budget=none", parallel)
			}
			b.Run(name, func(b *testing.B) { benchBombs(b, bomb, parallel, budget) })
		}
	}
}

func benchBombs(b *testing.B, bomb []byte, parallel int, budget int64) {
	cfg := DefaultConfig()
	cfg.DecompressBudgetBytes = budget
	meta := metadatatest.NewStore()
	defer meta.Close()
	br, err := New(cfg, meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	n, err := br.ParseTopic("bombs")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := br.CreateTopic(ctx, n, 1); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	peak := samplePeakHeap(b)
	for b.Loop() {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				if _, err := br.AppendBatch(ctx, n, 0, bomb); !errors.Is(err, ErrMessageTooLarge) {
					b.Errorf("bomb: %v, want ErrMessageTooLarge", err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
}

// samplePeakHeap samples the heap's object bytes every millisecond until
// the returned function is called, which returns the peak.
func samplePeakHeap(b *testing.B) func() uint64 {
	b.Helper()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}
