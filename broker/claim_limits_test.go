package broker

import (
	"bytes"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/internal/record/recordtest"
)

// TestOneNextHandsOutABoundedNumberOfBytes is the poison message of issue
// 15: 40 gzip batches of one 4 MiB record each are a few kilobytes as
// stored, so one read of maxReadBytes took them all, and a consumer with
// permits got one 160 MiB answer, which the Go client refuses (over its 64
// MiB) and asked for again without end: `magctl consume` hung. Each Next
// now hands out what maxClaimBytes allows, at least one message, and the
// rest follows.
func TestOneNextHandsOutABoundedNumberOfBytes(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "big-records", 1)
	const records, size = 40, 4 << 20
	appendGzipRecords(t, b, n, records, size)
	c := subscribe(t, b, SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest})
	c.Flow(1000)
	got := 0
	for got < records {
		ds, err := c.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range ds {
			n += deliveryBytes(d.Record)
		}
		if len(ds) > 1 && n > maxClaimBytes+size {
			t.Fatalf("one Next handed out %d messages, %d bytes: over %d and one message", len(ds), n, maxClaimBytes)
		}
		got += len(ds)
	}
}

// TestRedeliveriesAreBoundedAndComeBeforeNewMessages: messages handed to a
// consumer that leaves without acknowledging them are redelivered to the
// next, a bounded number of bytes at a time, and on an ordered
// subscription before anything published after them.
func TestRedeliveriesAreBoundedAndComeBeforeNewMessages(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "big-redeliveries", 1)
	const records, size = 12, 4 << 20
	appendGzipRecords(t, b, n, records, size)
	opts := SubscribeOptions{Topic: n, Subscription: "s", Initial: Earliest, Type: Failover}
	first := subscribe(t, b, opts)
	first.Flow(1000)
	for got := 0; got < records; {
		ds, err := first.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		got += len(ds)
	}
	second := subscribe(t, b, opts)
	first.Close() // its 12 messages go to the second
	f, err := b.PublishAsync(ctxT(t), n, 0, []record.Record{{Value: []byte("new")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	second.Flow(1000)
	next := int64(0)
	for next <= records {
		ds, err := second.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, d := range ds {
			if d.Offset != next {
				t.Fatalf("got offset %d, want %d: in order, redeliveries before the new message", d.Offset, next)
			}
			next++
			sum += deliveryBytes(d.Record)
		}
		if len(ds) > 1 && sum > maxClaimBytes+size {
			t.Fatalf("one Next handed out %d messages, %d bytes", len(ds), sum)
		}
	}
}

// appendGzipRecords stores count gzip batches of one record of size zero
// bytes each: a few kilobytes as stored, size bytes once decompressed.
func appendGzipRecords(t *testing.T, b *Broker, n TopicName, count, size int) {
	t.Helper()
	batch := recordtest.Batch(record.CodecGzip, 1, recordtest.GzipRecord(t, size))
	for range count {
		f, err := b.AppendBatch(ctxT(t), n, 0, bytes.Clone(batch)) // the broker keeps it and sets its offsets
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Wait(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}
