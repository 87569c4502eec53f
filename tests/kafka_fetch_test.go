package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Fetch paths that clients rely on beyond reading a full partition: long
// polls at the end of a partition, offsets out of range, and batches larger
// than the client's fetch limits.

// createTopicKafkago creates a topic of one partition and returns a
// connection to its leader.
func createTopicKafkago(ctx context.Context, t *testing.T, addr, topic string) *kafkago.Conn {
	t.Helper()
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
	t.Cleanup(func() { leader.Close() })
	return leader
}

// TestKafkaClientsWaitingAtTheEndGetNewMessages starts a sarama
// partition consumer, a kafka-go Reader and a kafka-go Conn fetch (each
// waiting up to longPoll) at the end of an empty partition, then produces
// one message: each of them receives it. (sarama's and kafka-go's Close
// wait for their fetch in flight, so longPoll is short.)
func TestKafkaClientsWaitingAtTheEndGetNewMessages(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, time.Minute)
	const topic, longPoll = "long-poll", 2 * time.Second
	leader := createTopicKafkago(ctx, t, addr, topic)

	cfg := saramaConfig(sarama.DefaultVersion)
	cfg.Consumer.MaxWaitTime = longPoll
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: longPoll})
	defer r.Close()
	readerGot := make(chan kafkago.Message, 1)
	readerErr := make(chan error, 1)
	go func() {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			readerErr <- err
			return
		}
		readerGot <- m
	}()

	fetcher, err := kafkago.DialLeader(ctx, "tcp", addr, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fetcher.Close()
	if err := fetcher.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	connGot := make(chan []byte, 1)
	connErr := make(chan error, 1)
	go func() {
		b := fetcher.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: 1 << 20, MaxWait: longPoll})
		defer b.Close()
		m, err := b.ReadMessage()
		if err != nil {
			connErr <- err
			return
		}
		connGot <- m.Value
	}()

	if _, err := leader.WriteMessages(kafkago.Message{Value: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-pc.Messages():
		if m.Offset != 0 || string(m.Value) != "late" {
			t.Fatalf("sarama got offset %d %q", m.Offset, m.Value)
		}
	case err := <-pc.Errors():
		t.Fatalf("sarama: %v", err)
	case <-ctx.Done():
		t.Fatal("sarama did not get the message")
	}
	select {
	case m := <-readerGot:
		if m.Offset != 0 || string(m.Value) != "late" {
			t.Fatalf("kafka-go Reader got offset %d %q", m.Offset, m.Value)
		}
	case err := <-readerErr:
		t.Fatalf("kafka-go Reader: %v", err)
	}
	select {
	case v := <-connGot:
		if string(v) != "late" {
			t.Fatalf("kafka-go Conn got %q", v)
		}
	case err := <-connErr:
		t.Fatalf("kafka-go Conn: %v", err)
	}
}

// TestKafkaClientsSeeOffsetsOutOfRange asks for offset 100 of a
// partition of ten messages: sarama refuses to start there, kafka-go's
// Conn gets OFFSET_OUT_OF_RANGE from the fetch, and franz-go resets to
// the start as configured.
func TestKafkaClientsSeeOffsetsOutOfRange(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, time.Minute)
	const topic = "out-of-range"
	leader := createTopicKafkago(ctx, t, addr, topic)
	for i := range 10 {
		if _, err := leader.WriteMessages(kafkago.Message{Value: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	consumer, err := sarama.NewConsumer([]string{addr}, saramaConfig(sarama.DefaultVersion))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	if pc, err := consumer.ConsumePartition(topic, 0, 100); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		if pc != nil {
			pc.Close()
		}
		t.Fatalf("sarama from offset 100 of 10: %v, want %v", err, sarama.ErrOffsetOutOfRange)
	}

	if _, err := leader.Seek(100, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
		t.Fatal(err)
	}
	if err := leader.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := leader.ReadBatch(1, 1<<20)
	if _, err := b.ReadMessage(); !errors.Is(err, kafkago.OffsetOutOfRange) {
		t.Fatalf("kafka-go Conn fetch from offset 100 of 10: %v, want %v", err, kafkago.OffsetOutOfRange)
	}
	b.Close()

	cl := kafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(100)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	if recs := fs.Records(); len(recs) == 0 || recs[0].Offset != 0 {
		t.Fatalf("franz-go from offset 100 of 10, reset to the start: %d records, first %v", len(recs), recs)
	}
}

// TestKafkaClientsReadBatchesLargerThanTheirFetchLimits writes batches of
// 64 KiB and reads them with clients whose fetch limits are 1 KiB: the
// server answers with at least one whole batch regardless (KIP-74), and
// each client reads every record.
func TestKafkaClientsReadBatchesLargerThanTheirFetchLimits(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	const topic, batches, perBatch = "big-batches", 4, 8
	leader := createTopicKafkago(ctx, t, addr, topic)
	var values [][]byte
	for range batches {
		msgs := make([]kafkago.Message, perBatch)
		for i := range msgs {
			v := make([]byte, 8<<10)
			_, _ = rand.Read(v) // incompressible
			msgs[i].Value = v
			values = append(values, v)
		}
		if _, err := leader.WriteMessages(msgs...); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, client string, i int, off int64, v []byte) {
		t.Helper()
		if off != int64(i) || !bytes.Equal(v, values[i]) {
			t.Fatalf("%s: record %d at offset %d, %d bytes; want offset %d and the value written", client, i, off, len(v), i)
		}
	}

	t.Run("sarama", func(t *testing.T) {
		cfg := saramaConfig(sarama.DefaultVersion)
		cfg.Consumer.Fetch.Min = 1
		cfg.Consumer.Fetch.Default = 1 << 10
		cfg.Consumer.Fetch.Max = 1 << 10
		for i, m := range consumeSarama(ctx, t, addr, cfg, topic, 0, sarama.OffsetOldest, len(values)) {
			check(t, "sarama", i, m.Offset, m.Value)
		}
	})
	t.Run("kafka-go Reader", func(t *testing.T) {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0,
			MinBytes: 1, MaxBytes: 1 << 10, MaxWait: 100 * time.Millisecond})
		defer r.Close()
		for i := range values {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "kafka-go Reader", i, m.Offset, m.Value)
		}
	})
	t.Run("franz-go", func(t *testing.T) {
		cl := kafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxBytes(1<<10), kgo.FetchMaxPartitionBytes(1<<10))
		var got []*kgo.Record
		for len(got) < len(values) {
			fs := cl.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			got = append(got, fs.Records()...)
		}
		for i, r := range got {
			check(t, "franz-go", i, r.Offset, r.Value)
		}
	})
}
