package broker

import (
	"testing"
)

// A consumer acknowledges what it was given, which is below the
// partition's end. An acknowledgement of an offset not yet published was
// stored all the same: one request naming offsets 65,536 apart made one
// bitmap and one metadata row each (and a sorted insert each, quadratic),
// and a cumulative one moved the cursor past the end, so the messages
// published next were never delivered. Offsets at or past the end are now
// ignored, as Pulsar does with positions past the last entry.
func TestAcknowledgementsOfOffsetsNotYetPublishedAreIgnored(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "acks", 1)
	if _, err := b.Publish(ctxT(t), n, 0, values("m", 0, 10)); err != nil {
		t.Fatal(err)
	}
	c, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest, Type: Shared})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	receive(t, c, 10)
	far := []int64{5}
	for i := int64(1); i <= 10000; i++ {
		far = append(far, 10+i<<chunkBits)
	}
	c.Ack(far)
	st, err := b.InternalStats(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if cur := st.Partitions[0].Cursors[0]; cur.Acked != 1 || cur.AckChunks != 1 || cur.NextOffset != 0 {
		t.Fatalf("after acking offset 5 and 10,000 offsets not published: %d acked in %d chunks, next %d; want 1 in 1, next 0",
			cur.Acked, cur.AckChunks, cur.NextOffset)
	}

	x, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "x", Initial: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	receive(t, x, 10)
	if err := x.AckCumulative(1 << 50); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctxT(t), n, 0, values("later", 0, 3)); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, x, 3); got[0].Offset != 10 || string(got[0].Record.Value) != "later-0" {
		t.Fatalf("after a cumulative ack past the end, the next message delivered is %d %q; want 10 \"later-0\"", got[0].Offset, got[0].Record.Value)
	}
}
