package broker

import (
	"errors"
	"testing"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// A committed offset is the subscription's cursor: it survives the
// broker, moves back as well as forward, shows as the subscription's
// backlog, and is where a native consumer of that subscription resumes.
func TestCommittedOffsetIsTheSubscriptionCursor(t *testing.T) {
	st := newStores(t)
	b := newBroker(t, st)
	ctx := ctxT(t)
	n := topic(t, b, "orders", 2)
	if _, err := b.Publish(ctx, n, 1, values("m", 0, 10)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.CommittedOffset(ctx, n, 1, "g"); err != nil || ok {
		t.Fatalf("before any commit: ok=%v err=%v", ok, err)
	}
	if err := b.CommitOffset(ctx, n, 1, "g", Committed{Offset: 7, Metadata: "m7"}); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitOffset(ctx, n, 1, "g", Committed{Offset: 4, Metadata: "back"}); err != nil {
		t.Fatal(err)
	}
	stats, err := b.TopicStats(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	var backlog int64 = -1
	for _, s := range stats.Subscriptions {
		if s.Name == "g" && s.Partition == 1 {
			backlog = s.Backlog
		}
	}
	if backlog != 6 {
		t.Fatalf("backlog of g on partition 1 = %d, want 6 (10 messages, committed 4): %+v", backlog, stats.Subscriptions)
	}
	if err := b.CommitOffset(ctx, n, 1, "g", Committed{Offset: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative offset: %v, want ErrInvalidArgument", err)
	}
	b.Close()

	b2 := newBroker(t, st)
	c, ok, err := b2.CommittedOffset(ctx, n, 1, "g")
	if err != nil || !ok || c != (Committed{Offset: 4, Metadata: "back"}) {
		t.Fatalf("after restart: %+v ok=%v err=%v, want offset 4 \"back\"", c, ok, err)
	}
	cons, err := b2.Subscribe(ctx, SubscribeOptions{Topic: n, Partition: 1, Subscription: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if got := receive(t, cons, 1); got[0].Offset != 4 {
		t.Fatalf("native consumer resumed at %d, want 4", got[0].Offset)
	}
}

// A group row lists the topics a group has cursors on; deleting the group
// deletes those cursors (and only the group's) and the row.
func TestDeleteGroupRemovesItsCursors(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	a, c := topic(t, b, "a", 2), topic(t, b, "c", 1)
	if err := b.AddGroupTopics(ctx, "team.etl", "consumer", []TopicName{c, a}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddGroupTopics(ctx, "team.etl", "consumer", []TopicName{a}); err != nil {
		t.Fatal(err)
	}
	info, ok, err := b.Group(ctx, "team.etl")
	if err != nil || !ok || len(info.Topics) != 2 || info.Topics[0] != a || info.Topics[1] != c || info.ProtocolType != "consumer" {
		t.Fatalf("group row: %+v ok=%v err=%v", info, ok, err)
	}
	for _, sub := range []string{"team.etl", "other"} {
		for _, tp := range []struct {
			n TopicName
			p int32
		}{{a, 0}, {a, 1}, {c, 0}} {
			if err := b.CommitOffset(ctx, tp.n, tp.p, sub, Committed{Offset: 0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A flush that runs after the delete (one racing it, or a consumer's
	// acknowledgement marking the cursor dirty) must not write it back.
	held := b.loadedSubscription(a, 1, "team.etl")
	if held == nil {
		t.Fatal("the group's subscription on a-1 is not loaded")
	}
	if err := b.DeleteGroup(ctx, "team.etl"); err != nil {
		t.Fatal(err)
	}
	held.mu.Lock()
	held.mu.dirty = true
	held.mu.Unlock()
	if err := held.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Group(ctx, "team.etl"); ok {
		t.Fatal("group row left after delete")
	}
	if _, ok, err := b.CommittedOffset(ctx, a, 1, "team.etl"); ok || err != nil {
		t.Fatalf("group cursor left: ok=%v err=%v", ok, err)
	}
	if _, ok, err := b.CommittedOffset(ctx, a, 1, "other"); !ok || err != nil {
		t.Fatalf("another subscription's cursor deleted: ok=%v err=%v", ok, err)
	}
	for _, p := range b.loadedPartitions() {
		if err := p.flushCursors(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := b.cat.Cursors.Get(ctx, catalog.CursorName{Partition: p.pname, Subscription: "team.etl"}); ok {
			t.Fatalf("cursor of %s-%d written back after delete", p.name, p.index)
		}
	}
}
