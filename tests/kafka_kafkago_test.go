package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

var kafkagoCodecs = map[string]kafkago.Compression{
	"gzip": kafkago.Gzip, "snappy": kafkago.Snappy, "lz4": kafkago.Lz4, "zstd": kafkago.Zstd,
}

// kafkagoCodec returns kafka-go's codec of a name in kafkaCodecs; nil is
// no compression.
func kafkagoCodec(name string) kafkago.CompressionCodec {
	if name == "none" {
		return nil
	}
	return kafkagoCodecs[name].Codec()
}

// writeBatches writes, through c (a connection to the partition's leader),
// one record batch of n messages per codec, in kafkaCodecs order; message
// i of batch b has key "b-i" and value "<codec>-i". It returns each
// batch's base offset.
func writeBatches(t *testing.T, c *kafkago.Conn, n int) []int64 {
	t.Helper()
	var bases []int64
	for b, codec := range kafkaCodecs {
		msgs := make([]kafkago.Message, n)
		for i := range msgs {
			msgs[i] = kafkago.Message{Key: fmt.Appendf(nil, "%d-%d", b, i), Value: fmt.Appendf(nil, "%s-%d", codec, i),
				Headers: []kafkago.Header{{Key: "codec", Value: []byte(codec)}}}
		}
		_, _, base, _, err := c.WriteCompressedMessagesAt(kafkagoCodec(codec), msgs...)
		if err != nil {
			t.Fatalf("kafka-go: writing a %s batch: %v", codec, err)
		}
		bases = append(bases, base)
	}
	return bases
}

// TestKafkaGoConnAPI drives a partition with kafka-go's low-level Conn.
// Several of its calls send fixed old versions without asking ApiVersions
// first (Brokers and Controller: Metadata v1; ReadFirstOffset,
// ReadLastOffset, ReadOffset: ListOffsets v1), so they come first on a
// fresh connection; CreateTopics, Produce (v7) and Fetch (v10) are
// negotiated. One batch per codec is written, read back from the start
// with ReadBatch, and the offsets by time, first and last agree.
func TestKafkaGoConnAPI(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	const topic, perBatch = "kafkago-conn", 8

	// Non-negotiated requests on a fresh connection.
	c, err := kafkago.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers, err := c.Brokers()
	if err != nil || len(brokers) != 1 || net.JoinHostPort(brokers[0].Host, strconv.Itoa(brokers[0].Port)) != addr {
		t.Fatalf("Brokers (Metadata v1): %+v %v, want the one broker at %s", brokers, err, addr)
	}
	ctrl, err := c.Controller()
	if err != nil || ctrl.ID != brokers[0].ID {
		t.Fatalf("Controller (Metadata v1): %+v %v, want broker %d", ctrl, err, brokers[0].ID)
	}
	if err := c.CreateTopics(kafkago.TopicConfig{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	parts, err := c.ReadPartitions(topic)
	if err != nil || len(parts) != 2 {
		t.Fatalf("ReadPartitions: %+v %v, want 2 partitions", parts, err)
	}
	all, err := c.ReadPartitions() // every topic
	if err != nil || !slices.ContainsFunc(all, func(p kafkago.Partition) bool { return p.Topic == topic && p.ID == 1 }) {
		t.Fatalf("ReadPartitions of every topic: %+v %v, want %s's two partitions among them", all, err, topic)
	}

	leader, err := kafkago.DialLeader(ctx, "tcp", addr, topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	if first, err := leader.ReadFirstOffset(); err != nil || first != 0 {
		t.Fatalf("ReadFirstOffset (ListOffsets v1) of an empty partition: %d %v", first, err)
	}
	start := time.Now().Add(-time.Second)
	bases := writeBatches(t, leader, perBatch)
	for b, base := range bases {
		if base != int64(b*perBatch) {
			t.Fatalf("batch %d written at offset %d, want %d", b, base, b*perBatch)
		}
	}
	total := int64(len(bases) * perBatch)
	if first, last, err := leader.ReadOffsets(); err != nil || first != 0 || last != total {
		t.Fatalf("ReadOffsets (ListOffsets v1): %d %d %v, want 0 %d", first, last, err, total)
	}
	if off, err := leader.ReadOffset(start); err != nil || off != 0 {
		t.Fatalf("ReadOffset(a time before the first record) (ListOffsets v1): %d %v, want 0", off, err)
	}

	if _, err := leader.Seek(0, kafkago.SeekAbsolute); err != nil {
		t.Fatal(err)
	}
	got := readConn(t, leader, int(total))
	for i, m := range got {
		b, r := i/perBatch, i%perBatch
		codec := kafkaCodecs[b]
		if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("%d-%d", b, r) || string(m.Value) != fmt.Sprintf("%s-%d", codec, r) ||
			len(m.Headers) != 1 || string(m.Headers[0].Value) != codec {
			t.Fatalf("message %d: offset %d key %q value %q headers %v", i, m.Offset, m.Key, m.Value, m.Headers)
		}
	}

	if err := c.DeleteTopics(topic); err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
}

// readConn reads n messages from c's current offset with ReadBatch.
func readConn(t *testing.T, c *kafkago.Conn, n int) []kafkago.Message {
	t.Helper()
	var out []kafkago.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("kafka-go Conn: %d of %d messages before the deadline", len(out), n)
		}
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		batch := c.ReadBatch(1, 10<<20)
		for len(out) < n {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			out = append(out, m)
		}
		if err := batch.Close(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("kafka-go Conn: reading a batch: %v", err)
		}
	}
	return out
}

// TestKafkaGoWriterAndReaderWithEveryCodec produces with kafka-go's
// Writer (its Transport negotiates versions) in each codec and reads the
// partition from the first offset with a Reader without a group: every
// message at its offset, in order.
func TestKafkaGoWriterAndReaderWithEveryCodec(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	const topic, perCodec = "kafkago-writer", 10
	var want []string
	for _, codec := range kafkaCodecs {
		w := &kafkago.Writer{Addr: kafkago.TCP(addr), Topic: topic, RequiredAcks: kafkago.RequireAll,
			AllowAutoTopicCreation: true, BatchTimeout: 10 * time.Millisecond, BatchSize: perCodec}
		if codec != "none" {
			w.Compression = kafkagoCodecs[codec]
		}
		var msgs []kafkago.Message
		for i := range perCodec {
			v := fmt.Sprintf("%s-%d", codec, i)
			msgs = append(msgs, kafkago.Message{Key: []byte(v), Value: []byte(v)})
			want = append(want, v)
		}
		if err := writeWithRetry(ctx, w, msgs); err != nil {
			t.Fatalf("kafka-go Writer with %s: %v", codec, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i, v := range want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go Reader, message %d: %v", i, err)
		}
		if m.Offset != int64(i) || string(m.Value) != v || string(m.Key) != v {
			t.Fatalf("kafka-go Reader, message %d: offset %d value %q, want %q", i, m.Offset, m.Value, v)
		}
	}
}

// writeWithRetry writes msgs, retrying while the topic, created by the
// first Metadata request, is not yet known to the Writer.
func writeWithRetry(ctx context.Context, w *kafkago.Writer, msgs []kafkago.Message) error {
	for {
		err := w.WriteMessages(ctx, msgs...)
		if !errors.Is(err, kafkago.UnknownTopicOrPartition) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestKafkaClientsFetchFromTheMiddleOfABatch writes one batch of ten
// records per codec (kafka-go's Conn writes exactly one batch per call),
// then starts reading at the fourth record of each batch with each
// client: Magnetar answers with the whole stored batch, and the client
// must skip the records before its offset. Each client's first message
// is the one asked for, and the rest of the partition follows in order.
func TestKafkaClientsFetchFromTheMiddleOfABatch(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 3*time.Minute)
	const topic, perBatch, skip = "mid-batch", 10, 3
	c, err := kafkago.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopics(kafkago.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	leader, err := kafkago.DialLeader(ctx, "tcp", addr, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	bases := writeBatches(t, leader, perBatch)
	total := int64(len(bases) * perBatch)
	valueAt := func(off int64) string {
		return fmt.Sprintf("%s-%d", kafkaCodecs[off/perBatch], off%perBatch)
	}
	check := func(t *testing.T, client string, from, off int64, value []byte) {
		t.Helper()
		if string(value) != valueAt(off) {
			t.Fatalf("%s from offset %d: offset %d holds %q, want %q", client, from, off, value, valueAt(off))
		}
	}

	for b, base := range bases {
		from := base + skip
		t.Run(kafkaCodecs[b], func(t *testing.T) {
			n := int(total - from)

			t.Run("sarama", func(t *testing.T) {
				got := consumeSarama(ctx, t, addr, saramaConfig(sarama.DefaultVersion), topic, 0, from, n)
				for i, m := range got {
					if m.Offset != from+int64(i) {
						t.Fatalf("sarama from offset %d: message %d at offset %d", from, i, m.Offset)
					}
					check(t, "sarama", from, m.Offset, m.Value)
				}
			})
			t.Run("kafka-go Conn", func(t *testing.T) {
				if _, err := leader.Seek(from, kafkago.SeekAbsolute); err != nil {
					t.Fatal(err)
				}
				for i, m := range readConn(t, leader, n) {
					if m.Offset != from+int64(i) {
						t.Fatalf("kafka-go Conn from offset %d: message %d at offset %d", from, i, m.Offset)
					}
					check(t, "kafka-go Conn", from, m.Offset, m.Value)
				}
			})
			t.Run("kafka-go Reader", func(t *testing.T) {
				r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0,
					MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
				defer r.Close()
				if err := r.SetOffset(from); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if m.Offset != from+int64(i) {
						t.Fatalf("kafka-go Reader from offset %d: message %d at offset %d", from, i, m.Offset)
					}
					check(t, "kafka-go Reader", from, m.Offset, m.Value)
				}
			})
			t.Run("franz-go", func(t *testing.T) {
				cl := kafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}))
				var got []*kgo.Record
				for len(got) < n {
					fs := cl.PollFetches(ctx)
					if err := fs.Err(); err != nil {
						t.Fatal(err)
					}
					got = append(got, fs.Records()...)
				}
				for i, r := range got {
					if r.Offset != from+int64(i) {
						t.Fatalf("franz-go from offset %d: record %d at offset %d", from, i, r.Offset)
					}
					check(t, "franz-go", from, r.Offset, r.Value)
				}
			})
		})
	}
}

// TestKafkaGoClientSpeaksEveryServedAPI goes through kafka-go's Client,
// whose own codec (package protocol) negotiates each API's version with
// ApiVersions and decodes responses strictly: ApiVersions, CreateTopics,
// Metadata, Produce in each codec, Fetch from the start and from inside a
// batch, ListOffsets (first, last, by time), DescribeConfigs,
// CreatePartitions, InitProducerID and DeleteTopics all answer what a
// Kafka broker would.
func TestKafkaGoClientSpeaksEveryServedAPI(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	const topic, perBatch = "kafkago-client", 5
	// Each Client has its own Transport: kafka-go's default one is shared
	// and answers Metadata from a cache.
	newClient := func() *kafkago.Client {
		tr := &kafkago.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: 30 * time.Second, Transport: tr}
	}
	cl := newClient()

	av, err := cl.ApiVersions(ctx, &kafkago.ApiVersionsRequest{})
	if err != nil || av.Error != nil || len(av.ApiKeys) == 0 {
		t.Fatalf("ApiVersions: %+v %v", av, err)
	}
	ct, err := cl.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil || ct.Errors[topic] != nil {
		t.Fatalf("CreateTopics: %v %v", err, ct.Errors)
	}
	partitionsOf := func() int {
		t.Helper()
		md, err := newClient().Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Brokers) != 1 {
			t.Fatalf("Metadata: %+v %v", md, err)
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Leader.ID != md.Brokers[0].ID || p.Leader.Port == 0 {
				t.Fatalf("Metadata: partition %d led by %+v, want broker %+v", p.ID, p.Leader, md.Brokers[0])
			}
		}
		return len(md.Topics[0].Partitions)
	}
	if n := partitionsOf(); n != 1 {
		t.Fatalf("Metadata: %d partitions, want 1", n)
	}

	before := time.Now().Add(-time.Second)
	for b, codec := range kafkaCodecs {
		recs := make([]kafkago.Record, perBatch)
		for i := range recs {
			recs[i] = kafkago.Record{Key: kafkago.NewBytes(fmt.Appendf(nil, "%s-k%d", codec, i)),
				Value: kafkago.NewBytes(fmt.Appendf(nil, "%s-%d", codec, i))}
		}
		req := &kafkago.ProduceRequest{Topic: topic, Partition: 0, RequiredAcks: kafkago.RequireAll, Records: kafkago.NewRecordReader(recs...)}
		if codec != "none" {
			req.Compression = kafkagoCodecs[codec]
		}
		resp, err := cl.Produce(ctx, req)
		if err != nil || resp.Error != nil || resp.BaseOffset != int64(b*perBatch) {
			t.Fatalf("Produce with %s: %+v %v, want base offset %d", codec, resp, err, b*perBatch)
		}
	}
	total := int64(len(kafkaCodecs) * perBatch)

	for _, from := range []int64{0, perBatch + 2} {
		var got []string
		for off := from; off < total; {
			resp, err := cl.Fetch(ctx, &kafkago.FetchRequest{Topic: topic, Partition: 0, Offset: off, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: time.Second})
			if err != nil || resp.Error != nil || resp.HighWatermark != total {
				t.Fatalf("Fetch from %d: %+v %v", off, resp, err)
			}
			for {
				r, err := resp.Records.ReadRecord()
				if err != nil {
					break
				}
				v, _ := kafkago.ReadAll(r.Value)
				if r.Offset < off { // the client skips what precedes its offset in a batch
					continue
				}
				if r.Offset != off {
					t.Fatalf("Fetch from %d: record at offset %d after %d", from, r.Offset, off-1)
				}
				got = append(got, string(v))
				off++
			}
		}
		for i, v := range got {
			o := from + int64(i)
			if want := fmt.Sprintf("%s-%d", kafkaCodecs[o/perBatch], o%perBatch); v != want {
				t.Fatalf("Fetch from %d: offset %d holds %q, want %q", from, o, v, want)
			}
		}
	}

	lo, err := cl.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		topic: {kafkago.FirstOffsetOf(0), kafkago.LastOffsetOf(0), kafkago.TimeOffsetOf(0, before)}}})
	if err != nil || len(lo.Topics[topic]) != 1 {
		t.Fatalf("ListOffsets: %+v %v", lo, err)
	}
	po := lo.Topics[topic][0]
	if po.Error != nil || po.FirstOffset != 0 || po.LastOffset != total {
		t.Fatalf("ListOffsets: %+v, want first 0 last %d", po, total)
	}
	if _, ok := po.Offsets[0]; !ok {
		t.Fatalf("ListOffsets by a time before every record: %v, want offset 0", po.Offsets)
	}

	dc, err := cl.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{
		{ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"cleanup.policy"}},
		{ResourceType: kafkago.ResourceTypeBroker, ResourceName: "0"}}})
	if err != nil || len(dc.Resources) != 2 {
		t.Fatalf("DescribeConfigs: %+v %v", dc, err)
	}
	for _, r := range dc.Resources { // kafka-go does not keep the request's order
		switch {
		case r.Error != nil:
			t.Fatalf("DescribeConfigs of %d %q: %v", r.ResourceType, r.ResourceName, r.Error)
		case r.ResourceType == int8(kafkago.ResourceTypeTopic):
			if r.ResourceName != topic || len(r.ConfigEntries) != 1 || r.ConfigEntries[0].ConfigValue != "delete" {
				t.Fatalf("DescribeConfigs of the topic's cleanup.policy: %+v", r)
			}
		case r.ResourceName != "0" || len(r.ConfigEntries) == 0:
			t.Fatalf("DescribeConfigs of broker 0: %+v", r)
		}
	}

	cp, err := cl.CreatePartitions(ctx, &kafkago.CreatePartitionsRequest{Topics: []kafkago.TopicPartitionsConfig{{Name: topic, Count: 3}}})
	if err != nil || cp.Errors[topic] != nil {
		t.Fatalf("CreatePartitions: %v %v", err, cp.Errors)
	}
	if n := partitionsOf(); n != 3 {
		t.Fatalf("Metadata after CreatePartitions: %d partitions, want 3", n)
	}

	ip, err := cl.InitProducerID(ctx, &kafkago.InitProducerIDRequest{TransactionTimeoutMs: 10000, ProducerID: -1, ProducerEpoch: -1})
	if err != nil || ip.Error != nil || ip.Producer == nil || ip.Producer.ProducerID < 0 {
		t.Fatalf("InitProducerID: %+v %v", ip, err)
	}

	dt, err := cl.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || dt.Errors[topic] != nil {
		t.Fatalf("DeleteTopics: %v %v", err, dt.Errors)
	}
}
