package tests

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
)

// metaNode is one `magnetar meta` process of a test cluster.
type metaNode = roleNode

// startMetaCluster starts n `magnetar meta` processes on 127.0.0.1 as one
// cluster and waits until each says it is ready (a leader is elected).
func startMetaCluster(t testing.TB, n int) []*metaNode {
	t.Helper()
	nodes, _ := startRoleCluster(t, "meta", "m", n)
	return nodes
}

// leaderOf asks the live nodes who leads and returns that node.
func leaderOf(t testing.TB, c *metadata.Client, nodes []*metaNode) *metaNode {
	t.Helper()
	var leader *metaNode
	waitFor(t, 15*time.Second, "a leader", func() bool {
		for _, m := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Status(ctx, m.grpcAddr)
			cancel()
			if err == nil && st.Leader {
				leader = m
				return true
			}
		}
		return false
	})
	return leader
}

func dialMeta(t testing.TB, nodes []*metaNode) *metadata.Client {
	t.Helper()
	c, err := metadata.Dial(testContext(t, 20*time.Second), grpcAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A 3-node metadata cluster of real processes: the leader is killed with
// SIGKILL in the middle of a stream of writes; the client carries on with
// the new leader, every acknowledged write is there afterwards, and a watch
// opened before the kill resumes and sees every one of them, in order,
// once. Then two clients race compare-and-swaps: exactly one wins each.
func TestMetaClusterSurvivesItsLeaderAndSerializesCAS(t *testing.T) {
	skipIfShort(t)
	nodes := startMetaCluster(t, 3)
	c := dialMeta(t, nodes)
	ctx := testContext(t, 60*time.Second)

	events, err := c.Watch(ctx, "w/", 0)
	if err != nil {
		t.Fatal(err)
	}

	// The writer: even keys are creates (compare-and-swap on "absent"),
	// whose outcome may be unknown when the leader dies under them; odd keys
	// are unconditional puts, which the client retries itself.
	type write struct {
		key, val string
	}
	var (
		mu      sync.Mutex
		acked   []write
		unknown []string
	)
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			key, val := fmt.Sprintf("w/%05d", i), fmt.Sprintf("v%d", i)
			expected := int64(0)
			if i%2 == 1 {
				expected = metadata.AnyVersion
			}
			_, err := c.Put(ctx, key, []byte(val), expected)
			mu.Lock()
			switch {
			case err == nil:
				acked = append(acked, write{key, val})
			case errors.Is(err, metadata.ErrUnknownOutcome):
				unknown = append(unknown, key)
			default:
				mu.Unlock()
				writerDone <- fmt.Errorf("Put(%s, %d): %w", key, expected, err)
				return
			}
			mu.Unlock()
		}
	}()

	waitFor(t, 15*time.Second, "100 acknowledged writes", func() bool { return ackedCount() >= 100 })
	old := leaderOf(t, c, nodes)
	old.kill()
	before := ackedCount()
	t.Logf("killed leader %s after %d acknowledged writes", old.id, before)
	waitFor(t, 20*time.Second, "100 more acknowledged writes after the kill", func() bool { return ackedCount() >= before+100 })
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	var live []*metaNode
	for _, m := range nodes {
		if m != old {
			live = append(live, m)
		}
	}
	if nl := leaderOf(t, c, live); nl == old {
		t.Fatal("the killed node is still the leader")
	}

	// Every acknowledged write is in a linearizable listing.
	res, err := c.Range(ctx, "w/", metadata.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range res.KVs {
		got[kv.Key] = string(kv.Value)
	}
	mu.Lock()
	for _, w := range acked {
		if got[w.key] != w.val {
			t.Errorf("acknowledged write %s=%s: the cluster has %q", w.key, w.val, got[w.key])
		}
	}
	t.Logf("%d acknowledged writes, %d with an unknown outcome (%v)", len(acked), len(unknown), unknown)
	mu.Unlock()

	// The watch saw every key of the listing, once, in revision order.
	seen := map[string]bool{}
	var lastRev int64
	for len(seen) < len(got) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch closed after %d of %d keys", len(seen), len(got))
			}
			// A retried unconditional put may apply twice (version 2); a
			// repeated event of one revision would be the watch's fault.
			if ev.KV.ModRevision <= lastRev || (seen[ev.KV.Key] && ev.KV.Version == 1) {
				t.Fatalf("watch event %s v%d at revision %d after revision %d (seen before: %v)", ev.KV.Key, ev.KV.Version, ev.KV.ModRevision, lastRev, seen[ev.KV.Key])
			}
			lastRev = ev.KV.ModRevision
			seen[ev.KV.Key] = true
		case <-ctx.Done():
			t.Fatalf("watch delivered %d of %d keys", len(seen), len(got))
		}
	}

	// Two clients race compare-and-swaps on fresh keys: one winner each.
	c2 := dialMeta(t, live)
	for round := range 20 {
		key := fmt.Sprintf("cas/%d", round)
		if _, err := c.Put(ctx, key, []byte("start"), 0); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, cl := range []*metadata.Client{c, c2} {
			wg.Go(func() { _, errs[i] = cl.Put(ctx, key, fmt.Appendf(nil, "client-%d", i), 1) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, metadata.ErrVersionMismatch):
				t.Fatalf("round %d, client %d: %v", round, i, err)
			}
		}
		kv, ok, err := c2.Get(ctx, key)
		if wins != 1 || err != nil || !ok || kv.Version != 2 {
			t.Fatalf("round %d: %d winners; key now %+v, %v, %v", round, wins, kv, ok, err)
		}
	}
}
