package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkFranzGoProduceConsume measures the adapter with franz-go over
// loopback on a broker with in-memory stores (no disk, no Raft): the cost
// of the protocol layer, not of durability. 1 KiB records, acks=all.
func BenchmarkFranzGoProduceConsume(b *testing.B) {
	ts := newTestServer(b)
	ctx := context.Background()
	if _, err := kadm.NewClient(newClient(b, ts)).CreateTopic(ctx, 1, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	p := newClient(b, ts, kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(0))
	value := make([]byte, 1024)
	b.Run("produce", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		for b.Loop() {
			p.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	})
	end, err := kadm.NewClient(newClient(b, ts)).ListEndOffsets(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	total, _ := end.Lookup("bench", 0)
	b.Run("consume", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		if total.Offset == 0 {
			b.Fatal("nothing to consume")
		}
		newConsumer := func() *kgo.Client {
			c, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"bench": {0: kgo.NewOffset().AtStart()}}))
			if err != nil {
				b.Fatal(err)
			}
			return c
		}
		c := newConsumer()
		defer func() { c.Close() }()
		var buffered, consumed int64
		for b.Loop() {
			if consumed == total.Offset { // read it all: start over
				c.Close()
				c, buffered, consumed = newConsumer(), 0, 0
			}
			for buffered == 0 {
				fs := c.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					b.Fatal(err)
				}
				buffered = int64(fs.NumRecords())
			}
			buffered--
			consumed++
		}
	})
}
