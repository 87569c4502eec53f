package tests

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// brokerOf returns the broker of bs listening on addr.
func brokerOf(t *testing.T, bs []*server, addr string) *server {
	t.Helper()
	for _, b := range bs {
		if b.nativeAddr == addr {
			return b
		}
	}
	t.Fatalf("no broker listens on %q", addr)
	return nil
}

// receiver receives a consumer's messages on a goroutine, acknowledging
// each one while ack is set, and records them.
type receiver struct {
	mu       sync.Mutex
	got      []*client.ConsumerMessage
	ack      bool
	firstAt  time.Time // of the first message with a value of newFrom or more, after mark
	newFrom  int
	markedAt time.Time
	marked   int // len(got) at mark
}

func (r *receiver) run(ctx context.Context, c *client.Consumer) {
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.got = append(r.got, m)
		if n, err := strconv.Atoi(string(m.Value)); err == nil && n >= r.newFrom && !r.markedAt.IsZero() && r.firstAt.IsZero() {
			r.firstAt = time.Now()
		}
		ack := r.ack
		r.mu.Unlock()
		if ack {
			_ = c.Ack(m)
		}
	}
}

// mark starts a new phase: what arrives from now on is counted apart.
func (r *receiver) mark() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.markedAt, r.firstAt, r.marked = time.Now(), time.Time{}, len(r.got)
}

func (r *receiver) since() []*client.ConsumerMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[r.marked:])
}

func (r *receiver) values(ms []*client.ConsumerMessage) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[string(m.Value)] = true
	}
	return out
}

// Two brokers over one metadata service and one bookie, as real
// processes. A topic is produced to and consumed with acknowledgements
// through the Go client (which knows both brokers). Then:
//
//  1. The broker owning the topic is killed with SIGKILL. Its lease
//     expires (--broker.lease-ttl 2s), the next lookup assigns the
//     topic's bundle to the other broker, which seals the dead one's
//     segment and serves the topic: every produced-and-acknowledged
//     message is received, and none the consumer had acknowledged (and
//     the broker persisted) before the kill is delivered again.
//  2. A third broker starts; the topic's bundle is unloaded with magctl
//     and lands on it, while a producer keeps sending: it sees no error.
//  3. The owner is stopped with SIGTERM (a clean shutdown): the topic
//     moves back to the second broker, again with no producer error.
//
// It logs the failover, unload and shutdown times it measured.
func TestBrokerFailoverMovesTopicsWithoutLosingAcknowledgedProgress(t *testing.T) {
	skipIfShort(t)
	const topic = "public/default/failover"
	bc := startTwoBrokers(t, topic)
	metaAddr, brokerArgs, c, owner, survivor := bc.metaAddr, bc.brokerArgs, bc.client, bc.owner, bc.other
	ctx := testContext(t, 3*time.Minute)
	t.Logf("the topic is owned by %s", owner.nativeAddr)

	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	acked := map[string]bool{} // values whose Send succeeded
	send := func(v string) error {
		_, err := p.Send(ctx, &client.Message{Value: []byte(v)})
		if err == nil {
			acked[v] = true
		}
		return err
	}
	for i := range 200 {
		if err := send(strconv.Itoa(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}

	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: topic, Subscription: "sub", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range 100 {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID.Offset != int64(i) {
			t.Fatalf("message %d has offset %d", i, m.ID.Offset)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the owner has persisted the 100 acknowledgements, read
	// straight from the metadata service.
	store, err := metadata.Dial(ctx, []string{metaAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cursor := catalog.CursorName{Partition: catalog.PartitionName{Topic: catalog.TopicName{Tenant: "public", Namespace: "default", Topic: "failover"}}, Subscription: "sub"}
	waitFor(t, 10*time.Second, "the acknowledgements to be persisted", func() bool {
		e, ok, err := catalog.New(store).Cursors.Get(ctx, cursor)
		return err == nil && ok && e.Value.GetNextOffset() == 100
	})

	// 1. Kill the owner while the producer has sends in flight. Messages
	// 100-199 were delivered to the consumer's queue, unacknowledged: they
	// come again, and nothing below 100 does. The producer sends its
	// unanswered batches again to the new owner: no send fails.
	rcv := &receiver{ack: true, newFrom: 220}
	go rcv.run(ctx, cons)
	rcv.mark()
	var killed time.Time
	var inFlight sync.WaitGroup
	var sends struct {
		sync.Mutex
		errs      []error
		firstDone time.Duration // the first send made after the kill, acknowledged
	}
	for i := 200; i < 300; i++ {
		if i == 220 {
			killed = time.Now()
			owner.kill()
		}
		v := strconv.Itoa(i)
		afterKill := !killed.IsZero()
		inFlight.Add(1)
		p.SendAsync(ctx, &client.Message{Value: []byte(v)}, func(_ client.MessageID, _ *client.Message, err error) {
			defer inFlight.Done()
			sends.Lock()
			defer sends.Unlock()
			if err != nil {
				sends.errs = append(sends.errs, err)
				return
			}
			if afterKill && sends.firstDone == 0 {
				sends.firstDone = time.Since(killed)
			}
		})
		time.Sleep(2 * time.Millisecond)
	}
	inFlight.Wait()
	if len(sends.errs) > 0 {
		t.Fatalf("%d sends failed across the kill; the first: %v", len(sends.errs), sends.errs[0])
	}
	for i := 200; i < 300; i++ {
		acked[strconv.Itoa(i)] = true
	}
	waitFor(t, 60*time.Second, "every acknowledged message after the kill", func() bool {
		got := rcv.values(rcv.since())
		for i := 100; i < 300; i++ {
			if v := strconv.Itoa(i); acked[v] && !got[v] {
				return false
			}
		}
		return true
	})
	after := rcv.since()
	for _, m := range after {
		if m.ID.Offset < 100 {
			t.Fatalf("offset %d was delivered again after the failover, but its acknowledgement was persisted", m.ID.Offset)
		}
	}
	rcv.mu.Lock()
	firstReceive := rcv.firstAt.Sub(killed)
	rcv.mu.Unlock()
	owners, err := c.PartitionOwners(ctx, topic)
	if err != nil || owners[0] != survivor.nativeAddr {
		t.Fatalf("owner after the kill: %v, %v; want %s", owners, err, survivor.nativeAddr)
	}
	t.Logf("kill -9 of the owner (lease TTL 2s): first message produced after the kill received %v after it, first send made after the kill acknowledged %v after it",
		firstReceive.Round(time.Millisecond), sends.firstDone.Round(time.Millisecond))

	// 2. A third broker; unload the bundle while a producer keeps sending.
	b3 := startBroker(t, metaAddr, brokerArgs...)
	var prod struct {
		sync.Mutex
		sent []string
		errs []error
	}
	sentCount := func() int {
		prod.Lock()
		defer prod.Unlock()
		return len(prod.sent)
	}
	stopProducing := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 300; ; i++ {
			select {
			case <-stopProducing:
				return
			default:
			}
			v := strconv.Itoa(i)
			_, err := p.Send(ctx, &client.Message{Value: []byte(v)})
			prod.Lock()
			if err != nil {
				prod.errs = append(prod.errs, err)
			} else {
				prod.sent = append(prod.sent, v)
			}
			prod.Unlock()
		}
	}()
	waitFor(t, 10*time.Second, "a few sends on the survivor", func() bool { return sentCount() >= 20 })
	bundles := magctl(t, survivor, "", "bundles", "list", "public/default", "-o", "json")
	rng := bundleOfOwner(t, bundles, survivor.nativeAddr)
	rcv.mark()
	unloadStart := time.Now()
	out := magctl(t, survivor, "", "bundles", "unload", "public/default", rng)
	t.Logf("magctl bundles unload: %s", out)
	waitFor(t, 30*time.Second, "messages from the new owner", func() bool { return len(rcv.since()) > 0 })
	unloadToReceive := time.Since(unloadStart)
	owners, err = c.PartitionOwners(ctx, topic)
	if err != nil || owners[0] != b3.nativeAddr {
		t.Fatalf("owner after the unload: %v, %v; want %s", owners, err, b3.nativeAddr)
	}

	// 3. Stop the new owner cleanly: the topic moves back to the survivor.
	rcv.mark()
	stopStart := time.Now()
	b3.stop()
	waitFor(t, 30*time.Second, "messages after the clean shutdown", func() bool { return len(rcv.since()) > 10 })
	stopToReceive := time.Since(stopStart)
	close(stopProducing)
	<-produced
	if len(prod.errs) > 0 {
		t.Fatalf("the producer saw %d errors while the topic moved by unload and clean shutdown; the first: %v", len(prod.errs), prod.errs[0])
	}
	waitFor(t, 30*time.Second, "every message sent during the unload and the shutdown", func() bool {
		got := rcv.values(rcv.all())
		for _, v := range prod.sent {
			if !got[v] {
				return false
			}
		}
		return true
	})
	owners, err = c.PartitionOwners(ctx, topic)
	if err != nil || owners[0] != survivor.nativeAddr {
		t.Fatalf("owner after the clean shutdown: %v, %v; want %s", owners, err, survivor.nativeAddr)
	}
	t.Logf("unload: first message from the new owner %v after the unload began; clean shutdown of the owner: %v; %d messages sent without error meanwhile",
		unloadToReceive.Round(time.Millisecond), stopToReceive.Round(time.Millisecond), len(prod.sent))

	// Through the kill, the unload and the shutdown, every message was
	// stored exactly once, in the order sent.
	end := 300 + len(prod.sent)
	r, err := c.CreateReader(ctx, client.ReaderOptions{Topic: topic, InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for want := 0; want < end; want++ {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reading the log back at message %d: %v", want, err)
		}
		if got := string(m.Value); got != strconv.Itoa(want) {
			t.Fatalf("offset %d holds %q, want %q: a message was stored twice, lost or reordered", m.ID.Offset, got, strconv.Itoa(want))
		}
	}
}

// twoBrokers is one metadata node, one bookie (shard s1) and two brokers
// (--broker.lease-ttl 2s) as real processes, a client that knows both
// brokers, and a topic of one partition, owned by owner.
type twoBrokers struct {
	metaAddr     string
	brokerArgs   []string
	client       *client.Client
	owner, other *server
}

func startTwoBrokers(t *testing.T, topic string) twoBrokers {
	t.Helper()
	meta, _ := startRoleCluster(t, "meta", "m", 1)
	bc := twoBrokers{metaAddr: meta[0].grpcAddr, brokerArgs: []string{"--broker.lease-ttl", "2s"}}
	startRoleCluster(t, "bookie", "b", 1, "--shards", "s1", "--meta-addrs", bc.metaAddr)
	b1 := startBroker(t, bc.metaAddr, bc.brokerArgs...)
	b2 := startBroker(t, bc.metaAddr, bc.brokerArgs...)
	c, err := client.New(client.Options{Address: b1.nativeAddr + "," + b2.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	bc.client = c
	waitFor(t, 30*time.Second, "the bookie's shard to take segments", func() bool {
		_, err := client.NewAdmin(b1.adminURL()).CreateTopic(testContext(t, 5*time.Second), topic, 1)
		return err == nil
	})
	owners, err := c.PartitionOwners(testContext(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	bc.owner, bc.other = brokerOf(t, []*server{b1, b2}, owners[0]), b1
	if bc.owner == b1 {
		bc.other = b2
	}
	return bc
}

func (r *receiver) all() []*client.ConsumerMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// bundleOfOwner returns the range of the one bundle `magctl bundles list
// -o json` shows owned by the broker at nativeAddr.
func bundleOfOwner(t *testing.T, listJSON, nativeAddr string) string {
	t.Helper()
	var bs []client.BundleInfo
	if err := json.Unmarshal([]byte(listJSON), &bs); err != nil {
		t.Fatalf("bundles list: %v\n%s", err, listJSON)
	}
	var owned []string
	for _, b := range bs {
		if b.OwnerNativeAddr == nativeAddr {
			owned = append(owned, b.Range)
		}
	}
	if len(owned) != 1 {
		t.Fatalf("%s owns bundles %v, want exactly one:\n%s", nativeAddr, owned, listJSON)
	}
	return owned[0]
}
