package tests

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// shardCluster is a metadata node, n bookies hosting shard s1 (n
// replicas) registered there, and a broker over them, as real processes.
type shardCluster struct {
	metaAddr string
	bookies  []*roleNode
	peers    string
	broker   *server
	admin    *client.Admin
}

func startShardCluster(t *testing.T, n int, bookieArgs []string, brokerArgs ...string) *shardCluster {
	t.Helper()
	meta, _ := startRoleCluster(t, "meta", "m", 1)
	sc := &shardCluster{metaAddr: meta[0].grpcAddr}
	sc.bookies, sc.peers = startRoleCluster(t, "bookie", "b", n, append([]string{"--shards", "s1", "--meta-addrs", sc.metaAddr}, bookieArgs...)...)
	sc.startBroker(t, brokerArgs...)
	return sc
}

// startBroker starts the cluster's broker (again: with the same ID, it
// takes over its previous run's topics at once) and waits until the shard
// has a leader that reported to it.
func (sc *shardCluster) startBroker(t *testing.T, args ...string) {
	t.Helper()
	sc.broker = startBroker(t, sc.metaAddr, append([]string{"--broker.id", "broker-1"}, args...)...)
	sc.admin = client.NewAdmin(sc.broker.adminURL())
	sc.leader(t)
}

// leader returns the bookie the metadata service names as s1's leader,
// once one has reported.
func (sc *shardCluster) leader(t *testing.T) *roleNode {
	t.Helper()
	var id string
	waitFor(t, 30*time.Second, "shard s1 to report a leader", func() bool {
		ss, err := sc.admin.ListShards(testContext(t, 5*time.Second))
		if err != nil || len(ss) != 1 {
			return false
		}
		id = ss[0].Leader
		return id != ""
	})
	for _, b := range sc.bookies {
		if b.id == id {
			return b
		}
	}
	t.Fatalf("s1's leader %q is none of the bookies", id)
	return nil
}

// ackLog is what a producer had acknowledged, in order, and when.
type ackLog struct {
	mu       sync.Mutex
	vals     []string
	at       []time.Time
	errs     int
	firstErr error
}

func (l *ackLog) add(v string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if l.errs == 0 {
			l.firstErr = fmt.Errorf("send %s: %w", v, err)
		}
		l.errs++
		return
	}
	l.vals = append(l.vals, v)
	l.at = append(l.at, time.Now())
}

// at returns when the i-th acknowledgement came.
func (l *ackLog) ackedAt(i int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= len(l.at) {
		return time.Time{}
	}
	return l.at[i]
}

func (l *ackLog) values() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.vals)
}

// produceUntil sends "0", "1", ... every millisecond or so, as a
// pipelining producer does, until stop ends, then waits for the answers;
// acks records them.
func produceUntil(ctx, stop context.Context, p *client.Producer, acks *ackLog) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop.Done():
			_ = p.Flush(ctx)
			return
		case <-tick.C:
		}
		v := strconv.Itoa(i)
		// Under ctx, not stop: a send made as the loop stops is still a
		// send (SendAsync fails it at once with a ctx that has ended).
		p.SendAsync(ctx, &client.Message{Value: []byte(v)}, func(_ client.MessageID, _ *client.Message, err error) { acks.add(v, err) })
	}
}

// receiveValues subscribes from the earliest message and returns the
// values of the first n received.
func receiveValues(ctx context.Context, t *testing.T, c *client.Client, topic string, n int) []string {
	t.Helper()
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: topic, Subscription: fmt.Sprintf("check-%d", time.Now().UnixNano()), InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out []string
	for len(out) < n {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %d of %d: %v", len(out), n, err)
		}
		out = append(out, string(m.Value))
		_ = cons.Ack(m)
	}
	return out
}

// The leader of a 3-replica shard is paused (SIGSTOP) while a producer
// sends: it closes no connection, so nothing tells the broker it is
// gone. The other two elect a new leader; the broker's append to the
// paused one misses its deadline, the partition seals its segment on the
// new leader and goes on in a new one, and sends are acknowledged again
// while the old leader is still paused. After it resumes, every
// acknowledged message is in the log once, in order.
func TestAPausedShardLeaderStallsSendsOnlyUntilTheNextLeaderTakesOver(t *testing.T) {
	skipIfShort(t)
	sc := startShardCluster(t, 3, nil)
	ctx := testContext(t, 3*time.Minute)
	c, err := client.New(client.Options{Address: sc.broker.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const topic = "public/default/paused-shard-leader"
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var acks ackLog
	pctx, stopProducing := context.WithCancel(ctx)
	var producing sync.WaitGroup
	producing.Go(func() { produceUntil(ctx, pctx, p, &acks) })
	stop := func() {
		stopProducing()
		producing.Wait()
	}
	defer stop()
	waitFor(t, 30*time.Second, "the first acknowledgements", func() bool { return len(acks.values()) >= 50 })

	leader := sc.leader(t)
	resume := leader.pause()
	defer resume() // before the clients close, should the test fail while it is paused
	paused := time.Now()
	// The sends in flight when it stopped may be acknowledged by then;
	// the ones after them need the new leader.
	n := len(acks.values())
	waitFor(t, 20*time.Second, "sends acknowledged while the shard's old leader is paused", func() bool { return len(acks.values()) >= n+200 })
	t.Logf("sends acknowledged again %v after the shard leader %s was paused (the first 100 after it within %v)", acks.ackedAt(n+1).Sub(paused).Round(time.Millisecond),
		leader.id, acks.ackedAt(n+100).Sub(paused).Round(time.Millisecond))
	resume()
	n = len(acks.values())
	waitFor(t, 20*time.Second, "sends to go on after it resumed", func() bool { return len(acks.values()) >= n+200 })
	stop()
	p.Close()

	want := acks.values()
	if acks.errs > 0 {
		t.Fatalf("%d sends failed: the producer's resends should have stored them; the first: %v", acks.errs, acks.firstErr)
	}
	if got := receiveValues(ctx, t, c, topic, len(want)); !slices.Equal(got, want) {
		t.Fatalf("the log does not hold the %d acknowledged messages once each, in order", len(want))
	}
}

// corruptWAL overwrites the middle of every Raft log segment file of the
// bookie's shard s1 but the newest (the one being written), as a disk
// returning garbage would: what the bookie reads there no longer decodes
// or fails its checksum.
func corruptWAL(t *testing.T, b *roleNode) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(b.dataDir, "s1", "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	firstIndex := func(f string) int {
		n, _ := strconv.Atoi(strings.SplitN(filepath.Base(f), "-", 2)[0])
		return n
	}
	slices.SortFunc(files, func(a, b string) int { return firstIndex(a) - firstIndex(b) })
	if len(files) < 2 {
		t.Fatalf("%d log segment files in %s: write more", len(files), b.dataDir)
	}
	for _, f := range files[:len(files)-1] {
		fh, err := os.OpenFile(f, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, err := fh.Stat()
		if err != nil {
			t.Fatal(err)
		}
		garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", int(st.Size()/8)))
		if _, err := fh.WriteAt(garbage, st.Size()/4); err != nil {
			t.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return len(files) - 1
}

// The leader of a 3-replica shard can no longer read the older part of
// its Raft log (corrupt segment files), while both followers hold every
// entry. The broker restarts: reloading the partition rebuilds the
// producers' sequences from the log's tail, and a consumer reads the
// topic from the start; both are served by the followers, and the
// producer's sends go on.
func TestACorruptLogOnTheShardLeaderIsReadAroundFromTheFollowers(t *testing.T) {
	skipIfShort(t)
	sc := startShardCluster(t, 3, []string{"--wal-segment-size", "1048576"}, "--broker.tail-cache-bytes", "0")
	ctx := testContext(t, 3*time.Minute)
	const topic = "public/default/corrupt-leader-log"
	c, err := client.New(client.Options{Address: sc.broker.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var want []string
	for i := range 3000 { // 6 MB that do not compress: several log segment files of 1 MiB
		pad := make([]byte, 1500)
		for j := range pad {
			pad[j] = byte(rnd.Uint32())
		}
		v := fmt.Sprintf("%04d-%s", i, base64.StdEncoding.EncodeToString(pad))
		p.SendAsync(ctx, &client.Message{Value: []byte(v)}, func(_ client.MessageID, _ *client.Message, err error) {
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
		want = append(want, v)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	c.Close()

	leader := sc.leader(t)
	t.Logf("corrupted %d log segment files of %s, the leader", corruptWAL(t, leader), leader.id)
	sc.broker.kill()
	sc.startBroker(t, "--broker.tail-cache-bytes", "0")
	if now := sc.leader(t); now != leader {
		t.Fatalf("the leader moved from %s to %s: the corrupt log is no longer the leader's", leader.id, now.id)
	}

	c, err = client.New(client.Options{Address: sc.broker.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err = c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Send(ctx, &client.Message{Value: []byte("after")}); err != nil {
		t.Fatalf("send after the reload (the producer sequences are rebuilt from the log): %v", err)
	}
	want = append(want, "after")
	if got := receiveValues(ctx, t, c, topic, len(want)); !slices.Equal(got, want) {
		t.Fatalf("the consumer did not read the %d messages in order", len(want))
	}
}

// The disk of a topic's bookie fills (the bookie restarts with a free
// space reserve above what is free: it refuses new data), and the broker
// is killed and restarted meanwhile. Loading the topic needs no new
// segment, so its stats and every stored message are served; a send is
// refused, and the client sends it again until there is room (the bookie
// restarts with its usual reserve): then it is stored, once.
func TestATopicIsReadWhileItsBookieDiskIsFullAndTakesSendsWhenSpaceReturns(t *testing.T) {
	skipIfShort(t)
	sc := startShardCluster(t, 1, nil)
	ctx := testContext(t, 3*time.Minute)
	const topic = "public/default/full-bookie"
	c, err := client.New(client.Options{Address: sc.broker.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 100 {
		v := strconv.Itoa(i)
		if _, err := p.Send(ctx, &client.Message{Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	p.Close()
	c.Close()

	bookie := sc.bookies[0]
	usual := bookie.extra
	restartBookie := func(extra ...string) {
		bookie.kill()
		bookie.extra = append(slices.Clone(usual), extra...)
		bookie.start(sc.peers)
		bookie.waitReady()
	}
	restartBookie("--min-free-bytes", strconv.FormatInt(1<<50, 10)) // a petabyte reserve: the disk is full
	sc.broker.kill()
	sc.startBroker(t)

	st, err := sc.admin.TopicStats(ctx, topic)
	if err != nil {
		t.Fatalf("topic stats while the bookie's disk is full: %v", err)
	}
	if st.Partitions[0].EndOffset != 100 {
		t.Fatalf("end offset %d while the disk is full, want 100", st.Partitions[0].EndOffset)
	}
	c, err = client.New(client.Options{Address: sc.broker.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := receiveValues(ctx, t, c, topic, len(want)); !slices.Equal(got, want) {
		t.Fatalf("the consumer did not read the %d messages in order while the disk is full", len(want))
	}
	p, err = c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := p.Send(ctx, &client.Message{Value: []byte("waited")})
		sent <- err
	}()
	waitFor(t, 10*time.Second, "the broker to refuse the send for want of space", func() bool {
		return sc.broker.logContains("appends refused until there is room again")
	})
	select {
	case err := <-sent:
		t.Fatalf("the send made while the disk is full was answered (%v) while it stayed full", err)
	default:
	}

	restartBookie()
	if err := <-sent; err != nil {
		t.Fatalf("the send made while the disk was full, once there is room: %v", err)
	}
	want = append(want, "waited")
	if got := receiveValues(ctx, t, c, topic, len(want)); !slices.Equal(got, want) {
		t.Fatalf("after space returned: %v, want the %d messages then \"stored\"", got[len(got)-1:], len(want)-1)
	}
}
