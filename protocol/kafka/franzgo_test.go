package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests drive the server with franz-go, an unmodified Kafka client,
// as users will.

func newClient(t testing.TB, ts *testServer, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ts.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestFranzGoCreatesProducesWithEveryCodecAndConsumes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	adm := kadm.NewClient(newClient(t, ts))
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "codecs"); err != nil {
		t.Fatal(err)
	}
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	want := map[string]bool{}
	for i, codec := range codecs {
		p := newClient(t, ts, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("codecs"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var recs []*kgo.Record
		for j := range 20 {
			v := fmt.Sprintf("codec%d-%d", i, j)
			want[v] = true
			recs = append(recs, &kgo.Record{Value: []byte(v), Partition: int32(j % 3)})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("codec %d: %v", i, err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, "codecs")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(len(want)) {
		t.Fatalf("end offsets add up to %d, produced %d", total, len(want))
	}

	c := newClient(t, ts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"codecs": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart()},
	}))
	got := map[string]bool{}
	next := map[int32]int64{}
	for len(got) < len(want) {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d (offsets are dense)", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			got[string(r.Value)] = true
		})
	}
	for v := range want {
		if !got[v] {
			t.Fatalf("%s was not consumed", v)
		}
	}

	if _, err := adm.DeleteTopic(ctx, "codecs"); err != nil {
		t.Fatal(err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("codecs") {
		t.Fatal("the topic is still listed after its deletion")
	}
}

func TestFranzGoIdempotentProducerGetsAProducerID(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := ctxT(t)
	// kgo is idempotent by default; auto creation makes the topic.
	p := newClient(t, ts, kgo.DefaultProduceTopic("idempotent"), kgo.AllowAutoTopicCreation())
	for i := range 50 {
		p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, ts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"idempotent": {0: kgo.NewOffset().AtStart()}}))
	n := 0
	for n < 50 {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.ProducerID < 0 {
				t.Fatalf("record %d has no producer ID: the producer was not idempotent", r.Offset)
			}
			if want := fmt.Sprint(n); string(r.Value) != want {
				t.Fatalf("record %d is %q, want %q", r.Offset, r.Value, want)
			}
			n++
		})
	}
}

func TestFranzGoListOffsetsByTime(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := ctxT(t)
	adm := kadm.NewClient(newClient(t, ts))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "times"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, ts, kgo.DefaultProduceTopic("times"))
	for i, ts := range []int64{1000, 2000, 3000} {
		r := &kgo.Record{Value: fmt.Appendf(nil, "%d", i), Timestamp: timeMillis(ts)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		at, want int64
	}{{500, 0}, {1500, 1}, {3000, 2}, {3001, -1}} {
		l, err := adm.ListOffsetsAfterMilli(ctx, tc.at, "times")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := l.Lookup("times", 0)
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		// kadm turns "no such record" (-1) into the end offset.
		want := tc.want
		if want == -1 {
			want = 3
		}
		if o.Offset != want {
			t.Errorf("first record at or after %d ms: offset %d, want %d", tc.at, o.Offset, want)
		}
	}
	start, err := adm.ListStartOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup("times", 0); o.Offset != 0 {
		t.Fatalf("start offset %d, want 0", o.Offset)
	}
}
