package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// policyBroker is a broker whose policy loop stays out of the way (tests
// call EnforcePolicies or enforce themselves) and whose segments roll
// every KiB.
func policyBroker(t *testing.T, s stores, mutate ...func(*Config)) *Broker {
	t.Helper()
	return newBroker(t, s, append([]func(*Config){func(c *Config) {
		c.SegmentMaxBytes = 1 << 10
		c.SegmentMaxAge = 0
		c.PolicyCheckInterval = time.Hour
		c.TailCacheBytes = 0 // reads go to the segment store, where deletions show
	}}, mutate...)...)
}

// setTopicPolicies sets policies on a topic and waits until the broker's
// policy cache has them.
func setTopicPolicies(t *testing.T, b *Broker, n TopicName, set *catalogpb.Policies, ready func(EffectivePolicies) bool) {
	t.Helper()
	if _, err := b.SetTopicPolicies(ctxT(t), n, PolicyUpdate{Set: set}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the policy change to reach the cache", func() bool {
		pol, err := b.EffectivePolicies(ctxT(t), n)
		return err == nil && ready(pol)
	})
}

func publishN(t *testing.T, b *Broker, n TopicName, batches, perBatch int) {
	t.Helper()
	for i := range batches {
		if _, err := b.Publish(ctxT(t), n, 0, values("v", i*perBatch, perBatch)); err != nil {
			t.Fatal(err)
		}
	}
}

func internalStats(t *testing.T, b *Broker, n TopicName) PartitionInternalStats {
	t.Helper()
	st, err := b.InternalStats(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	return st.Partitions[0]
}

func partitionOf(t *testing.T, b *Broker, n TopicName) *partition {
	t.Helper()
	p, err := b.partitionFor(ctxT(t), n, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// With retention 0 (keep no acknowledged data), the segments a durable
// subscription has consumed are deleted from the partition row and from
// their shard, and none it has not consumed; the open segment stays even
// when everything is consumed; offsets are never reused: the start offset
// moves up, a fetch below it is out of range with the new start, and a new
// subscription from the earliest position starts there.
func TestRetentionDeletesExactlyTheConsumedSealedSegments(t *testing.T) {
	s := newStores(t)
	b := policyBroker(t, s)
	n := topic(t, b, "retained", 1)
	setTopicPolicies(t, b, n, &catalogpb.Policies{RetentionMs: proto.Int64(0)}, func(p EffectivePolicies) bool { return p.RetentionTime == 0 })
	if _, err := b.CreateSubscription(ctxT(t), n, 0, "slow", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	publishN(t, b, n, 20, 10)
	before := internalStats(t, b, n)
	if len(before.Segments) < 4 {
		t.Fatalf("%d segments, want several to test with", len(before.Segments))
	}

	// Nothing consumed: nothing deleted.
	b.EnforcePolicies(ctxT(t))
	if got := internalStats(t, b, n); len(got.Segments) != len(before.Segments) || got.StartOffset != 0 {
		t.Fatalf("with nothing consumed retention left %d segments from %d, want all %d from 0", len(got.Segments), got.StartOffset, len(before.Segments))
	}

	// Consume into the middle of the third segment.
	cursor := before.Segments[2].StartOffset + 1
	if _, err := b.SkipMessages(ctxT(t), n, 0, "slow", cursor); err != nil {
		t.Fatal(err)
	}
	b.EnforcePolicies(ctxT(t))
	after := internalStats(t, b, n)
	if after.StartOffset != before.Segments[2].StartOffset || after.Segments[0].ID != before.Segments[2].ID {
		t.Fatalf("after consuming to %d: start offset %d (first segment %d), want the third segment's start %d (segment %d)",
			cursor, after.StartOffset, after.Segments[0].ID, before.Segments[2].StartOffset, before.Segments[2].ID)
	}
	store, err := s.shards.Shard(ctxT(t), "s1")
	if err != nil {
		t.Fatal(err)
	}
	for i, seg := range before.Segments {
		_, err := store.Info(ctxT(t), seg.ID)
		if gone := errors.Is(err, bookie.ErrSegmentNotFound); gone != (i < 2) {
			t.Fatalf("segment %d (#%d): deleted from its shard = %v, want %v (err %v)", seg.ID, i, gone, i < 2, err)
		}
	}

	// A Kafka-style fetch below the new start is out of range and learns it.
	res, err := b.ReadBatches(ctxT(t), n, 0, 0, 1<<20)
	if !errors.Is(err, ErrOffsetOutOfRange) || res.LogStart != after.StartOffset {
		t.Fatalf("fetch at 0: err %v, log start %d; want out of range with log start %d", err, res.LogStart, after.StartOffset)
	}
	// A new subscription from the earliest position starts at the new start
	// and reads from there.
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "late", Initial: Earliest})
	if ds := receive(t, c, 1); ds[0].Offset != after.StartOffset {
		t.Fatalf("a new earliest subscription got offset %d first, want %d", ds[0].Offset, after.StartOffset)
	}
	c.Close()
	if err := b.DeleteSubscription(ctxT(t), n, 0, "late"); err != nil {
		t.Fatal(err)
	}

	// Everything consumed: every sealed segment goes, the open one stays.
	if _, err := b.SkipMessages(ctxT(t), n, 0, "slow", 1000); err != nil {
		t.Fatal(err)
	}
	b.EnforcePolicies(ctxT(t))
	all := internalStats(t, b, n)
	open := before.Segments[len(before.Segments)-1]
	if len(all.Segments) != 1 || all.Segments[0].ID != open.ID || all.StartOffset != open.StartOffset || all.EndOffset != 200 {
		t.Fatalf("after consuming everything: %d segments (first %d), offsets [%d, %d); want only the open one %d, [%d, 200)",
			len(all.Segments), all.Segments[0].ID, all.StartOffset, all.EndOffset, open.ID, open.StartOffset)
	}
	if got := counterValue(b.metrics.segmentsDeleted); int(got) != len(before.Segments)-1 {
		t.Fatalf("segments deleted counter = %v, want %d", got, len(before.Segments)-1)
	}
	if base, err := b.Publish(ctxT(t), n, 0, values("w", 0, 1)); err != nil || base != 200 {
		t.Fatalf("publish after retention: offset %d, err %v; want 200", base, err)
	}
}

// A partition whose data retention deleted, all but the last sealed
// segment (kept while no segment is open: it records where the offsets go
// on), continues its offsets when it is loaded again.
func TestOffsetsContinueAfterRetentionEmptiedThePartition(t *testing.T) {
	s := newStores(t)
	b := policyBroker(t, s)
	n := topic(t, b, "emptied", 1)
	setTopicPolicies(t, b, n, &catalogpb.Policies{RetentionMs: proto.Int64(0)}, func(p EffectivePolicies) bool { return p.RetentionTime == 0 })
	publishN(t, b, n, 20, 10) // the last batch rolls, so the open segment is empty or nearly
	b.EnforcePolicies(ctxT(t))
	// Roll what is left so the open segment is empty, and delete it.
	p := partitionOf(t, b, n)
	if err := p.do(ctxT(t), func() error {
		p.mu.Lock()
		empty := p.mu.openBytes == 0
		p.mu.Unlock()
		if empty {
			return nil
		}
		return p.roll()
	}); err != nil {
		t.Fatal(err)
	}
	b.EnforcePolicies(ctxT(t))
	if st := internalStats(t, b, n); len(st.Segments) != 1 || st.Segments[0].State != "sealed" || st.EndOffset != 200 {
		t.Fatalf("before the reload: %d segments up to %d, want only the last sealed one, ending at 200", len(st.Segments), st.EndOffset)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := policyBroker(t, s)
	base, err := b2.Publish(ctxT(t), n, 0, values("w", 0, 1))
	if err != nil || base != 200 {
		t.Fatalf("first publish after the reload: offset %d, err %v; want 200 (offsets must never be reused)", base, err)
	}
}

// Retention keeps what its limits cover even when every subscription has
// consumed it — or when there is none — and removes the oldest segments
// once either limit is exceeded: the time limit by each segment's last
// append, the size limit keeping at least that many bytes of the newest
// data.
func TestRetentionLimits(t *testing.T) {
	s := newStores(t)
	b := policyBroker(t, s)
	n := topic(t, b, "limits", 1) // no subscription at all
	publishN(t, b, n, 20, 10)
	p := partitionOf(t, b, n)
	before := internalStats(t, b, n)
	now := time.Now()

	setTopicPolicies(t, b, n, &catalogpb.Policies{RetentionMs: proto.Int64(time.Hour.Milliseconds()), RetentionBytes: proto.Int64(-1)},
		func(p EffectivePolicies) bool { return p.RetentionTime == time.Hour && p.RetentionBytes == -1 })
	if err := p.enforce(ctxT(t), now); err != nil {
		t.Fatal(err)
	}
	if got := internalStats(t, b, n); len(got.Segments) != len(before.Segments) {
		t.Fatalf("within a 1h retention time %d of %d segments are left, want all", len(got.Segments), len(before.Segments))
	}

	// Size: keep at least the newest 3 KiB.
	const keep = 3 << 10
	setTopicPolicies(t, b, n, &catalogpb.Policies{RetentionBytes: proto.Int64(keep)}, func(p EffectivePolicies) bool { return p.RetentionBytes == keep })
	if err := p.enforce(ctxT(t), now); err != nil {
		t.Fatal(err)
	}
	got := internalStats(t, b, n)
	var kept int64
	for _, seg := range got.Segments {
		kept += seg.Bytes
	}
	if kept < keep || kept-got.Segments[0].Bytes >= keep {
		t.Fatalf("a 3 KiB size limit kept %d bytes in %d segments: want at least 3 KiB, and less without the oldest", kept, len(got.Segments))
	}

	// Time: two hours later everything sealed is past the 1h limit.
	if err := p.enforce(ctxT(t), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := internalStats(t, b, n); len(got.Segments) != 1 || got.Segments[0].State != "open" {
		t.Fatalf("past the retention time %d segments are left, want only the open one", len(got.Segments))
	}

	// Infinite retention (both -1) keeps everything.
	n2 := topic(t, b, "forever", 1)
	setTopicPolicies(t, b, n2, &catalogpb.Policies{RetentionMs: proto.Int64(-1), RetentionBytes: proto.Int64(-1)},
		func(p EffectivePolicies) bool { return p.RetentionTime < 0 && p.RetentionBytes == -1 })
	publishN(t, b, n2, 20, 10)
	p2 := partitionOf(t, b, n2)
	if err := p2.enforce(ctxT(t), now.Add(1000*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := internalStats(t, b, n2); got.StartOffset != 0 {
		t.Fatalf("infinite retention moved the start to %d", got.StartOffset)
	}
}

func TestDeletableSegments(t *testing.T) {
	now := time.UnixMilli(10_000_000)
	sealed := func(start, end, bytes int64, ageMs int64) *catalogpb.Segment {
		return &catalogpb.Segment{State: catalogpb.SegmentState_SEGMENT_SEALED, StartOffset: start, EndOffset: end, Bytes: bytes,
			LastAppendUnixMs: now.UnixMilli() - ageMs}
	}
	segs := []*catalogpb.Segment{
		sealed(0, 10, 100, 5000), sealed(10, 20, 100, 4000), sealed(20, 30, 100, 3000),
		{State: catalogpb.SegmentState_SEGMENT_OPEN, StartOffset: 30},
	}
	const openBytes = 100
	for _, tc := range []struct {
		name      string
		minCursor int64
		timeMs    int64 // -1: no time limit
		size      int64 // -1: no size limit
		want      int
	}{
		{"a segment a cursor is inside stays", 15, 0, -1, 1},
		{"everything consumed and no retention leaves the open segment", 40, 0, -1, 3},
		{"the time limit keeps younger segments", 40, 3500, -1, 2},
		{"the size limit keeps the newest bytes", 40, -1, 200, 2},
		{"either limit exceeded deletes", 40, 4500, 350, 1},
		{"an unconsumed first segment blocks the rest", 5, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := EffectivePolicies{RetentionTime: msDuration(tc.timeMs), RetentionBytes: tc.size}
			if got := deletableSegments(segs, openBytes, tc.minCursor, pol, now); len(got) != tc.want {
				t.Fatalf("%d deletable, want %d", len(got), tc.want)
			}
		})
	}
}

// Message TTL acknowledges, on every subscription, the messages published
// longer ago than the TTL, and keeps the attached consumer: it goes on
// with the first message within the TTL.
func TestMessageTTLAcknowledgesOldMessagesWithoutDisconnecting(t *testing.T) {
	b := policyBroker(t, newStores(t))
	n := topic(t, b, "ttl", 1)
	setTopicPolicies(t, b, n, &catalogpb.Policies{MessageTtlMs: proto.Int64(time.Hour.Milliseconds())},
		func(p EffectivePolicies) bool { return p.MessageTTL == time.Hour })
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	defer c.Close()
	old, fresh := time.Now().Add(-2*time.Hour).UnixMilli(), time.Now().UnixMilli()
	for i := range 5 {
		if _, err := b.Publish(ctxT(t), n, 0, []record.Record{{Value: fmt.Appendf(nil, "old-%d", i), Timestamp: old}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := b.Publish(ctxT(t), n, 0, []record.Record{{Value: fmt.Appendf(nil, "new-%d", i), Timestamp: fresh}}); err != nil {
			t.Fatal(err)
		}
	}
	b.EnforcePolicies(ctxT(t))
	if got := backlogOf(t, b, n, "s"); got != 3 {
		t.Fatalf("backlog after TTL = %d, want the 3 fresh messages", got)
	}
	ds := receive(t, c, 3)
	for i, d := range ds {
		if want := fmt.Sprintf("new-%d", i); string(d.Record.Value) != want {
			t.Fatalf("message %d after TTL = %q (offset %d), want %q", i, d.Record.Value, d.Offset, want)
		}
	}
	if got := counterValue(b.metrics.messagesExpired); got != 5 {
		t.Fatalf("expired counter = %v, want 5", got)
	}
}

// producer_request_hold: once the slowest subscription's backlog is over
// the quota, a publish waits until consumers catch up, and then succeeds.
func TestBacklogQuotaHoldWaitsForConsumers(t *testing.T) {
	b := policyBroker(t, newStores(t))
	n := topic(t, b, "hold", 1)
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	defer c.Close()
	publishN(t, b, n, 5, 10)
	setTopicPolicies(t, b, n, &catalogpb.Policies{BacklogQuotaBytes: proto.Int64(100),
		BacklogQuotaAction: catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_REQUEST_HOLD},
		func(p EffectivePolicies) bool { return p.BacklogQuotaBytes == 100 })

	type result struct {
		off int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		off, err := b.Publish(ctxT(t), n, 0, values("held", 0, 1))
		done <- result{off, err}
	}()
	poll(t, "the publish to be held", func() bool { return counterValue(b.metrics.publishesHeld) == 1 })
	select {
	case r := <-done:
		t.Fatalf("a publish over the quota completed (offset %d, err %v) before consumers caught up", r.off, r.err)
	default:
	}
	ds := receive(t, c, 50)
	c.Ack(offsetsOf(ds))
	r := <-done
	if r.err != nil || r.off != 50 {
		t.Fatalf("held publish: offset %d, err %v; want 50 once the backlog is gone", r.off, r.err)
	}
}

// producer_exception: a publish over the quota fails at once with
// ErrBacklogQuotaExceeded; once the backlog is acknowledged it succeeds.
func TestBacklogQuotaExceptionFailsPublishes(t *testing.T) {
	b := policyBroker(t, newStores(t))
	n := topic(t, b, "exception", 1)
	if _, err := b.CreateSubscription(ctxT(t), n, 0, "s", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	publishN(t, b, n, 5, 10)
	setTopicPolicies(t, b, n, &catalogpb.Policies{BacklogQuotaBytes: proto.Int64(100),
		BacklogQuotaAction: catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_EXCEPTION},
		func(p EffectivePolicies) bool { return p.BacklogQuotaBytes == 100 })
	if _, err := b.Publish(ctxT(t), n, 0, values("x", 0, 1)); !errors.Is(err, ErrBacklogQuotaExceeded) {
		t.Fatalf("publish over the quota: %v, want ErrBacklogQuotaExceeded", err)
	}
	if _, err := b.SkipMessages(ctxT(t), n, 0, "s", 50); err != nil {
		t.Fatal(err)
	}
	if off, err := b.Publish(ctxT(t), n, 0, values("x", 0, 1)); err != nil || off != 50 {
		t.Fatalf("publish after the backlog was skipped: offset %d, err %v; want 50", off, err)
	}
}

// consumer_backlog_eviction: publishes go on, and the policy loop moves a
// subscription over the quota forward until its estimated backlog fits,
// dropping its oldest messages; a subscription within the quota is not
// touched.
func TestBacklogQuotaEvictionDropsTheOldestBacklog(t *testing.T) {
	b := policyBroker(t, newStores(t))
	n := topic(t, b, "evict", 1)
	const quota = 2 << 10
	setTopicPolicies(t, b, n, &catalogpb.Policies{BacklogQuotaBytes: proto.Int64(quota),
		BacklogQuotaAction: catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_CONSUMER_BACKLOG_EVICTION},
		func(p EffectivePolicies) bool { return p.BacklogQuotaBytes == quota })
	for _, sub := range []string{"slow", "fast"} {
		if _, err := b.CreateSubscription(ctxT(t), n, 0, sub, Earliest, nil); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, b, n, 40, 10) // far more than 2 KiB, and no publish is refused
	if _, err := b.SkipMessages(ctxT(t), n, 0, "fast", 395); err != nil {
		t.Fatal(err)
	}
	b.EnforcePolicies(ctxT(t))
	st := internalStats(t, b, n)
	for _, c := range st.Cursors {
		switch c.Name {
		case "slow":
			if c.BacklogBytes > quota || c.BacklogBytes < quota/2 || c.NextOffset == 0 {
				t.Fatalf("slow subscription after eviction: cursor %d, backlog about %d bytes; want it moved forward to just under %d bytes", c.NextOffset, c.BacklogBytes, quota)
			}
		case "fast":
			if c.NextOffset != 395 {
				t.Fatalf("the subscription within the quota moved to %d, want it left at 395", c.NextOffset)
			}
		}
	}
	if got := counterValue(b.metrics.messagesEvicted); got == 0 {
		t.Fatal("no eviction counted")
	}
}

// An open segment older than --broker.segment-max-age that holds data is
// sealed by the policy loop (so retention can reach it), and the next
// publish opens the next one.
func TestSegmentRollsByAge(t *testing.T) {
	b := policyBroker(t, newStores(t), func(c *Config) {
		c.SegmentMaxBytes = 1 << 30
		c.SegmentMaxAge = time.Millisecond
	})
	n := topic(t, b, "aged", 1)
	if _, err := b.Publish(ctxT(t), n, 0, values("v", 0, 3)); err != nil {
		t.Fatal(err)
	}
	poll(t, "the aged segment to roll", func() bool {
		b.EnforcePolicies(ctxT(t))
		return internalStats(t, b, n).Segments[0].State == "sealed"
	})
	for range 3 {
		b.EnforcePolicies(ctxT(t))
	}
	st := internalStats(t, b, n)
	if len(st.Segments) != 1 || st.Segments[0].EndOffset != 3 || st.Segments[0].SealedUnixMs == 0 {
		t.Fatalf("segments after rolling by age: %+v; want one sealed [0, 3) with its seal time, and no open one", st.Segments)
	}
	if base, err := b.Publish(ctxT(t), n, 0, values("v", 3, 1)); err != nil || base != 3 {
		t.Fatalf("publish after the roll: offset %d, %v; want 3", base, err)
	}
	if st := internalStats(t, b, n); len(st.Segments) != 2 || st.Segments[1].State != "open" || st.Segments[1].StartOffset != 3 {
		t.Fatalf("segments after the next publish: %+v; want the sealed one, then an open one from 3", st.Segments)
	}
}

// The policy loop runs by itself every PolicyCheckInterval.
func TestPolicyLoopAppliesRetention(t *testing.T) {
	b := policyBroker(t, newStores(t), func(c *Config) { c.PolicyCheckInterval = 10 * time.Millisecond })
	n := topic(t, b, "loop", 1)
	setTopicPolicies(t, b, n, &catalogpb.Policies{RetentionMs: proto.Int64(0)}, func(p EffectivePolicies) bool { return p.RetentionTime == 0 })
	publishN(t, b, n, 20, 10)
	poll(t, "the loop to delete every sealed segment", func() bool {
		st := internalStats(t, b, n)
		return len(st.Segments) == 1 && st.Segments[0].State == "open"
	})
}

// The internal stats show a cursor's individually acknowledged ranges.
func TestInternalStatsShowAckedRanges(t *testing.T) {
	b := policyBroker(t, newStores(t))
	n := topic(t, b, "istats", 1)
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest, Type: Shared})
	defer c.Close()
	publishN(t, b, n, 1, 10)
	receive(t, c, 10)
	c.Ack([]int64{0, 2, 3, 7})
	var cur CursorInternalStats
	for _, x := range internalStats(t, b, n).Cursors {
		if x.Name == "s" {
			cur = x
		}
	}
	want := []OffsetRange{{2, 4}, {7, 8}}
	if cur.NextOffset != 1 || cur.AckedRanges != 2 || fmt.Sprint(cur.FirstAckedRanges) != fmt.Sprint(want) || cur.Pending != 6 || cur.Type != "Shared" || cur.Consumers != 1 {
		t.Fatalf("cursor stats %+v; want next 1, ranges %v, 6 pending, one Shared consumer", cur, want)
	}
}
