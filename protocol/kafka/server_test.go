package kafka

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApiVersionsAdvertisesExactlyWhatIsServed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		if len(resp.ApiKeys) != len(supported) {
			t.Fatalf("v%d: %d keys advertised, %d served", v, len(resp.ApiKeys), len(supported))
		}
		for i, k := range resp.ApiKeys {
			if s := supported[i]; k.ApiKey != s.key || k.MinVersion != s.min || k.MaxVersion != s.max {
				t.Fatalf("v%d: advertised %+v, served %+v", v, k, s)
			}
		}
	}
}

func TestEveryAdvertisedVersionIsKnownToTheCodec(t *testing.T) {
	for _, v := range supported {
		req := kmsg.RequestForKey(v.key)
		if req == nil || req.MaxVersion() < v.max {
			t.Errorf("%s: advertised up to v%d, the codec knows up to v%d", kmsg.NameForKey(v.key), v.max, req.MaxVersion())
		}
	}
}

func TestApiVersionsOfAnUnknownVersionIsAnsweredInV0WithOurRange(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	// Version 99 with a body we cannot know.
	frame := binary.BigEndian.AppendUint16(nil, uint16(kmsg.ApiVersions))
	frame = binary.BigEndian.AppendUint16(frame, 99)
	frame = binary.BigEndian.AppendUint32(frame, 7)
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client ID
	frame = append(frame, 0, 0xde, 0xad, 0xbe, 0xef)
	if _, err := c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
		t.Fatal(err)
	}
	v0 := kmsg.NewPtrApiVersionsRequest()
	v0.Version = 0
	resp := c.read(v0, 7).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	var found bool
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.ApiVersions) {
			found = k.MinVersion == 0 && k.MaxVersion == 3
		}
	}
	if !found {
		t.Fatalf("the v0 answer does not list ApiVersions 0-3: %+v", resp.ApiKeys)
	}
	// The connection stays usable.
	v3 := kmsg.NewPtrApiVersionsRequest()
	v3.Version = 3
	if r := c.roundTrip(v3).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("v3 after the unknown version: error %d", r.ErrorCode)
	}
}

func TestUnservedRequestsCloseTheConnection(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	txn := kmsg.NewPtrAddPartitionsToTxnRequest() // transactions: not served
	txn.Version = 3
	c := ts.dial(t)
	c.send(txn)
	c.expectClosed()

	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 13 // topic IDs: not served
	c = ts.dial(t)
	c.send(fetch)
	c.expectClosed()

	c = ts.dial(t)
	c.nc.Write([]byte{0, 0, 0, 3, 1, 2, 3}) // a frame too short for a header
	c.expectClosed()

	c = ts.dial(t)
	c.nc.Write([]byte{0x7f, 0xff, 0xff, 0xff}) // larger than max-request-bytes
	c.expectClosed()
}

func TestRequestsAreAnsweredInOrderWhilePipelined(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "pipelined", 2)

	// A long-poll fetch on an empty partition, then a produce to the
	// other partition, then metadata: answers come in request order even
	// though the fetch is still waiting when the others are done.
	fetch := fetchRequest("pipelined", 0, 0)
	fetch.MaxWaitMillis = 300
	fc := c.send(fetch)
	prod := produceRequest(t, "pipelined", 1, -1, batchOf(t, 3))
	pc := c.send(prod)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	mc := c.send(meta)

	fr := c.read(fetch, fc).(*kmsg.FetchResponse)
	if p := fr.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch: error %d, %d bytes; want an empty answer", p.ErrorCode, len(p.RecordBatches))
	}
	pr := c.read(prod, pc).(*kmsg.ProduceResponse)
	if p := pr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("produce: error %d, base offset %d", p.ErrorCode, p.BaseOffset)
	}
	if mr := c.read(meta, mc).(*kmsg.MetadataResponse); len(mr.Topics) != 1 {
		t.Fatalf("metadata: %d topics, want 1", len(mr.Topics))
	}
}

func TestCloseAnswersWhatWasReadAndReturns(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "closing", 1)
	fetch := fetchRequest("closing", 0, 0)
	fetch.MaxWaitMillis = 30_000
	fc := c.send(fetch)
	waitFor(t, "the fetch to be read", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		for sc := range ts.s.mu.conns {
			if sc.requests.Load() == 2 { // CreateTopics, Fetch
				return true
			}
		}
		return false
	})
	done := make(chan error, 1)
	go func() { done <- ts.s.Close() }()
	fr := c.read(fetch, fc).(*kmsg.FetchResponse)
	if p := fr.Topics[0].Partitions[0]; p.ErrorCode != 0 {
		t.Fatalf("the long poll cut short by Close: error %d", p.ErrorCode)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
}

func TestLargeRequestsAreReadWhole(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxMessageBytes = 8 << 20 })
	c := ts.dial(t)
	createTopic(t, c, "large", 1)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i)
	}
	batch := bigBatch(t, big) // read in several growing chunks
	if code, base := produceCode(t, c, produceRequest(t, "large", 0, -1, batch)); code != 0 || base != 0 {
		t.Fatalf("a 3 MiB batch: error %d, base %d", code, base)
	}
}
