package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/magnetar-mq/magnetar/client"
)

// The workload: producers with unique names send messages whose value
// starts with "<producer>:<sequence>:", so every message is identified;
// consumers with unique names record what they receive.
const (
	nativeTopic     = "chaos-native"
	kafkaTopic      = "chaos-kafka"
	topicPartitions = 4
	nativeProducers = 3
	sendInterval    = 5 * time.Millisecond // per producer: about 200 messages a second
	valuePadding    = 100
)

// msgID identifies a message: its producer and sequence number.
type msgID struct {
	producer string
	seq      int
}

func (id msgID) String() string { return fmt.Sprintf("%s:%d", id.producer, id.seq) }

func encodeValue(id msgID) []byte {
	v := fmt.Appendf(nil, "%s:%09d:", id.producer, id.seq)
	for len(v) < valuePadding {
		v = append(v, 'x')
	}
	return v
}

func decodeValue(v []byte) (msgID, bool) {
	parts := strings.SplitN(string(v), ":", 3)
	if len(parts) != 3 {
		return msgID{}, false
	}
	seq, err := strconv.Atoi(parts[1])
	if err != nil {
		return msgID{}, false
	}
	return msgID{parts[0], seq}, true
}

// sendState is what a producer learned of one message.
type sendState uint8

const (
	sendPending sendState = iota // no answer (yet): may or may not be stored
	sendAcked                    // acknowledged: must be stored once, where the ack said
	sendFailed                   // failed: may or may not be stored, never twice
)

type sendRecord struct {
	state     sendState
	partition int32
	offset    int64
	doneAt    time.Time
	err       string
}

type partKey struct {
	topic     string
	partition int32
}

func (p partKey) String() string { return fmt.Sprintf("%s/%d", p.topic, p.partition) }

// sendErr is one failed send, for the report.
type sendErr struct {
	at       time.Time
	producer string
	err      string
}

// history is everything the workload observed, shared by its goroutines.
type history struct {
	mu struct {
		sync.Mutex
		topicOf   map[string]string       // producer -> topic
		sends     map[string][]sendRecord // producer -> by sequence
		ackTimes  map[partKey][]time.Time // acknowledgement times, in the order they arrived
		errs      []sendErr
		received  map[string]map[msgID]int // consumer -> id -> times received
		consumed  map[string]string        // consumer -> topic
		consErrs  map[string][]string      // consumer -> errors seen
		clientLog []string                 // what the Kafka clients logged at warn, error, or about duplicates
	}
}

func newHistory() *history {
	h := &history{}
	h.mu.topicOf = map[string]string{}
	h.mu.sends = map[string][]sendRecord{}
	h.mu.ackTimes = map[partKey][]time.Time{}
	h.mu.received = map[string]map[msgID]int{}
	h.mu.consumed = map[string]string{}
	h.mu.consErrs = map[string][]string{}
	return h
}

func (h *history) addProducer(name, topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.topicOf[name] = topic
}

// sent records that seq is about to be sent; sequences come in order.
func (h *history) sent(producer string, seq int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.sends[producer] = append(h.mu.sends[producer], sendRecord{})
}

func (h *history) acked(producer string, seq int, partition int32, offset int64) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.sends[producer][seq] = sendRecord{state: sendAcked, partition: partition, offset: offset, doneAt: now}
	k := partKey{h.mu.topicOf[producer], partition}
	h.mu.ackTimes[k] = append(h.mu.ackTimes[k], now)
}

func (h *history) failed(producer string, seq int, err error) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.sends[producer][seq] = sendRecord{state: sendFailed, doneAt: now, err: err.Error()}
	h.mu.errs = append(h.mu.errs, sendErr{at: now, producer: producer, err: err.Error()})
}

func (h *history) addConsumer(name, topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.received[name] = map[msgID]int{}
	h.mu.consumed[name] = topic
}

func (h *history) receivedValue(consumer string, v []byte) {
	id, ok := decodeValue(v)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !ok {
		h.mu.consErrs[consumer] = append(h.mu.consErrs[consumer], fmt.Sprintf("undecodable value %.40q", v))
		return
	}
	h.mu.received[consumer][id]++
}

func (h *history) consumerErr(consumer string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if errs := h.mu.consErrs[consumer]; len(errs) < 1000 {
		h.mu.consErrs[consumer] = append(errs, time.Now().Format("15:04:05.000")+" "+err.Error())
	}
}

// missingFor returns how many messages acknowledged to the producers of
// the consumer's topic it has not received.
func (h *history) missingFor(consumer string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	topic, got := h.mu.consumed[consumer], h.mu.received[consumer]
	missing := 0
	for p, sends := range h.mu.sends {
		if h.mu.topicOf[p] != topic {
			continue
		}
		for seq, s := range sends {
			if s.state == sendAcked && got[msgID{p, seq}] == 0 {
				missing++
			}
		}
	}
	return missing
}

// workload runs the producers and consumers until stop.
type workload struct {
	c      *cluster
	h      *history
	stopCh chan struct{}  // closed by stopProducing
	wg     sync.WaitGroup // producer loops
	consWG sync.WaitGroup // consumer loops
	cancel context.CancelFunc
	native []*client.Producer
	nc     *client.Client
	kp     *kgo.Client
	kc     *kgo.Client
}

// startWorkload creates the topics and starts every producer and consumer.
func startWorkload(ctx context.Context, c *cluster, h *history) (*workload, error) {
	for _, topic := range []string{nativeTopic, kafkaTopic} {
		err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
			_, err := c.admin().CreateTopic(ctx, topic, topicPartitions)
			return err == nil, nil
		})
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", topic, err)
		}
	}
	nc, err := client.New(client.Options{Address: c.nativeAddrs()})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w := &workload{c: c, h: h, stopCh: make(chan struct{}), cancel: cancel, nc: nc}
	for i := range nativeProducers {
		name := fmt.Sprintf("n%d", i+1)
		p, err := nc.CreateProducer(ctx, client.ProducerOptions{Topic: nativeTopic, Name: name})
		if err != nil {
			w.close()
			return nil, fmt.Errorf("producer %s: %w", name, err)
		}
		w.native = append(w.native, p)
		h.addProducer(name, nativeTopic)
		w.wg.Add(1)
		go w.runNative(runCtx, name, p) // owned by w.wg
	}
	w.kp, err = kgo.NewClient(kgo.SeedBrokers(c.kafkaAddrs()...), kgo.ClientID("k1"), kgo.DefaultProduceTopic(kafkaTopic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(5*time.Millisecond), kgo.WithLogger(kgoLogger{h, "k1"}))
	if err != nil {
		w.close()
		return nil, err
	}
	h.addProducer("k1", kafkaTopic)
	w.wg.Add(1)
	go w.runKafka(runCtx, "k1") // owned by w.wg

	cons, err := nc.Subscribe(ctx, client.ConsumerOptions{Topic: nativeTopic, Subscription: "chaos", Name: "c-native",
		InitialPosition: client.Earliest})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("native consumer: %w", err)
	}
	h.addConsumer("c-native", nativeTopic)
	w.consWG.Add(1)
	go w.runNativeConsumer(runCtx, "c-native", cons) // owned by w.consWG
	w.kc, err = kgo.NewClient(kgo.SeedBrokers(c.kafkaAddrs()...), kgo.ClientID("c-kafka"), kgo.ConsumerGroup("chaos"),
		kgo.ConsumeTopics(kafkaTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithLogger(kgoLogger{h, "c-kafka"}))
	if err != nil {
		w.close()
		return nil, err
	}
	h.addConsumer("c-kafka", kafkaTopic)
	w.consWG.Add(1)
	go w.runKafkaConsumer(runCtx, "c-kafka") // owned by w.consWG
	return w, nil
}

func (w *workload) runNative(ctx context.Context, name string, p *client.Producer) {
	w.produce(name, func(value []byte, done func(partition int32, offset int64, err error)) {
		// SendAsync blocks while MaxPendingMessages are unanswered; ctx
		// ends that wait only at teardown.
		p.SendAsync(ctx, &client.Message{Value: value}, func(id client.MessageID, _ *client.Message, err error) {
			done(id.Partition, id.Offset, err)
		})
	})
}

func (w *workload) runKafka(ctx context.Context, name string) {
	w.produce(name, func(value []byte, done func(partition int32, offset int64, err error)) {
		w.kp.Produce(ctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
			done(r.Partition, r.Offset, err)
		})
	})
}

// produce sends producer name's messages, one every sendInterval, with
// send, until the workload stops, and records each one's outcome.
func (w *workload) produce(name string, send func(value []byte, done func(partition int32, offset int64, err error))) {
	defer w.wg.Done()
	tick := time.NewTicker(sendInterval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-w.stopCh:
			return
		case <-tick.C:
		}
		w.h.sent(name, seq)
		send(encodeValue(msgID{name, seq}), func(partition int32, offset int64, err error) {
			if err != nil {
				w.h.failed(name, seq, err)
				return
			}
			w.h.acked(name, seq, partition, offset)
		})
	}
}

func (w *workload) runNativeConsumer(ctx context.Context, name string, cons *client.Consumer) {
	defer w.consWG.Done()
	defer cons.Close()
	for {
		m, err := cons.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.h.consumerErr(name, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		w.h.receivedValue(name, m.Value)
		if err := cons.Ack(m); err != nil {
			w.h.consumerErr(name, fmt.Errorf("ack %v: %w", m.ID, err))
		}
	}
}

func (w *workload) runKafkaConsumer(ctx context.Context, name string) {
	defer w.consWG.Done()
	for {
		fs := w.kc.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.h.consumerErr(name, fmt.Errorf("fetch %s/%d: %w", t, p, err))
			}
		})
		fs.EachRecord(func(r *kgo.Record) { w.h.receivedValue(name, r.Value) })
	}
}

// stopProducing stops the producer loops and waits up to timeout for the
// answers of what they sent; messages still unanswered stay pending.
func (w *workload) stopProducing(timeout time.Duration) {
	close(w.stopCh)
	w.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var flushed sync.WaitGroup
	for _, p := range w.native {
		flushed.Add(1)
		go func() { // owned by flushed
			defer flushed.Done()
			_ = p.Flush(ctx)
		}()
	}
	_ = w.kp.Flush(ctx)
	flushed.Wait()
}

// waitConsumers polls until every consumer has received every acknowledged
// message of its topic, or ctx ends.
func (w *workload) waitConsumers(ctx context.Context) {
	_ = poll(ctx, 200*time.Millisecond, func() (bool, error) {
		return w.h.missingFor("c-native") == 0 && w.h.missingFor("c-kafka") == 0, nil
	})
}

// close stops everything and closes the clients. Callbacks of messages
// still unanswered may run (with errors) while it closes them.
func (w *workload) close() {
	select {
	case <-w.stopCh:
	default:
		close(w.stopCh)
	}
	w.wg.Wait()
	w.cancel()
	w.consWG.Wait()
	if w.kc != nil {
		w.kc.Close()
	}
	if w.kp != nil {
		w.kp.Close()
	}
	for _, p := range w.native {
		_ = p.Close()
	}
	_ = w.nc.Close()
}

// sortAckTimes sorts each partition's acknowledgement times (callbacks
// of different producers may record them slightly out of order).
func (h *history) sortAckTimes() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, times := range h.mu.ackTimes {
		slices.SortFunc(times, time.Time.Compare)
	}
}

// partitionsSilentSince returns the partitions of both topics without an
// acknowledgement at or after t.
func (h *history) partitionsSilentSince(t time.Time) []partKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []partKey
	for _, topic := range []string{nativeTopic, kafkaTopic} {
		for p := range int32(topicPartitions) {
			k := partKey{topic, p}
			times := h.mu.ackTimes[k]
			if len(times) == 0 || times[len(times)-1].Before(t) {
				out = append(out, k)
			}
		}
	}
	return out
}

func (h *history) everyPartitionAckedSince(t time.Time) bool {
	return len(h.partitionsSilentSince(t)) == 0
}

// kgoLogger keeps what a franz-go client logs at warn or error, and the
// info line with which it takes a DUPLICATE_SEQUENCE_NUMBER answer for a
// success (the broker says the batch is stored: if it is not, the checker
// finds it lost).
type kgoLogger struct {
	h    *history
	name string
}

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level > kgo.LogLevelWarn && !strings.Contains(msg, "duplicate sequence") {
		return
	}
	line := fmt.Sprintf("%s %s %s: %s %v", time.Now().Format("15:04:05.000"), l.name, level, msg, keyvals)
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	if len(l.h.mu.clientLog) < 200 {
		l.h.mu.clientLog = append(l.h.mu.clientLog, line)
	}
}
