package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stores is a metadata store and a segment store that several brokers
// can share, as brokers in a cluster do.
type stores struct {
	meta   metadata.Store
	shards bookie.Router
}

func newStores(t *testing.T) stores {
	t.Helper()
	meta := metadatatest.NewStore()
	t.Cleanup(func() { meta.Close() })
	return stores{meta: meta, shards: bookie.OneShard("s1", bookietest.NewFake())}
}

func newBroker(t *testing.T, s stores, mutate ...func(*Config)) *Broker {
	t.Helper()
	cfg := DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	b, err := New(cfg, s.meta, s.shards, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func topic(t *testing.T, b *Broker, name string, partitions int32) TopicName {
	t.Helper()
	n, err := b.ParseTopic(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctxT(t), n, partitions); err != nil {
		t.Fatal(err)
	}
	return n
}

func values(prefix string, from, n int) []record.Record {
	rs := make([]record.Record, n)
	for i := range rs {
		rs[i] = record.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, from+i)), Timestamp: 1}
	}
	return rs
}

// receive takes n messages from the consumer, granting permits as needed.
func receive(t *testing.T, c *Consumer, n int) []Delivery {
	t.Helper()
	ctx := ctxT(t)
	var out []Delivery
	for len(out) < n {
		c.Flow(uint32(n - len(out)))
		ds, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, ds...)
	}
	if len(out) != n {
		t.Fatalf("received %d messages, granted permits for %d", len(out), n)
	}
	return out
}

func TestConcurrentProducersGetDenseOffsetsAndConsumersSeeThemInOrder(t *testing.T) {
	b := newBroker(t, newStores(t))
	n := topic(t, b, "dense", 1)
	const producers, batches, perBatch = 8, 50, 10
	var wg sync.WaitGroup
	bases := make(chan int64, producers*batches)
	for p := range producers {
		wg.Go(func() {
			for i := range batches {
				base, err := b.Publish(ctxT(t), n, 0, values(fmt.Sprintf("p%d", p), i*perBatch, perBatch))
				if err != nil {
					t.Error(err)
					return
				}
				bases <- base
			}
		})
	}
	wg.Wait()
	close(bases)
	seen := map[int64]bool{}
	for base := range bases {
		if base%perBatch != 0 || seen[base] {
			t.Fatalf("batch base offset %d: not a distinct multiple of %d", base, perBatch)
		}
		seen[base] = true
	}
	if len(seen) != producers*batches {
		t.Fatalf("%d distinct batches, want %d", len(seen), producers*batches)
	}

	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ds := receive(t, c, producers*batches*perBatch)
	for i, d := range ds {
		if d.Offset != int64(i) {
			t.Fatalf("message %d has offset %d: offsets must be dense and in order", i, d.Offset)
		}
	}
}

func TestNewOwnerFencesTheOldOneAndContinuesItsOffsets(t *testing.T) {
	s := newStores(t)
	a := newBroker(t, s)
	n := topic(t, a, "fenced", 1)
	if _, err := a.Publish(ctxT(t), n, 0, values("a", 0, 5)); err != nil {
		t.Fatal(err)
	}

	// Broker b takes the partition over, as after a's lease expired.
	b := newBroker(t, s)
	base, err := b.Publish(ctxT(t), n, 0, values("b", 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if base != 5 {
		t.Fatalf("new owner's first offset = %d, want 5 (right after the old owner's last acknowledged)", base)
	}

	// a still thinks it owns the partition: its append must be refused.
	_, err = a.Publish(ctxT(t), n, 0, values("a", 5, 1))
	if !errors.Is(err, bookie.ErrFenced) && !errors.Is(err, bookie.ErrSegmentSealed) && !errors.Is(err, ErrPartitionFailed) {
		t.Fatalf("old owner's append: err = %v, want it fenced", err)
	}

	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []string{"a-0", "a-1", "a-2", "a-3", "a-4", "b-0", "b-1", "b-2"}
	ds := receive(t, c, len(want))
	for i, d := range ds {
		if string(d.Record.Value) != want[i] || d.Offset != int64(i) {
			t.Fatalf("message %d = %q at %d, want %q at %d", i, d.Record.Value, d.Offset, want[i], i)
		}
	}
}

func TestSubscriptionResumesAtTheFirstUnacknowledgedMessage(t *testing.T) {
	s := newStores(t)
	b := newBroker(t, s)
	n := topic(t, b, "resume", 1)
	if _, err := b.Publish(ctxT(t), n, 0, values("v", 0, 10)); err != nil {
		t.Fatal(err)
	}
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, c, 10)
	c.Ack([]int64{0, 1, 2, 5, 7}) // 3, 4, 6, 8, 9 stay unacknowledged
	c.Close()

	// A new broker (the first one crashed after closing the consumer)
	// reads the persisted cursor.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := newBroker(t, s)
	c2, err := b2.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.StartOffset() != 3 {
		t.Errorf("StartOffset = %d, want 3", c2.StartOffset())
	}
	var got []int64
	for _, d := range receive(t, c2, 5) {
		got = append(got, d.Offset)
	}
	if fmt.Sprint(got) != "[3 4 6 8 9]" {
		t.Fatalf("redelivered %v, want the unacknowledged [3 4 6 8 9]", got)
	}
}

func TestConsumerNeverGetsMoreThanItsPermits(t *testing.T) {
	b := newBroker(t, newStores(t))
	n := topic(t, b, "permits", 1)
	if _, err := b.Publish(ctxT(t), n, 0, values("v", 0, 100)); err != nil {
		t.Fatal(err)
	}
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Flow(7)
	ds, err := c.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 7 {
		t.Fatalf("got %d messages with 7 permits", len(ds))
	}
	// No permits left: Next must wait, not deliver.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if ds, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next without permits returned %d messages, err %v", len(ds), err)
	}
	c.Flow(100)
	ds, err = c.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Offset != 7 {
		t.Fatalf("delivery resumed at %d, want 7", ds[0].Offset)
	}
}

func TestExclusiveSubscriptionRefusesASecondConsumer(t *testing.T) {
	b := newBroker(t, newStores(t))
	n := topic(t, b, "exclusive", 1)
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s"}); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("second consumer: err = %v, want ErrConsumerBusy", err)
	}
	c.Close()
	c2, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s"})
	if err != nil {
		t.Fatalf("consumer after the first closed: %v", err)
	}
	c2.Close()
}

func TestLatestSubscriptionSkipsEarlierMessages(t *testing.T) {
	b := newBroker(t, newStores(t))
	n := topic(t, b, "latest", 1)
	if _, err := b.Publish(ctxT(t), n, 0, values("old", 0, 3)); err != nil {
		t.Fatal(err)
	}
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Latest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := b.Publish(ctxT(t), n, 0, values("new", 0, 1)); err != nil {
		t.Fatal(err)
	}
	d := receive(t, c, 1)[0]
	if string(d.Record.Value) != "new-0" || d.Offset != 3 {
		t.Fatalf("got %q at %d, want new-0 at 3", d.Record.Value, d.Offset)
	}
}

func TestSegmentsRollAndReadsCrossThem(t *testing.T) {
	s := newStores(t)
	b := newBroker(t, s, func(c *Config) {
		c.SegmentMaxBytes = 1 << 10
		c.TailCacheBytes = 0 // force reads from the segment store
	})
	n := topic(t, b, "roll", 1)
	for i := range 20 {
		if _, err := b.Publish(ctxT(t), n, 0, values("v", i*10, 10)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.TopicStats(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions[0].Segments < 3 {
		t.Fatalf("%d segments after 20 batches over a 1 KiB roll size, want several", st.Partitions[0].Segments)
	}
	if st.Messages != 200 {
		t.Fatalf("stats count %d messages, want 200", st.Messages)
	}
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, d := range receive(t, c, 200) {
		if want := fmt.Sprintf("v-%d", i); string(d.Record.Value) != want {
			t.Fatalf("message %d = %q, want %q", i, d.Record.Value, want)
		}
	}
}

func TestTopicLifecycle(t *testing.T) {
	b := newBroker(t, newStores(t), func(c *Config) { c.AutoCreateTopics = false })
	ctx := ctxT(t)
	if err := b.EnsureNamespace(ctx, NamespaceName{"acme", "app"}); err != nil {
		t.Fatal(err)
	}
	n := topic(t, b, "acme/app/orders", 3)
	if err := b.CreateTopic(ctx, n, 3); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: err = %v, want ErrTopicExists", err)
	}
	topic(t, b, "other", 1)
	ts, err := b.ListTopics(ctx, "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != n || ts[0].Partitions != 3 {
		t.Fatalf("ListTopics(acme/app) = %+v", ts)
	}
	if all, _ := b.ListTopics(ctx, ""); len(all) != 2 {
		t.Fatalf("ListTopics() = %+v, want 2 topics", all)
	}
	if _, err := b.Publish(ctx, n, 3, values("v", 0, 1)); !errors.Is(err, ErrPartitionNotFound) {
		t.Fatalf("publish to partition 3 of 3: err = %v", err)
	}
	if _, err := b.Publish(ctx, n, 2, values("v", 0, 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteTopic(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Topic(ctx, n, true); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("after delete (auto-create off): err = %v, want ErrTopicNotFound", err)
	}
	if _, err := b.Publish(ctx, n, 0, values("v", 0, 1)); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("publish after delete: err = %v, want ErrTopicNotFound", err)
	}
}

func TestAutoCreateMakesAOnePartitionTopic(t *testing.T) {
	b := newBroker(t, newStores(t))
	n, _ := b.ParseTopic("auto")
	info, err := b.Topic(ctxT(t), n, true)
	if err != nil {
		t.Fatal(err)
	}
	if info.Partitions != 1 || n.String() != "public/default/auto" {
		t.Fatalf("auto-created %s with %d partitions", n, info.Partitions)
	}
}

func TestOversizedBatchIsRefused(t *testing.T) {
	b := newBroker(t, newStores(t), func(c *Config) { c.MaxMessageBytes = 1000 })
	n := topic(t, b, "big", 1)
	_, err := b.Publish(ctxT(t), n, 0, []record.Record{{Value: make([]byte, 2000)}})
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("err = %v, want ErrMessageTooLarge", err)
	}
}

func TestCloseFailsNewPublishesAndEndsConsumers(t *testing.T) {
	b := newBroker(t, newStores(t))
	n := topic(t, b, "closing", 1)
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	c.Flow(10)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background())
		errc <- err
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting consumer got %v, want ErrClosed", err)
	}
	if _, err := b.Publish(ctxT(t), n, 0, values("v", 0, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: err = %v, want ErrClosed", err)
	}
}

func TestParseTopicName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"orders", "public/default/orders", true},
		{"acme/app/orders", "acme/app/orders", true},
		{"persistent://acme/app/orders", "acme/app/orders", true},
		{"a.b_c-d", "public/default/a.b_c-d", true},
		{"", "", false},
		{"acme/orders", "", false},
		{"a/b/c/d", "", false},
		{"acme/app/or ders", "", false},
		{"acme//orders", "", false},
		{"..", "", false},
	}
	for _, tt := range tests {
		got, err := ParseTopicName(tt.in, "public/default")
		if tt.ok != (err == nil) || (tt.ok && got.String() != tt.want) {
			t.Errorf("ParseTopicName(%q) = %v, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidTopicName) {
			t.Errorf("ParseTopicName(%q) error %v does not wrap ErrInvalidTopicName", tt.in, err)
		}
	}
}
