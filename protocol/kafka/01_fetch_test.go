package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/internal/record"
)

func TestFetchFromTheMiddleOfABatchReturnsThatBatch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "middle", 1)
	for range 2 {
		if code, _ := produceCode(t, c, produceRequest(t, "middle", 0, -1, batchOf(t, 5))); code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	fr := c.roundTrip(fetchRequest("middle", 0, 2)).(*kmsg.FetchResponse)
	p := fr.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 10 || p.LastStableOffset != 10 || p.LogStartOffset != 0 {
		t.Fatalf("error %d, high watermark %d, last stable %d, log start %d", p.ErrorCode, p.HighWatermark, p.LastStableOffset, p.LogStartOffset)
	}
	batches, err := record.SplitBatches(nil, p.RecordBatches)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 2 {
		t.Fatalf("%d batches, want both", len(batches))
	}
	if h, _ := record.ParseHeader(batches[0]); h.BaseOffset != 0 {
		t.Fatalf("first batch at %d, want the one holding offset 2 (at 0)", h.BaseOffset)
	}
	if _, err := record.VerifyCRC(batches[1]); err != nil {
		t.Fatalf("a served batch fails its CRC: %v", err)
	}
}

func TestFetchOutOfRange(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "range", 1)
	produceCode(t, c, produceRequest(t, "range", 0, -1, batchOf(t, 3)))
	for _, off := range []int64{-1, 4} {
		p := c.roundTrip(fetchRequest("range", 0, off)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 3 || p.LogStartOffset != 0 {
			t.Fatalf("offset %d: error %d, high watermark %d, log start %d", off, p.ErrorCode, p.HighWatermark, p.LogStartOffset)
		}
	}
	p := c.roundTrip(fetchRequest("nope", 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: error %d", p.ErrorCode)
	}
}

func TestFetchLongPollWakesOnNewData(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "poll", 1)
	fetch := fetchRequest("poll", 0, 0)
	fetch.MaxWaitMillis = 25_000 // the test's own deadline is longer than this
	fetch.MinBytes = 1
	fc := c.send(fetch)
	other := ts.dial(t)
	if code, _ := produceCode(t, other, produceRequest(t, "poll", 0, -1, batchOf(t, 2))); code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	// Had the fetch slept until max_wait it would answer what it had when
	// it started: nothing. Data in the answer means new data woke it.
	p := c.read(fetch, fc).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("error %d, %d bytes; want the new batch", p.ErrorCode, len(p.RecordBatches))
	}
}

func TestFetchSessionsAreDeclined(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "sessions", 1)
	fetch := fetchRequest("sessions", 0, 0)
	fetch.SessionEpoch = 0 // asks for a new session
	if r := c.roundTrip(fetch).(*kmsg.FetchResponse); r.ErrorCode != 0 || r.SessionID != 0 {
		t.Fatalf("new session: error %d, session %d; want no session", r.ErrorCode, r.SessionID)
	}
	fetch.SessionID, fetch.SessionEpoch = 42, 1
	if r := c.roundTrip(fetch).(*kmsg.FetchResponse); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: error %d, want FETCH_SESSION_ID_NOT_FOUND", r.ErrorCode)
	}
}

func TestFetchResponseSizeLimits(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "limits", 2)
	for p := int32(0); p < 2; p++ {
		for range 3 {
			produceCode(t, c, produceRequest(t, "limits", p, -1, batchOf(t, 10)))
		}
	}
	size := len(batchOf(t, 10))
	fetch := fetchRequest("limits", 0, 0)
	rp := fetch.Topics[0].Partitions[0]
	rp.Partition = 1
	fetch.Topics[0].Partitions = append(fetch.Topics[0].Partitions, rp)
	fetch.MaxBytes = 1 // smaller than one batch: the first partition still gets one (KIP-74)
	r := c.roundTrip(fetch).(*kmsg.FetchResponse)
	if n := len(r.Topics[0].Partitions[0].RecordBatches); n != size {
		t.Fatalf("partition 0: %d bytes, want exactly one batch (%d)", n, size)
	}
	if n := len(r.Topics[0].Partitions[1].RecordBatches); n != 0 {
		t.Fatalf("partition 1: %d bytes past the response limit", n)
	}
	fetch.MaxBytes = 1 << 20
	fetch.Topics[0].Partitions[0].PartitionMaxBytes = int32(2 * size)
	r = c.roundTrip(fetch).(*kmsg.FetchResponse)
	if n := len(r.Topics[0].Partitions[0].RecordBatches); n != 2*size {
		t.Fatalf("partition 0: %d bytes, want two batches (%d)", n, 2*size)
	}
	if n := len(r.Topics[0].Partitions[1].RecordBatches); n != 3*size {
		t.Fatalf("partition 1: %d bytes, want all three batches (%d)", n, 3*size)
	}
}

// A fetch long-polling a partition whose topic is deleted is answered at
// once with UNKNOWN_TOPIC_OR_PARTITION, not after its max wait with
// nothing.
func TestFetchLongPollEndsWhenTheTopicIsDeleted(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "vanishing", 1)
	fetch := fetchRequest("vanishing", 0, 0)
	fetch.MaxWaitMillis = 25_000 // the test's own deadline is longer than this
	fetch.MinBytes = 1
	fc := c.send(fetch)
	waitFor(t, "the fetch to be read", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		for sc := range ts.s.mu.conns {
			if sc.requests.Load() > 1 { // CreateTopics, then the fetch
				return true
			}
		}
		return false
	})
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version, del.TopicNames = 4, []string{"vanishing"}
	if r := ts.dial(t).roundTrip(del).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete: %d", r.Topics[0].ErrorCode)
	}
	p := c.read(fetch, fc).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("fetch after the delete: error %d, want UNKNOWN_TOPIC_OR_PARTITION", p.ErrorCode)
	}
}

// A Fetch response holds at most fetch-max-bytes of records, whatever the
// client asks for: MaxBytes is the client's to choose, up to 2 GiB, and
// each of a connection's pipelined requests is built in memory.
func TestFetchResponsesAreCappedByTheServer(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.FetchMaxBytes = 4096 })
	c := ts.dial(t)
	createTopic(t, c, "capped", 1)
	for range 20 {
		if code, _ := produceCode(t, c, produceRequest(t, "capped", 0, -1, bigBatch(t, make([]byte, 1000)))); code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	req := fetchRequest("capped", 0, 0)
	req.MaxBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 1<<30, 1<<30
	resp := c.roundTrip(req).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || len(p.RecordBatches) > 4096+1200 {
		t.Fatalf("a fetch asking for 1 GiB: error %d, %d bytes of records; want some, at most 4096 and a batch", p.ErrorCode, len(p.RecordBatches))
	}
}
