package broker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

func TestEffectivePoliciesResolveTopicThenNamespaceThenBrokerDefault(t *testing.T) {
	b := newBroker(t, newStores(t), func(c *Config) {
		c.Policies.RetentionTime = time.Hour
		c.Policies.PublishRateMsgs = 1000
	})
	ctx := ctxT(t)
	ns := mustNamespace(t, b, "acme/app", NamespaceOptions{})
	n := topic(t, b, "acme/app/orders", 1)
	eff := func() EffectivePolicies {
		t.Helper()
		e, err := b.EffectivePolicies(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := eff(); e.RetentionTime != time.Hour || e.PublishRateMsgs != 1000 || e.RetentionBytes != -1 || e.MessageTTL != 0 ||
		e.BacklogQuotaAction != catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_REQUEST_HOLD {
		t.Fatalf("with nothing set, the broker's defaults: %+v", e)
	}
	if _, err := b.SetNamespacePolicies(ctx, ns, PolicyUpdate{Set: &catalogpb.Policies{
		RetentionMs: proto.Int64(int64(2 * time.Hour / time.Millisecond)), MessageTtlMs: proto.Int64(60_000),
	}}); err != nil {
		t.Fatal(err)
	}
	if e := eff(); e.RetentionTime != 2*time.Hour || e.MessageTTL != time.Minute || e.PublishRateMsgs != 1000 {
		t.Fatalf("namespace sets retention and TTL: %+v", e)
	}
	// Setting one more policy leaves the others as they are.
	if pol, err := b.SetNamespacePolicies(ctx, ns, PolicyUpdate{Set: &catalogpb.Policies{RetentionBytes: proto.Int64(1 << 30)}}); err != nil ||
		pol.GetMessageTtlMs() != 60_000 || pol.GetRetentionBytes() != 1<<30 {
		t.Fatalf("partial update stored %v, %v", pol, err)
	}
	if _, err := b.SetTopicPolicies(ctx, n, PolicyUpdate{Set: &catalogpb.Policies{RetentionMs: proto.Int64(-1), PublishRateMsgs: proto.Int64(0)}}); err != nil {
		t.Fatal(err)
	}
	if e := eff(); e.RetentionTime >= 0 || e.PublishRateMsgs != 0 || e.MessageTTL != time.Minute || e.RetentionBytes != 1<<30 {
		t.Fatalf("topic overrides retention (forever) and the rate (unlimited): %+v", e)
	}
	// Removing the topic's override of retention inherits the namespace's again.
	if _, err := b.SetTopicPolicies(ctx, n, PolicyUpdate{Remove: []string{PolicyRetentionTime}}); err != nil {
		t.Fatal(err)
	}
	if e := eff(); e.RetentionTime != 2*time.Hour || e.PublishRateMsgs != 0 {
		t.Fatalf("after removing the topic's retention: %+v", e)
	}
	topicPol, nsPol, err := b.TopicPolicies(ctx, n)
	if err != nil || topicPol.RetentionMs != nil || topicPol.GetPublishRateMsgs() != 0 || topicPol.PublishRateMsgs == nil || nsPol.GetMessageTtlMs() != 60_000 {
		t.Fatalf("TopicPolicies = %v / %v, %v", topicPol, nsPol, err)
	}
}

func TestInvalidPolicyUpdatesAreRefused(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	ns := mustNamespace(t, b, "acme/app", NamespaceOptions{})
	n := topic(t, b, "acme/app/orders", 1)
	for _, tc := range []struct {
		name  string
		topic bool
		upd   PolicyUpdate
	}{
		{"negative retention other than -1", false, PolicyUpdate{Set: &catalogpb.Policies{RetentionMs: proto.Int64(-2)}}},
		{"negative TTL", false, PolicyUpdate{Set: &catalogpb.Policies{MessageTtlMs: proto.Int64(-1)}}},
		{"zero auto partitions", false, PolicyUpdate{Set: &catalogpb.Policies{AutoTopicPartitions: proto.Int32(0)}}},
		{"unknown policy removed", false, PolicyUpdate{Remove: []string{"colour"}}},
		{"set and removed at once", false, PolicyUpdate{Set: &catalogpb.Policies{MaxTopics: proto.Int32(1)}, Remove: []string{PolicyMaxTopics}}},
		{"max topics on a topic", true, PolicyUpdate{Set: &catalogpb.Policies{MaxTopics: proto.Int32(1)}}},
		{"auto creation on a topic", true, PolicyUpdate{Set: &catalogpb.Policies{AutoTopicCreation: catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_ENABLED}}},
	} {
		var err error
		if tc.topic {
			_, err = b.SetTopicPolicies(ctx, n, tc.upd)
		} else {
			_, err = b.SetNamespacePolicies(ctx, ns, tc.upd)
		}
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", tc.name, err)
		}
	}
	if _, err := b.SetNamespacePolicies(ctx, NamespaceName{"acme", "nope"}, PolicyUpdate{}); !errors.Is(err, ErrNamespaceNotFound) {
		t.Errorf("missing namespace: err = %v", err)
	}
	if _, err := b.SetTopicPolicies(ctx, TopicName{"acme", "app", "nope"}, PolicyUpdate{}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("missing topic: err = %v", err)
	}
}

// TestAPolicyChangeReachesEveryBroker: a broker that has the policies of a
// topic cached sees a change made through another broker (through the
// metadata store's watch), for namespace policies and topic overrides.
func TestAPolicyChangeReachesEveryBroker(t *testing.T) {
	s := newStores(t)
	b1, b2 := newBroker(t, s), newBroker(t, s)
	ctx := ctxT(t)
	ns := mustNamespace(t, b1, "acme/app", NamespaceOptions{})
	n := topic(t, b1, "acme/app/orders", 1)
	if e, err := b1.EffectivePolicies(ctx, n); err != nil || e.PublishRateMsgs != 0 {
		t.Fatalf("before: %+v, %v", e, err)
	}
	waitFor := func(what string, ok func(EffectivePolicies) bool) {
		t.Helper()
		poll(t, what, func() bool {
			e, err := b1.EffectivePolicies(ctx, n)
			return err == nil && ok(e)
		})
	}
	if _, err := b2.SetNamespacePolicies(ctx, ns, PolicyUpdate{Set: &catalogpb.Policies{PublishRateMsgs: proto.Int64(50)}}); err != nil {
		t.Fatal(err)
	}
	waitFor("the namespace's rate on the other broker", func(e EffectivePolicies) bool { return e.PublishRateMsgs == 50 })
	if _, err := b2.SetTopicPolicies(ctx, n, PolicyUpdate{Set: &catalogpb.Policies{PublishRateMsgs: proto.Int64(7)}}); err != nil {
		t.Fatal(err)
	}
	waitFor("the topic's rate on the other broker", func(e EffectivePolicies) bool { return e.PublishRateMsgs == 7 })
	if _, err := b2.SetTopicPolicies(ctx, n, PolicyUpdate{Remove: []string{PolicyPublishRateMsgs}}); err != nil {
		t.Fatal(err)
	}
	waitFor("the override removed on the other broker", func(e EffectivePolicies) bool { return e.PublishRateMsgs == 50 })
}

// poll waits until cond holds, failing the test when its context ends.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := ctxT(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestACachedEntryIsNotOverwrittenByAnOlderLoad: a change watched while a
// load is under way wins over what the load read.
func TestACachedEntryIsNotOverwrittenByAnOlderLoad(t *testing.T) {
	loading, release := make(chan struct{}), make(chan struct{})
	tbl := newPolTable(10, func(context.Context, string) (polEntry, error) {
		close(loading)
		<-release
		return polEntry{rev: 5, exists: true, pol: &catalogpb.Policies{MaxTopics: proto.Int32(1)}}, nil
	})
	done := make(chan *catalogpb.Policies)
	go func() {
		p, _, _ := tbl.get(context.Background(), "k")
		done <- p
	}()
	<-loading
	tbl.update("k", polEntry{rev: 6, exists: true, pol: &catalogpb.Policies{MaxTopics: proto.Int32(2)}})
	close(release)
	<-done
	p, _, err := tbl.get(context.Background(), "k")
	if err != nil || p.GetMaxTopics() != 2 {
		t.Fatalf("after a watched change at rev 6 and a load at rev 5: %v, %v; want max_topics 2", p, err)
	}
	tbl.update("k", polEntry{rev: 4, exists: true, pol: &catalogpb.Policies{MaxTopics: proto.Int32(3)}})
	if p, _, _ := tbl.get(context.Background(), "k"); p.GetMaxTopics() != 2 {
		t.Fatalf("an event older than the cached entry replaced it: %v", p)
	}
	tbl.update("other", polEntry{rev: 9, exists: true})
	if len(tbl.mu.m) != 1 {
		t.Fatal("an event for an uncached key was cached")
	}
}

func TestTokenBucketWaitsInProportionToTheDebt(t *testing.T) {
	var bk bucket
	t0 := time.Unix(1000, 0)
	for i := range 10 {
		if d := bk.take(t0, 10, 1); d != 0 {
			t.Fatalf("message %d of the first second's burst waits %v", i, d)
		}
	}
	if d := bk.take(t0, 10, 1); d != 100*time.Millisecond {
		t.Fatalf("the 11th message in the same instant waits %v, want 100ms", d)
	}
	if d := bk.take(t0.Add(100*time.Millisecond), 10, 1); d != 100*time.Millisecond {
		t.Fatalf("after 100ms, the next waits %v, want 100ms", d)
	}
	if d := bk.take(t0.Add(10*time.Second), 10, 25); d != 1500*time.Millisecond {
		t.Fatalf("a 25-message batch after a long idle waits %v, want 1.5s (the bucket holds one second's worth)", d)
	}
}

// TestPublishOverTheRateIsSlowedNotFailed: with a limit of 10 messages a
// second, the 11th message published at once waits (the limiter asks for
// 100ms) and then succeeds; a publish whose context ends while it waits
// returns the context's error.
func TestPublishOverTheRateIsSlowedNotFailed(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "limited", 1)
	if _, err := b.SetTopicPolicies(ctx, n, PolicyUpdate{Set: &catalogpb.Policies{PublishRateMsgs: proto.Int64(10)}}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	var waits []time.Duration
	b.pol.limits.now = func() time.Time { return now }
	b.pol.limits.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	for i := range 11 {
		if _, err := b.Publish(ctx, n, 0, values("v", i, 1)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if len(waits) != 1 || waits[0] != 100*time.Millisecond {
		t.Fatalf("waits = %v, want one of 100ms (for the 11th message)", waits)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Publish(cctx, n, 0, values("v", 11, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("a throttled publish whose context ends: err = %v, want context.Canceled", err)
	}
	// With the real clock, a throttled publish completes.
	b.pol.limits.now, b.pol.limits.sleep = time.Now, newPublishLimiters(b.stop).sleep
	if _, err := b.SetTopicPolicies(ctx, n, PolicyUpdate{Set: &catalogpb.Policies{PublishRateMsgs: proto.Int64(1000), PublishRateBytes: proto.Int64(1 << 20)}}); err != nil {
		t.Fatal(err)
	}
	for i := range 1100 {
		if _, err := b.PublishAsync(ctx, n, 0, values("w", i, 1)); err != nil {
			t.Fatalf("publish %d over the rate failed: %v", i, err)
		}
	}
}
