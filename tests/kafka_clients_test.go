package tests

// Compatibility with Kafka clients other than franz-go (which
// kafka_test.go drives): IBM/sarama here, segmentio/kafka-go in
// kafka_kafkago_test.go, and the consumer groups of both in
// kafka_groups_test.go. Each test runs a real `magnetar standalone` and
// checks what a user of the client would see: offsets, order and content.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaCodecs are the record batch compression codecs, by the names used
// in the tests.
var kafkaCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

// servedKafkaAPIs asks the server at addr which API keys it serves, with
// ApiVersions, and returns each served key's highest version.
func servedKafkaAPIs(ctx context.Context, t *testing.T, addr string) map[int16]int16 {
	t.Helper()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, kafkaClient(t, addr))
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions: error code %d", resp.ErrorCode)
	}
	out := map[int16]int16{}
	for _, k := range resp.ApiKeys {
		out[k.ApiKey] = k.MaxVersion
	}
	return out
}

// saramaConfig is a sarama configuration at version v that waits for
// every acknowledgement and reports successes and errors.
func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "magnetar-compat"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// saramaCodecsAt are the codecs sarama allows at version v: zstd needs
// Produce v7 (Kafka 2.1).
func saramaCodecsAt(v sarama.KafkaVersion) []string {
	if v.IsAtLeast(sarama.V2_1_0_0) {
		return kafkaCodecs
	}
	return kafkaCodecs[:4]
}

// consumeSarama reads n messages of one partition from offset with a
// sarama consumer at the given configuration.
func consumeSarama(ctx context.Context, t *testing.T, addr string, cfg *sarama.Config, topic string, partition int32, offset int64, n int) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, partition, offset)
	if err != nil {
		t.Fatalf("sarama: consume %s/%d from %d: %v", topic, partition, offset, err)
	}
	defer pc.Close()
	var out []*sarama.ConsumerMessage
	for len(out) < n {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
		case err := <-pc.Errors():
			t.Fatalf("sarama: consuming %s/%d: %v", topic, partition, err)
		case <-ctx.Done():
			t.Fatalf("sarama: %d of %d messages of %s/%d before the deadline", len(out), n, topic, partition)
		}
	}
	return out
}

// TestKafkaSaramaProducesWithEveryCodecAndConsumesInOrder runs sarama at
// the protocol versions of several Kafka releases, from 0.11 (the first
// with record batches v2, the oldest format Magnetar stores) to the newest
// sarama knows (it lowers its requests to what ApiVersions advertises):
// the admin client creates a topic, a producer sends a batch with each
// codec sarama allows at that version, and a consumer reads the partition
// from the beginning and finds every message at the offset the producer
// was told, in order, with its key, value and headers. The newest and
// oldest offsets agree, and the topic is deleted.
func TestKafkaSaramaProducesWithEveryCodecAndConsumesInOrder(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 3*time.Minute)
	for _, v := range []sarama.KafkaVersion{sarama.V0_11_0_0, sarama.V1_0_0_0, sarama.V2_1_0_0, sarama.DefaultVersion, sarama.MaxVersion} {
		t.Run("kafka "+v.String(), func(t *testing.T) {
			topic := "sarama-" + strings.ReplaceAll(v.String(), ".", "-")
			cfg := saramaConfig(v)
			admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
			if err != nil {
				t.Fatalf("sarama admin: %v", err)
			}
			defer admin.Close()
			if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
				t.Fatalf("create topic: %v", err)
			}

			const partition, perCodec = 1, 10
			var sent []*sarama.ProducerMessage
			for _, codec := range saramaCodecsAt(v) {
				pcfg := saramaConfig(v)
				pcfg.Producer.Compression = saramaCodecs[codec]
				prod, err := sarama.NewSyncProducer([]string{addr}, pcfg)
				if err != nil {
					t.Fatalf("sarama producer: %v", err)
				}
				var msgs []*sarama.ProducerMessage
				for i := range perCodec {
					msgs = append(msgs, &sarama.ProducerMessage{
						Topic: topic, Partition: partition,
						Key:     sarama.StringEncoder(fmt.Sprintf("%s-k%d", codec, i)),
						Value:   sarama.StringEncoder(fmt.Sprintf("%s-v%d", codec, i)),
						Headers: []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(codec)}},
					})
				}
				if err := prod.SendMessages(msgs); err != nil {
					t.Fatalf("producing with %s: %v", codec, err)
				}
				if err := prod.Close(); err != nil {
					t.Fatal(err)
				}
				for i, m := range msgs {
					if want := int64(len(sent) + i); m.Offset != want {
						t.Fatalf("%s message %d was given offset %d, want %d (dense, in order)", codec, i, m.Offset, want)
					}
				}
				sent = append(sent, msgs...)
			}

			got := consumeSarama(ctx, t, addr, cfg, topic, partition, sarama.OffsetOldest, len(sent))
			for i, m := range got {
				w := sent[i]
				wk, _ := w.Key.Encode()
				wv, _ := w.Value.Encode()
				codec := string(w.Headers[0].Value)
				if m.Offset != w.Offset || string(m.Key) != string(wk) || string(m.Value) != string(wv) ||
					len(m.Headers) != 1 || string(m.Headers[0].Key) != "codec" || string(m.Headers[0].Value) != codec {
					t.Fatalf("message %d: offset %d key %q value %q headers %d; want offset %d key %q value %q codec header %q",
						i, m.Offset, m.Key, m.Value, len(m.Headers), w.Offset, wk, wv, codec)
				}
			}

			client, err := sarama.NewClient([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			for _, c := range []struct {
				what       string
				time, want int64
			}{{"newest", sarama.OffsetNewest, int64(len(sent))}, {"oldest", sarama.OffsetOldest, 0}} {
				off, err := client.GetOffset(topic, partition, c.time)
				if err != nil || off != c.want {
					t.Errorf("%s offset: %d (%v), want %d", c.what, off, err, c.want)
				}
			}
			if err := admin.DeleteTopic(topic); err != nil {
				t.Fatalf("delete topic: %v", err)
			}
		})
	}
}

// TestKafkaSaramaIdempotentProducerStoresEachMessageOnce sends with
// sarama's idempotent async producer (InitProducerId, sequence numbers,
// one request in flight) to a topic of three partitions, zstd-compressed,
// and reads every partition back: each message is stored exactly once,
// each key's messages in the order sent, at the offsets the producer was
// told.
func TestKafkaSaramaIdempotentProducerStoresEachMessageOnce(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	const topic, partitions, keys, perKey = "sarama-idempotent", 3, 12, 50
	cfg := saramaConfig(sarama.DefaultVersion)
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}

	pcfg := saramaConfig(sarama.DefaultVersion)
	pcfg.Producer.Idempotent = true
	pcfg.Net.MaxOpenRequests = 1
	pcfg.Producer.Retry.Max = 5
	pcfg.Producer.Partitioner = sarama.NewHashPartitioner
	pcfg.Producer.Compression = sarama.CompressionZSTD
	pcfg.Producer.Flush.Messages = 20
	pcfg.Producer.Flush.Frequency = 5 * time.Millisecond
	prod, err := sarama.NewAsyncProducer([]string{addr}, pcfg)
	if err != nil {
		t.Fatalf("idempotent producer: %v", err)
	}
	total := keys * perKey
	stored := map[string]int64{} // value -> offset the producer was told, per partition below
	partOf := map[string]int32{}
	done := make(chan error, 1)
	go func() {
		for range total {
			select {
			case m := <-prod.Successes():
				v, _ := m.Value.Encode()
				stored[string(v)], partOf[string(v)] = m.Offset, m.Partition
			case err := <-prod.Errors():
				done <- err
				return
			case <-ctx.Done():
				done <- ctx.Err()
				return
			}
		}
		done <- nil
	}()
	for i := range perKey {
		for k := range keys {
			prod.Input() <- &sarama.ProducerMessage{Topic: topic,
				Key: sarama.StringEncoder(fmt.Sprintf("k%d", k)), Value: sarama.StringEncoder(fmt.Sprintf("k%d-%d", k, i))}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("idempotent produce: %v", err)
	}
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}

	count := map[int32]int{}
	for _, p := range partOf {
		count[p]++
	}
	next := map[string]int{} // key -> next sequence expected
	seen := 0
	for p := range int32(partitions) {
		for _, m := range consumeSarama(ctx, t, addr, cfg, topic, p, sarama.OffsetOldest, count[p]) {
			v := string(m.Value)
			if off, ok := stored[v]; !ok || off != m.Offset || partOf[v] != p {
				t.Fatalf("partition %d offset %d holds %q, which the producer was told is at %d/%d", p, m.Offset, v, partOf[v], off)
			}
			if want := fmt.Sprintf("%s-%d", m.Key, next[string(m.Key)]); v != want {
				t.Fatalf("partition %d offset %d: %q, want %q (each key in the order sent)", p, m.Offset, v, want)
			}
			next[string(m.Key)]++
			seen++
		}
		end, err := func() (int64, error) {
			c, err := sarama.NewClient([]string{addr}, cfg)
			if err != nil {
				return 0, err
			}
			defer c.Close()
			return c.GetOffset(topic, p, sarama.OffsetNewest)
		}()
		if err != nil || end != int64(count[p]) {
			t.Fatalf("partition %d ends at %d (%v), want %d: no message stored twice", p, end, err, count[p])
		}
	}
	if seen != total {
		t.Fatalf("read %d messages, sent %d", seen, total)
	}
}

// TestKafkaSaramaClusterAdmin runs sarama's ClusterAdmin calls that need
// no consumer group: DescribeCluster, ListTopics (Metadata, then
// DescribeConfigs of every topic), DescribeTopics, DescribeConfig of a
// topic and of the broker, CreatePartitions (validate only, then for
// real), and DeleteTopic.
func TestKafkaSaramaClusterAdmin(t *testing.T) {
	_, addr := startKafkaServer(t)
	const topic = "sarama-admin"
	cfg := saramaConfig(sarama.DefaultVersion)
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	brokers, controller, err := admin.DescribeCluster()
	if err != nil || len(brokers) != 1 || brokers[0].ID() != controller || brokers[0].Addr() != addr {
		t.Fatalf("DescribeCluster: %d brokers, controller %d, %v; want the one broker at %s, the controller", len(brokers), controller, err, addr)
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err == nil ||
		!strings.Contains(err.Error(), sarama.ErrTopicAlreadyExists.Error()) {
		t.Fatalf("creating the topic again: %v, want %v", err, sarama.ErrTopicAlreadyExists)
	}
	topics, err := admin.ListTopics()
	// ConfigEntries holds only settings that are not defaults (none here),
	// but is made once DescribeConfigs has answered for the topic.
	if err != nil || topics[topic].NumPartitions != 2 || topics[topic].ConfigEntries == nil {
		t.Fatalf("ListTopics: %+v %v; want %s with 2 partitions, described", topics[topic], err, topic)
	}
	described, err := admin.DescribeConfigs([]*sarama.ConfigResource{
		{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"max.message.bytes"}},
		{Type: sarama.BrokerResource, Name: fmt.Sprint(controller)},
	}, sarama.DescribeConfigsOptions{IncludeDocumentation: true})
	if err != nil || len(described) != 2 {
		t.Fatalf("DescribeConfigs: %+v %v", described, err)
	}
	if r := described[0]; r.ErrorCode != sarama.ErrNoError || len(r.Configs) != 1 || r.Configs[0].Value == "" || r.Configs[0].Documentation == nil {
		t.Fatalf("DescribeConfigs of the topic's max.message.bytes: %+v", r)
	}
	if r := described[1]; r.ErrorCode != sarama.ErrNoError || len(r.Configs) == 0 {
		t.Fatalf("DescribeConfigs of the broker: %+v", r)
	}
	if err := admin.CreatePartitions(topic, 4, nil, true); err != nil {
		t.Fatalf("CreatePartitions, validate only: %v", err)
	}
	if err := admin.CreatePartitions(topic, 4, nil, false); err != nil {
		t.Fatalf("CreatePartitions: %v", err)
	}
	if err := admin.CreatePartitions(topic, 3, nil, false); err == nil {
		t.Fatal("CreatePartitions to fewer partitions succeeded")
	}
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != 4 {
		t.Fatalf("DescribeTopics after CreatePartitions: %+v %v; want 4 partitions", md, err)
	}
	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTopic(topic); err == nil {
		t.Fatal("deleting the topic again succeeded")
	}
}

// TestKafkaClientsProduceWithEveryAcksSetting produces with sarama and
// kafka-go's Writer at acks 0 (no response), 1 and all, including records
// with a null key, a null value (a tombstone) and no headers, and reads
// them back with sarama: acks=0 is stored like the rest, and null stays
// null.
func TestKafkaClientsProduceWithEveryAcksSetting(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	const topic = "acks"
	var want []string // "<key>=<value>", with "null" for a null key or value
	client, err := sarama.NewClient([]string{addr}, saramaConfig(sarama.DefaultVersion))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// stored waits until every message so far is stored: with acks=0
	// nothing says so, and the next producer's connection must not
	// overtake them.
	stored := func() {
		t.Helper()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d messages stored", len(want)), func() bool {
			end, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
			return err == nil && end == int64(len(want))
		})
	}
	for _, acks := range []sarama.RequiredAcks{sarama.NoResponse, sarama.WaitForLocal, sarama.WaitForAll} {
		cfg := saramaConfig(sarama.DefaultVersion)
		cfg.Producer.RequiredAcks = acks
		cfg.Producer.Return.Successes = true
		prod, err := sarama.NewAsyncProducer([]string{addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("sarama-acks%d", acks)
		msgs := []*sarama.ProducerMessage{
			{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder("v")},
			{Topic: topic, Value: sarama.StringEncoder(k + "-nokey")},
			{Topic: topic, Key: sarama.StringEncoder(k + "-tombstone")},
		}
		want = append(want, k+"=v", "null="+k+"-nokey", k+"-tombstone=null")
		for _, m := range msgs {
			prod.Input() <- m
			select { // one at a time, so that they are stored in this order
			case <-prod.Successes():
			case err := <-prod.Errors():
				t.Fatalf("sarama acks=%d: %v", acks, err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		if err := prod.Close(); err != nil {
			t.Fatal(err)
		}
		stored()
	}
	for _, acks := range []kafkago.RequiredAcks{kafkago.RequireNone, kafkago.RequireOne, kafkago.RequireAll} {
		w := &kafkago.Writer{Addr: kafkago.TCP(addr), Topic: topic, RequiredAcks: acks, BatchTimeout: time.Millisecond}
		k := fmt.Sprintf("kafkago-acks%d", acks)
		for _, m := range []kafkago.Message{{Key: []byte(k), Value: []byte("v")}, {Value: []byte(k + "-nokey")}, {Key: []byte(k + "-tombstone")}} {
			if err := w.WriteMessages(ctx, m); err != nil {
				t.Fatalf("kafka-go acks=%d: %v", acks, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(want, k+"=v", "null="+k+"-nokey", k+"-tombstone=null")
		stored()
	}

	orNull := func(b []byte) string {
		if b == nil {
			return "null"
		}
		return string(b)
	}
	got := consumeSarama(ctx, t, addr, saramaConfig(sarama.DefaultVersion), topic, 0, sarama.OffsetOldest, len(want))
	for i, m := range got {
		if s := orNull(m.Key) + "=" + orNull(m.Value); m.Offset != int64(i) || s != want[i] {
			t.Fatalf("offset %d: %s, want %s at offset %d", m.Offset, s, want[i], i)
		}
	}
}
