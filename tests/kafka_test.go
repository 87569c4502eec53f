package tests

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// startKafkaServer starts a standalone whose Kafka listener is on a known
// address and returns the server and that address.
func startKafkaServer(t *testing.T, extraArgs ...string) (*server, string) {
	t.Helper()
	skipIfShort(t)
	addr := nettest.FreeAddr(t)
	srv := startServer(t, t.TempDir(), append([]string{"--kafka.listen-addr", addr}, extraArgs...)...)
	return srv, addr
}

func kafkaClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeKafka reads n records from the start of the topic's partitions,
// without a consumer group.
func consumeKafka(ctx context.Context, t *testing.T, addr, topic string, partitions int32, n int) []*kgo.Record {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	c := kafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consuming %s: %v", topic, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// TestKafkaClientsCreateProduceWithEveryCodecConsumeAndDelete drives a real
// standalone with franz-go's client and admin client, as a Kafka user
// would: create a topic, produce with each compression codec, read it back
// from each partition without a group, list offsets, delete the topic.
func TestKafkaClientsCreateProduceWithEveryCodecConsumeAndDelete(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	adm := kadm.NewClient(kafkaClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	want := map[string]bool{}
	for name, codec := range codecs {
		p := kafkaClient(t, addr, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("orders"))
		var recs []*kgo.Record
		for i := range 30 {
			v := fmt.Sprintf("%s-%d", name, i)
			want[v] = true
			recs = append(recs, &kgo.Record{Key: []byte(v), Value: []byte(v)})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("producing with %s: %v", name, err)
		}
	}
	got := consumeKafka(ctx, t, addr, "orders", 3, len(want))
	next := map[int32]int64{}
	for _, r := range got {
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d after %d: offsets must be dense", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition]++
		if !want[string(r.Value)] {
			t.Fatalf("unexpected record %q", r.Value)
		}
		delete(want, string(r.Value))
	}
	if len(want) != 0 {
		t.Fatalf("%d records were not consumed", len(want))
	}

	ends, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset != next[o.Partition] {
			t.Errorf("partition %d: end offset %d (%v), consumed up to %d", o.Partition, o.Offset, o.Err, next[o.Partition])
		}
	})
	resp, err := adm.DeleteTopic(ctx, "orders")
	if err != nil || resp.Err != nil {
		t.Fatalf("delete: %v %v", err, resp.Err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("orders") {
		t.Fatal("the deleted topic is still listed")
	}
}

// TestKafkaAndNativeClientsShareOneLog produces over Kafka and consumes
// with the native Go client, and the reverse: same topic, same offsets,
// same keys, values and headers.
func TestKafkaAndNativeClientsShareOneLog(t *testing.T) {
	srv, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	nc, err := client.New(client.Options{Address: srv.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// Kafka to native.
	kp := kafkaClient(t, addr, kgo.DefaultProduceTopic("k2n"), kgo.AllowAutoTopicCreation())
	for i := range 10 {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}}}
		if err := kp.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := nc.Subscribe(ctx, client.ConsumerOptions{Topic: "k2n", Subscription: "native", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range 10 {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) || string(m.Value) != fmt.Sprintf("v%d", i) || m.Properties["h"] != fmt.Sprint(i) {
			t.Fatalf("native consumer got offset %d key %q value %q properties %v; want offset %d", m.ID.Offset, m.Key, m.Value, m.Properties, i)
		}
		cons.Ack(m)
	}

	// Native to Kafka.
	np, err := nc.CreateProducer(ctx, client.ProducerOptions{Topic: "n2k"})
	if err != nil {
		t.Fatal(err)
	}
	defer np.Close()
	for i := range 10 {
		if _, err := np.Send(ctx, &client.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i), Properties: map[string]string{"h": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	recs := consumeKafka(ctx, t, addr, "n2k", 1, 10)
	for i, r := range recs[:10] {
		if r.Offset != int64(i) || string(r.Key) != fmt.Sprintf("k%d", i) || string(r.Value) != fmt.Sprintf("v%d", i) ||
			len(r.Headers) != 1 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != fmt.Sprint(i) {
			t.Fatalf("Kafka consumer got offset %d key %q value %q headers %v; want offset %d", r.Offset, r.Key, r.Value, r.Headers, i)
		}
	}
}

// TestKcatProducesAndConsumes runs kcat (librdkafka), the fussiest common
// client: it negotiates versions with ApiVersions and probes Produce v0.
func TestKcatProducesAndConsumes(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat)")
	}
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", addr}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var want strings.Builder
	offset := 0
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		var in strings.Builder
		for i := range 3 {
			fmt.Fprintf(&in, "%s%d:%s-value-%d\n", codec, i, codec, i)
			fmt.Fprintf(&want, "%d %s%d %s-value-%d\n", offset, codec, i, codec, i)
			offset++
		}
		run(in.String(), "-P", "-t", "kcat", "-K:", "-z", codec, "-X", "enable.idempotence=true")
	}
	got := run("", "-C", "-t", "kcat", "-o", "beginning", "-e", "-q", "-f", `%o %k %s\n`)
	if got != want.String() {
		t.Fatalf("kcat consumed:\n%s\nwant:\n%s", got, want.String())
	}
	if end := run("", "-Q", "-t", "kcat:0:-1"); !strings.Contains(end, fmt.Sprintf("offset %d", offset)) {
		t.Fatalf("kcat -Q latest: %q, want offset %d", end, offset)
	}
}
