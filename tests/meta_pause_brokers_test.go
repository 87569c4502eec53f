package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// The operator's scenario: three `magnetar meta` processes (default
// election timeout), a bookie and two brokers with a 4 s lease, producers
// on topics owned by both brokers. The metadata leader is paused (SIGSTOP)
// for longer than the brokers' lease TTL, then resumed. Neither broker
// loses its lease (it renews on the new leader), so no partition is
// unloaded, and every send succeeds.
func TestPausingTheMetadataLeaderKeepsTheBrokersLeasesAndSends(t *testing.T) {
	skipIfShort(t)
	const ttl = 4 * time.Second
	metas, _ := startRoleCluster(t, "meta", "m", 3, "--election-timeout", "500ms")
	metaAddrs := strings.Join(grpcAddrs(metas), ",")
	startRoleCluster(t, "bookie", "b", 1, "--shards", "s1", "--meta-addrs", metaAddrs)
	brokerArgs := []string{"--broker.lease-ttl", ttl.String()}
	brokers := []*server{startBroker(t, metaAddrs, brokerArgs...), startBroker(t, metaAddrs, brokerArgs...)}
	mc := dialMeta(t, metas)

	ctx := testContext(t, 3*time.Minute)
	c, err := client.New(client.Options{Address: brokers[0].nativeAddr + "," + brokers[1].nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Topics until both brokers own one.
	var producers []*client.Producer
	owned := map[string]bool{}
	for i := 0; len(owned) < 2 || len(producers) < 4; i++ {
		if i == 32 {
			t.Fatalf("32 topics, all owned by %v", owned)
		}
		topic := fmt.Sprintf("public/default/pause-%d", i)
		waitFor(t, 30*time.Second, "the topic to be created", func() bool {
			_, err := client.NewAdmin(brokers[0].adminURL()).CreateTopic(testContext(t, 5*time.Second), topic, 1)
			return err == nil
		})
		owners, err := c.PartitionOwners(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		owned[owners[0]] = true
		p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		producers = append(producers, p)
	}

	// One sender, round robin over the topics; every send must succeed.
	var (
		mu     sync.Mutex
		sent   []time.Time // when each acknowledged send began
		acked  []time.Time // and when it was acknowledged
		failed []error
	)
	sctx, stop := context.WithCancel(ctx)
	var sender sync.WaitGroup
	sender.Go(func() {
		for i := 0; sctx.Err() == nil; i++ {
			begin := time.Now()
			_, err := producers[i%len(producers)].Send(sctx, &client.Message{Value: fmt.Appendf(nil, "%d", i)})
			mu.Lock()
			switch {
			case err == nil:
				sent, acked = append(sent, begin), append(acked, time.Now())
			case sctx.Err() == nil:
				failed = append(failed, err)
			}
			mu.Unlock()
		}
	})
	defer func() {
		stop()
		sender.Wait()
	}()
	sentAfter := func(at time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sent) > 0 && sent[len(sent)-1].After(at)
	}

	leader := leaderOf(t, mc, metas)
	fault := time.Now()
	resume := leader.pause()
	defer resume() // before the clients close, should the test fail while it is paused
	// Sends go on for longer than a TTL of the pause: a broker whose
	// renewals were stuck on the paused leader has lost its lease by then.
	waitFor(t, 30*time.Second, "sends more than a TTL into the pause", func() bool { return sentAfter(fault.Add(ttl + 2*time.Second)) })
	resumed := time.Now()
	resume()
	// A broker that lost its lease learns it at its first renewal on the
	// new leader, about a third of a TTL after the resume; wait for more.
	waitFor(t, 30*time.Second, "sends a TTL after the resume", func() bool { return sentAfter(resumed.Add(ttl)) })
	stop()
	sender.Wait()

	for i, b := range brokers {
		if b.logContains("lease expired") {
			t.Errorf("broker %d lost its lease while the metadata leader was paused for %v", i, resumed.Sub(fault).Round(time.Millisecond))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d of %d sends failed, the first with %v", len(failed), len(failed)+len(sent), failed[0])
	}
	var gap time.Duration
	for i := 1; i < len(acked); i++ {
		gap = max(gap, acked[i].Sub(acked[i-1]))
	}
	t.Logf("metadata leader %s paused for %v (broker lease TTL %v): %d sends, none failed, the longest wait between two acknowledgements %v, no lease lost",
		leader.id, resumed.Sub(fault).Round(time.Millisecond), ttl, len(sent), gap.Round(time.Millisecond))
}
