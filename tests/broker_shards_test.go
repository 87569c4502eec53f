package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// A cluster of real processes: one `magnetar meta`, three `magnetar
// bookie` processes hosting two 3-replica shards (s1, s2) on one Raft and
// one gRPC port each, registered in the metadata service, and a `magnetar
// broker` over them. With small segments, a partition's segments spread
// over both shards (the least-loaded one takes each new segment), and
// `magctl shards list` shows them. The bookie leading s1 is then killed
// with SIGKILL: both shards keep a majority, and every acknowledged
// message is read back, in order, from segments on both shards.
func TestBrokerSpreadsSegmentsOverBookieShards(t *testing.T) {
	skipIfShort(t)
	meta, _ := startRoleCluster(t, "meta", "m", 1)
	metaAddr := meta[0].grpcAddr
	bookies, _ := startRoleCluster(t, "bookie", "b", 3, "--shards", "s1,s2", "--meta-addrs", metaAddr)
	broker := startBroker(t, metaAddr, "--broker.segment-max-bytes", "16384", "--broker.tail-cache-bytes", "0")

	// The broker finds both shards once their leaders have reported.
	admin := client.NewAdmin(broker.adminURL())
	waitFor(t, 30*time.Second, "both shards to have a reporting leader", func() bool {
		ss, err := admin.ListShards(testContext(t, 5*time.Second))
		if err != nil || len(ss) != 2 {
			return false
		}
		for _, s := range ss {
			if s.Leader == "" || len(s.Replicas) != 3 {
				return false
			}
		}
		return true
	})

	ctx := testContext(t, 2*time.Minute)
	c, err := client.New(client.Options{Address: broker.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "spread"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		// One message at a time: every segment roll places a new segment.
		if _, err := p.Send(ctx, &client.Message{Value: fmt.Appendf(nil, "%04d-%s", i, strings.Repeat("x", 200))}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}

	st, err := admin.TopicStats(ctx, "spread")
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions[0].Segments < 10 {
		t.Fatalf("%d segments for %d bytes with 16 KiB segments", st.Partitions[0].Segments, st.Bytes)
	}
	// The leaders report every ReportInterval: wait until their usage
	// covers every segment, then both shards must hold several.
	waitFor(t, 30*time.Second, "the shards' usage to count every segment", func() bool {
		ss, err := admin.ListShards(testContext(t, 5*time.Second))
		if err != nil {
			return false
		}
		var total int64
		for _, s := range ss {
			if s.Usage.Segments < 3 {
				return false
			}
			total += s.Usage.Segments
		}
		return total >= int64(st.Partitions[0].Segments)
	})
	table := magctl(t, broker, "", "shards", "list")
	t.Logf("magctl shards list:\n%s", table)
	if !strings.Contains(table, "s1") || !strings.Contains(table, "s2") {
		t.Fatalf("magctl shards list does not show both shards:\n%s", table)
	}
	bookiesTable := magctl(t, broker, "", "bookies", "list")
	for _, b := range bookies {
		if !strings.Contains(bookiesTable, b.id) {
			t.Fatalf("magctl bookies list does not show %s:\n%s", b.id, bookiesTable)
		}
	}

	// Lose the bookie leading s1: each shard keeps two of three replicas,
	// and s1 elects a new leader that the broker's reads must find.
	ss, err := admin.ListShards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	for _, b := range bookies {
		if b.id == ss[0].Leader {
			t.Logf("killing %s, the leader of %s", b.id, ss[0].ID)
			b.kill()
			killed = true
		}
	}
	if !killed {
		t.Fatalf("shard %s's leader %q is none of the bookies", ss[0].ID, ss[0].Leader)
	}
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "spread", Subscription: "all", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range n {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if want := fmt.Sprintf("%04d-", i); m.ID.Offset != int64(i) || !strings.HasPrefix(string(m.Value), want) {
			t.Fatalf("message %d: offset %d, value %.10q", i, m.ID.Offset, m.Value)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
}
