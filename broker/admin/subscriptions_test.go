package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// newAPIWithBroker is newAPI that also returns the broker, to publish
// through.
func newAPIWithBroker(t *testing.T) (*api, *broker.Broker) {
	t.Helper()
	meta := metadatatest.NewStore()
	b, err := broker.New(broker.DefaultConfig(), meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, b, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		b.Close()
		meta.Close()
	})
	return &api{t, srv}, b
}

func publishTo(t *testing.T, b *broker.Broker, topic string, partition int32, n int, ts time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name, err := b.ParseTopic(topic)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := b.Publish(ctx, name, partition, []record.Record{{Value: fmt.Appendf(nil, "m%d", i), Timestamp: ts.UnixMilli()}}); err != nil {
			t.Fatal(err)
		}
	}
}

func cursors(t *testing.T, body string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for _, c := range decode[[]CursorPosition](t, body) {
		out[c.Partition] = c.NextOffset
	}
	return out
}

// Subscriptions are created on every partition (or one), listed, reset,
// skipped, expired and deleted over REST; errors have their statuses.
func TestSubscriptionAdminOverREST(t *testing.T) {
	a, b := newAPIWithBroker(t)
	a.call("PUT", "/admin/v1/topics/orders", `{"partitions":2}`, http.StatusCreated)
	old := time.Now().Add(-time.Hour)
	publishTo(t, b, "orders", 0, 10, old)
	publishTo(t, b, "orders", 1, 4, old)
	publishTo(t, b, "orders", 0, 5, time.Now())
	const sub = "/admin/v1/subscriptions/orders?subscription=audit"

	if got := cursors(t, a.call("PUT", sub, `{"from":"earliest"}`, http.StatusCreated)); got[0] != 0 || got[1] != 0 {
		t.Fatalf("created at earliest: %v", got)
	}
	a.call("PUT", sub, `{"from":"earliest"}`, http.StatusConflict)
	a.call("PUT", sub+"x", `{"from":"sideways"}`, http.StatusBadRequest)
	if got := cursors(t, a.call("PUT", "/admin/v1/subscriptions/orders?subscription=tail", `{"from":"latest","partition":0}`, http.StatusCreated)); len(got) != 1 || got[0] != 15 {
		t.Fatalf("created at latest on partition 0 only: %v", got)
	}
	if got := cursors(t, a.call("PUT", "/admin/v1/subscriptions/orders?subscription=mid", `{"from":"offset","offset":7,"partition":0}`, http.StatusCreated)); got[0] != 7 {
		t.Fatalf("created at offset 7: %v", got)
	}

	subs := decode[[]broker.SubscriptionStats](t, a.call("GET", "/admin/v1/subscriptions/orders", "", http.StatusOK))
	if len(subs) != 4 {
		t.Fatalf("listed %d subscription partitions, want audit×2, mid, tail: %+v", len(subs), subs)
	}

	if got := cursors(t, a.call("POST", sub, `{"action":"skip","count":3}`, http.StatusOK)); got[0] != 3 || got[1] != 3 {
		t.Fatalf("after skipping 3 on each partition: %v", got)
	}
	if got := cursors(t, a.call("POST", sub, `{"action":"reset","to_offset":1,"partition":0}`, http.StatusOK)); len(got) != 1 || got[0] != 1 {
		t.Fatalf("after a reset of partition 0 to 1: %v", got)
	}
	if got := cursors(t, a.call("POST", sub, `{"action":"expire","older_than_ms":60000}`, http.StatusOK)); got[0] != 10 || got[1] != 4 {
		t.Fatalf("after expiring what is older than a minute: %v; want 10 (the fresh ones stay) and 4", got)
	}
	if got := cursors(t, a.call("POST", sub, fmt.Sprintf(`{"action":"reset","to_time_ms":%d}`, old.Add(-time.Minute).UnixMilli()), http.StatusOK)); got[0] != 0 || got[1] != 0 {
		t.Fatalf("after a reset to a time before everything: %v", got)
	}
	a.call("POST", sub, `{"action":"reset"}`, http.StatusBadRequest)
	a.call("POST", sub, `{"action":"rewind"}`, http.StatusBadRequest)
	a.call("POST", "/admin/v1/subscriptions/orders?subscription=ghost", `{"action":"skip","count":1}`, http.StatusNotFound)
	a.call("POST", sub, `{"action":"skip","count":1,"partition":5}`, http.StatusNotFound)
	a.call("POST", "/admin/v1/subscriptions/orders", `{"action":"skip","count":1}`, http.StatusBadRequest)

	st := decode[broker.TopicInternalStats](t, a.call("GET", "/admin/v1/internal-stats/topics/orders", "", http.StatusOK))
	if len(st.Partitions) != 2 || st.Partitions[0].EndOffset != 15 || len(st.Partitions[0].Segments) == 0 || len(st.Partitions[0].Cursors) != 3 {
		t.Fatalf("internal stats: %+v", st)
	}
	if seg := st.Partitions[0].Segments[0]; seg.State != "open" || seg.Shard != "s1" || seg.CreatedUnixMs == 0 {
		t.Fatalf("the open segment in internal stats: %+v", seg)
	}

	a.call("DELETE", "/admin/v1/subscriptions/orders?subscription=mid", "", http.StatusNoContent)
	a.call("DELETE", "/admin/v1/subscriptions/orders?subscription=mid", "", http.StatusNotFound)
	a.call("DELETE", sub+"&partition=1", "", http.StatusNoContent)
	subs = decode[[]broker.SubscriptionStats](t, a.call("GET", "/admin/v1/subscriptions/orders", "", http.StatusOK))
	if len(subs) != 2 || subs[0].Name != "audit" || subs[0].Partition != 0 || subs[1].Name != "tail" {
		t.Fatalf("after the deletes: %+v; want audit on partition 0 and tail", subs)
	}
	a.call("GET", "/admin/v1/internal-stats/topics/nope", "", http.StatusNotFound)
}
