package broker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

func TestBundleRangesCoverTheHashSpaceAndBundleForFindsTheRange(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 16, 1000, MaxBundles} {
		rs := BundleRanges("t/ns", n)
		if len(rs) != n || rs[0].Start != 0 || rs[n-1].End != 0xffffffff {
			t.Fatalf("n=%d: %d ranges from %08x to %08x", n, len(rs), rs[0].Start, rs[len(rs)-1].End)
		}
		for i := 1; i < n; i++ {
			if rs[i].Start != rs[i-1].End+1 {
				t.Fatalf("n=%d: range %d starts at %08x, the previous ends at %08x", n, i, rs[i].Start, rs[i-1].End)
			}
		}
		check := func(h uint32) {
			got := BundleFor("t/ns", n, h)
			if !got.Contains(h) {
				t.Fatalf("n=%d: BundleFor(%08x) = %s, which does not contain it", n, h, got.Range())
			}
		}
		for _, r := range rs[:min(n, 64)] {
			check(r.Start)
			check(r.End)
		}
		check(rs[n-1].Start)
		check(0xffffffff)
		for range 1000 {
			check(rand.Uint32())
		}
	}
}

func TestParseBundleReadsWhatRangeWrites(t *testing.T) {
	for _, bd := range BundleRanges("acme/orders", 3) {
		got, err := ParseBundle(bd.Namespace, bd.Range())
		if err != nil || got != bd {
			t.Fatalf("ParseBundle(%q, %q) = %v, %v", bd.Namespace, bd.Range(), got, err)
		}
	}
	for _, bad := range []string{"", "0-1", "00000010-0000000f", "0000000g-00000010", "00000000_ffffffff"} {
		if _, err := ParseBundle("a/b", bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseBundle(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := ParseBundle("nons", "00000000-ffffffff"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("namespace without tenant: %v", err)
	}
}

func TestPartitionsOfATopicSpreadOverBundles(t *testing.T) {
	name := TopicName{"public", "default", "many"}
	seen := map[Bundle]int{}
	for i := range int32(64) {
		seen[BundleFor(name.NamespaceKey(), 4, PartitionHash(name, i))]++
	}
	if len(seen) != 4 {
		t.Fatalf("64 partitions fell in %d of 4 bundles: %v", len(seen), seen)
	}
}

// ownedBrokers starts n brokers over shared stores, each registered with
// ownership under ID b1, b2, ....
func ownedBrokers(t *testing.T, s stores, n int, mutate ...func(*Config)) []*Broker {
	t.Helper()
	var out []*Broker
	for i := range n {
		b := newBroker(t, s, append([]func(*Config){func(c *Config) { c.LeaseTTL = 300 * time.Millisecond }}, mutate...)...)
		id := fmt.Sprintf("b%d", i+1)
		if err := b.StartOwnership(ctxT(t), Advertised{Native: id + ":6650", Kafka: id + ":9092", Admin: id + ":8080"}); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func brokerByID(t *testing.T, bs []*Broker, id string) *Broker {
	t.Helper()
	for _, b := range bs {
		if b.ID() == id {
			return b
		}
	}
	t.Fatalf("no broker %q", id)
	return nil
}

func TestBundlesAreAssignedToTheLeastLoadedBroker(t *testing.T) {
	s := newStores(t)
	bs := ownedBrokers(t, s, 2)
	name := topic(t, bs[0], "spread", 64)
	for i := range int32(64) {
		if _, err := bs[i%2].Owner(ctxT(t), name, i); err != nil {
			t.Fatal(err)
		}
	}
	live, err := bs[0].LiveBrokers(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 || live[0].Bundles != 2 || live[1].Bundles != 2 {
		t.Fatalf("4 bundles over 2 brokers: %+v, want 2 each", live)
	}
	st, err := bs[1].Bundles(ctxT(t), "public/default")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st {
		if b.Owner.ID == "" || b.Owner.NativeAddr != b.Owner.ID {
			t.Fatalf("bundle %s: owner %+v", b.Bundle, b.Owner)
		}
	}
}

func TestOnlyTheOwnerServesAPartitionAndOthersNameIt(t *testing.T) {
	s := newStores(t)
	bs := ownedBrokers(t, s, 2)
	name := topic(t, bs[0], "owned", 1)
	owner, err := bs[1].Owner(ctxT(t), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	own, other := brokerByID(t, bs, owner.ID), bs[0]
	if other == own {
		other = bs[1]
	}
	if _, err := own.Publish(ctxT(t), name, 0, values("m", 0, 3)); err != nil {
		t.Fatalf("publish on the owner: %v", err)
	}
	_, err = other.Publish(ctxT(t), name, 0, values("m", 3, 1))
	var noe *NotOwnerError
	if !errors.As(err, &noe) || noe.Owner.ID != owner.ID || noe.Owner.NativeAddr != owner.NativeAddr {
		t.Fatalf("publish on the other broker: %v, want a NotOwnerError naming %s", err, owner.ID)
	}
	if _, err := other.Subscribe(ctxT(t), SubscribeOptions{Topic: name, Subscription: "s"}); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("subscribe on the other broker: %v, want ErrNotOwner", err)
	}
}

func TestABrokerWhoseLeaseIsGoneLosesItsBundlesToALiveOne(t *testing.T) {
	s := newStores(t)
	bs := ownedBrokers(t, s, 2)
	name := topic(t, bs[0], "failover", 1)
	owner, err := bs[0].Owner(ctxT(t), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := brokerByID(t, bs, owner.ID)
	survivor := bs[0]
	if survivor == old {
		survivor = bs[1]
	}
	if _, err := old.Publish(ctxT(t), name, 0, values("m", 0, 5)); err != nil {
		t.Fatal(err)
	}
	c, err := old.Subscribe(ctxT(t), SubscribeOptions{Topic: name, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	ds := receive(t, c, 5)
	c.Ack([]int64{ds[0].Offset, ds[1].Offset})
	c.Close() // flushes the cursor

	// The old owner's lease ends as if it had stopped renewing it.
	e, ok, err := catalog.New(s.meta).Brokers.Get(ctxT(t), old.ID())
	if err != nil || !ok {
		t.Fatalf("registration of %s: %v, %v", old.ID(), ok, err)
	}
	if err := s.meta.Revoke(ctxT(t), e.Lease); err != nil {
		t.Fatal(err)
	}
	moved, err := survivor.Owner(ctxT(t), name, 0)
	if err != nil || moved.ID != survivor.ID() {
		t.Fatalf("owner after the lease ended: %+v, %v; want %s", moved, err, survivor.ID())
	}
	base, err := survivor.Publish(ctxT(t), name, 0, values("m", 5, 1))
	if err != nil || base != 5 {
		t.Fatalf("publish on the new owner: offset %d, %v; want 5", base, err)
	}
	c2, err := survivor.Subscribe(ctxT(t), SubscribeOptions{Topic: name, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := receive(t, c2, 4); got[0].Offset != 2 || got[3].Offset != 5 {
		t.Fatalf("the new owner delivers from %d to %d, want 2 to 5 (acked progress kept)", got[0].Offset, got[3].Offset)
	}
	// The old broker finds its lease gone at its next renewal and unloads.
	waitUntil(t, "the old owner to unload its partitions", func() bool { return len(old.loadedPartitions()) == 0 })
	if _, err := old.Publish(ctxT(t), name, 0, values("m", 6, 1)); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("publish on the old owner: %v, want ErrNotOwner", err)
	}
}

func TestUnloadMovesABundleToAnotherBrokerWithItsCursors(t *testing.T) {
	s := newStores(t)
	bs := ownedBrokers(t, s, 2)
	name := topic(t, bs[0], "unload", 1)
	owner, err := bs[0].Owner(ctxT(t), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := brokerByID(t, bs, owner.ID)
	if _, err := old.Publish(ctxT(t), name, 0, values("m", 0, 4)); err != nil {
		t.Fatal(err)
	}
	c, err := old.Subscribe(ctxT(t), SubscribeOptions{Topic: name, Subscription: "s", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	ds := receive(t, c, 4)
	c.Ack([]int64{ds[0].Offset, ds[1].Offset, ds[2].Offset})

	bd, err := old.BundleOf(ctxT(t), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := bs[0]
	if other == old {
		other = bs[1]
	}
	var noe *NotOwnerError
	if _, err := other.UnloadBundle(ctxT(t), bd); !errors.As(err, &noe) || noe.Owner.ID != old.ID() {
		t.Fatalf("unload on a broker that does not own the bundle: %v", err)
	}
	moved, err := old.UnloadBundle(ctxT(t), bd)
	if err != nil || moved.ID != other.ID() {
		t.Fatalf("unload: new owner %+v, %v; want %s", moved, err, other.ID())
	}
	if _, err := c.Next(ctxT(t)); err == nil {
		t.Fatal("the consumer on the old owner still receives after the unload")
	}
	if _, err := old.Publish(ctxT(t), name, 0, values("m", 4, 1)); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("publish on the old owner after the unload: %v, want ErrNotOwner", err)
	}
	c2, err := other.Subscribe(ctxT(t), SubscribeOptions{Topic: name, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := receive(t, c2, 1); got[0].Offset != 3 {
		t.Fatalf("the new owner delivers offset %d first, want 3 (the acks were flushed by the unload)", got[0].Offset)
	}
}

func TestCleanCloseReleasesTheBrokersBundlesAtOnce(t *testing.T) {
	s := newStores(t)
	bs := ownedBrokers(t, s, 2, func(c *Config) { c.LeaseTTL = time.Hour })
	name := topic(t, bs[0], "close", 1)
	owner, err := bs[0].Owner(ctxT(t), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := brokerByID(t, bs, owner.ID)
	if _, err := old.Publish(ctxT(t), name, 0, values("m", 0, 2)); err != nil {
		t.Fatal(err)
	}
	survivor := bs[0]
	if survivor == old {
		survivor = bs[1]
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	// With an hour-long lease, only the release on close can have freed it.
	moved, err := survivor.Owner(ctxT(t), name, 0)
	if err != nil || moved.ID != survivor.ID() {
		t.Fatalf("owner after a clean close: %+v, %v; want %s", moved, err, survivor.ID())
	}
	if base, err := survivor.Publish(ctxT(t), name, 0, values("m", 2, 1)); err != nil || base != 2 {
		t.Fatalf("publish on the new owner: %d, %v", base, err)
	}
	live, err := survivor.LiveBrokers(ctxT(t))
	if err != nil || len(live) != 1 {
		t.Fatalf("live brokers after a clean close: %+v, %v", live, err)
	}
}

func TestARestartedBrokerTakesOverItsPreviousRegistration(t *testing.T) {
	s := newStores(t)
	first := newBroker(t, s, func(c *Config) { c.LeaseTTL = time.Hour; c.ID = "same" })
	if err := first.StartOwnership(ctxT(t), Advertised{Native: "a:1"}); err != nil {
		t.Fatal(err)
	}
	name := topic(t, first, "restart", 1)
	if _, err := first.Publish(ctxT(t), name, 0, values("m", 0, 1)); err != nil {
		t.Fatal(err)
	}
	// A second run with the same ID, the first one never closed (a crash).
	second := newBroker(t, s, func(c *Config) { c.LeaseTTL = time.Hour; c.ID = "same" })
	if err := second.StartOwnership(ctxT(t), Advertised{Native: "a:2"}); err != nil {
		t.Fatal(err)
	}
	if base, err := second.Publish(ctxT(t), name, 0, values("m", 1, 1)); err != nil || base != 1 {
		t.Fatalf("publish on the restarted broker: %d, %v", base, err)
	}
}

func TestIdlePartitionIsUnloadedAndLoadedAgainOnUse(t *testing.T) {
	b := newBroker(t, newStores(t), func(c *Config) { c.IdleTimeout = time.Hour })
	name := topic(t, b, "idle", 2)
	if _, err := b.Publish(ctxT(t), name, 0, values("m", 0, 3)); err != nil {
		t.Fatal(err)
	}
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: name, Partition: 1, Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.loadedPartitions()); n != 2 {
		t.Fatalf("%d partitions loaded, want 2", n)
	}
	// Both are idle by a clock an hour ahead; the one with a consumer stays.
	later := time.Now().Add(time.Hour)
	if n := b.unloadIdle(later); n != 1 {
		t.Fatalf("unloaded %d partitions, want 1 (the one without a consumer)", n)
	}
	ps := b.loadedPartitions()
	if len(ps) != 1 || ps[0].index != 1 {
		t.Fatalf("loaded after the idle unload: %d partitions", len(ps))
	}
	c.Close()
	if n := b.unloadIdle(later); n != 1 || len(b.loadedPartitions()) != 0 {
		t.Fatalf("after the consumer left: unloaded %d, %d still loaded", n, len(b.loadedPartitions()))
	}
	// Used again, the partition loads and continues its offsets.
	if base, err := b.Publish(ctxT(t), name, 0, values("m", 3, 1)); err != nil || base != 3 {
		t.Fatalf("publish after the unload: %d, %v; want offset 3", base, err)
	}
	if n := len(b.loadedPartitions()); n != 1 {
		t.Fatalf("%d partitions loaded after the publish, want 1", n)
	}
	// A partition used since the check is not idle.
	if n := b.unloadIdle(time.Now().Add(-time.Minute)); n != 0 {
		t.Fatalf("unloaded %d partitions used within the idle timeout", n)
	}
}

// waitUntil polls cond until it holds (for up to 10 s).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
