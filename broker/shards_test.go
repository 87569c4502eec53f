package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// roundRobin places segments on its shards in turn.
type roundRobin struct {
	ids    []string
	shards map[string]bookie.Client
	mu     sync.Mutex
	next   int
}

func (r *roundRobin) Shard(_ context.Context, id string) (bookie.Client, error) {
	if c, ok := r.shards[id]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %q", bookie.ErrUnknownShard, id)
}

func (r *roundRobin) Place(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.ids[r.next%len(r.ids)]
	r.next++
	return id, nil
}

// A partition's segments go where the router places them; reads follow
// each segment to its shard, a new owner seals the open segment on its
// shard, and deleting the topic deletes every segment on its own shard.
func TestSegmentsSpreadOverShardsAndReadsFollowThem(t *testing.T) {
	a, b2 := bookietest.NewFake(), bookietest.NewFake()
	rr := &roundRobin{ids: []string{"a", "b"}, shards: map[string]bookie.Client{"a": a, "b": b2}}
	meta := metadatatest.NewStore()
	t.Cleanup(func() { meta.Close() })
	s := stores{meta: meta, shards: rr}
	small := func(c *Config) {
		c.SegmentMaxBytes = 1 << 10
		c.TailCacheBytes = 0 // force reads from the segment store
	}
	b := newBroker(t, s, small)
	n := topic(t, b, "spread", 1)
	for i := range 20 {
		if _, err := b.Publish(ctxT(t), n, 0, values("v", i*10, 10)); err != nil {
			t.Fatal(err)
		}
	}
	// A second broker takes the partition over: it seals the first one's
	// open segment, wherever it is, and continues the offsets.
	b.Close()
	other := newBroker(t, s, small)
	if off, err := other.Publish(ctxT(t), n, 0, values("v", 200, 10)); err != nil || off != 200 {
		t.Fatalf("publish on the new owner: offset %d, %v; want 200", off, err)
	}

	pm, ok, err := other.cat.Partitions.Get(ctxT(t), partitionName(n, 0))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	on := map[string]int{}
	for _, seg := range pm.Value.Segments {
		c, _ := rr.Shard(ctxT(t), seg.Shard)
		info, err := c.Info(ctxT(t), seg.Id)
		if err != nil {
			t.Fatalf("segment %d recorded on shard %q: %v", seg.Id, seg.Shard, err)
		}
		if info.StartOffset != seg.StartOffset {
			t.Fatalf("segment %d starts at %d on its shard, %d in the metadata", seg.Id, info.StartOffset, seg.StartOffset)
		}
		on[seg.Shard]++
	}
	if on["a"] < 2 || on["b"] < 2 {
		t.Fatalf("segments per shard %v: want several on each", on)
	}

	c, err := other.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range receive(t, c, 210) {
		if want := fmt.Sprintf("v-%d", i); string(d.Record.Value) != want {
			t.Fatalf("message %d = %q, want %q", i, d.Record.Value, want)
		}
	}
	c.Close()

	if err := other.DeleteTopic(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
	for _, seg := range pm.Value.Segments {
		c, _ := rr.Shard(ctxT(t), seg.Shard)
		if _, err := c.Info(ctxT(t), seg.Id); !errors.Is(err, bookie.ErrSegmentNotFound) {
			t.Fatalf("segment %d on shard %q after the topic's deletion: %v", seg.Id, seg.Shard, err)
		}
	}
}
