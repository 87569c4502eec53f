package native

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// fuzzTopic has fuzzPartitions partitions of fuzzMessages messages each.
const (
	fuzzTopic      = "fuzz"
	fuzzPartitions = 2
	fuzzMessages   = 20
)

// newFuzzServer returns the native service of a broker on fake stores,
// called directly rather than through gRPC, with fuzzTopic filled.
func newFuzzServer(f *testing.F) *Server {
	f.Helper()
	meta := metadatatest.NewStore()
	b, err := broker.New(broker.DefaultConfig(), meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		b.Close()
		meta.Close()
	})
	ctx := context.Background()
	name, err := b.ParseTopic(fuzzTopic)
	if err != nil {
		f.Fatal(err)
	}
	if err := b.CreateTopic(ctx, name, fuzzPartitions); err != nil {
		f.Fatal(err)
	}
	for p := range int32(fuzzPartitions) {
		recs := make([]record.Record, fuzzMessages)
		for i := range recs {
			recs[i] = record.Record{Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, "v%d", i), Timestamp: int64(1000 + i)}
		}
		if _, err := b.Publish(ctx, name, p, recs); err != nil {
			f.Fatal(err)
		}
	}
	return NewServer(b, "127.0.0.1:6650", nil)
}

// wantStatus fails unless err is nil or a gRPC status with a code that
// says what was wrong: bad input must never be an internal error.
func wantStatus(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%s: %v is not a gRPC status (the client would see UNKNOWN)", what, err)
	}
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		t.Fatalf("%s: %v", what, err)
	}
}

// FuzzLookup looks up whatever a LookupRequest decodes to: a topic is
// found, created, or refused with a status that says why.
func FuzzLookup(f *testing.F) {
	for _, req := range []*nativepb.LookupRequest{
		{Topic: fuzzTopic},
		{Topic: "persistent://public/default/" + fuzzTopic},
		{Topic: "made-on-lookup", AutoCreate: true},
		{Topic: "public/default/missing"},
		{Topic: "no-such-tenant/ns/t", AutoCreate: true},
		{Topic: "a/b"},
		{Topic: ""},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req nativepb.LookupRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return // gRPC itself refuses what does not decode
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := s.Lookup(ctx, &req)
		if ctx.Err() != nil {
			t.Fatalf("Lookup %q did not answer before its deadline: %v", req.GetTopic(), err)
		}
		wantStatus(t, "Lookup", err)
		if err == nil && (resp.GetPartitions() < 1 || resp.GetTopic() == "") {
			t.Fatalf("Lookup %q answered %v", req.GetTopic(), resp)
		}
	})
}

// consumeStream is a consumer's side of a Consume stream: Recv hands out
// its requests, then io.EOF (the client closed its side).
type consumeStream struct {
	grpc.ServerStream
	ctx context.Context

	mu   sync.Mutex
	reqs []*nativepb.ConsumeRequest
	sent []*nativepb.ConsumeResponse
}

func (s *consumeStream) Context() context.Context { return s.ctx }

func (s *consumeStream) Recv() (*nativepb.ConsumeRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return nil, io.EOF
	}
	r := s.reqs[0]
	s.reqs = s.reqs[1:]
	return r, nil
}

func (s *consumeStream) Send(r *nativepb.ConsumeResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, r)
	return nil
}

// maxFuzzRequests bounds the requests of one Consume stream.
const maxFuzzRequests = 64

// appendRequest appends m, length-prefixed, to an input of
// FuzzConsumeStream.
func appendRequest(f *testing.F, b []byte, m *nativepb.ConsumeRequest) []byte {
	data, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return append(binary.AppendUvarint(b, uint64(len(data))), data...)
}

// splitRequests decodes uvarint-length-prefixed ConsumeRequests; it stops
// at the first that does not decode (gRPC would end the stream there).
func splitRequests(b []byte) []*nativepb.ConsumeRequest {
	var out []*nativepb.ConsumeRequest
	for len(b) > 0 && len(out) < maxFuzzRequests {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			break
		}
		var r nativepb.ConsumeRequest
		if proto.Unmarshal(b[k:k+int(n)], &r) != nil {
			break
		}
		out = append(out, &r)
		b = b[k+int(n):]
	}
	return out
}

// FuzzConsumeStream runs the Consume handler on a stream whose first
// request is the subscribe decoded from its first input and whose next
// are the flow, ack, nack and seek requests (or anything else) decoded
// from its second: the handler returns nil once the client closes its
// side, or a status that says what was wrong, never an internal error,
// never a panic, and never waits past its deadline.
func FuzzConsumeStream(f *testing.F) {
	sub := func(m *nativepb.Subscribe) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	reqs := func(ms ...*nativepb.ConsumeRequest) []byte {
		var b []byte
		for _, m := range ms {
			b = appendRequest(f, b, m)
		}
		return b
	}
	flow := func(n uint32) *nativepb.ConsumeRequest {
		return &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Flow{Flow: &nativepb.Flow{Permits: n}}}
	}
	ack := func(cumulative bool, offs ...int64) *nativepb.ConsumeRequest {
		return &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Ack{Ack: &nativepb.Ack{Offsets: offs, Cumulative: cumulative}}}
	}
	nack := func(offs ...int64) *nativepb.ConsumeRequest {
		return &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Nack{Nack: &nativepb.Nack{Offsets: offs}}}
	}
	seekOffset := func(off int64) *nativepb.ConsumeRequest {
		return &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Seek{Seek: &nativepb.Seek{Target: &nativepb.Seek_Offset{Offset: off}}}}
	}
	seekTime := func(ms int64) *nativepb.ConsumeRequest {
		return &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Seek{Seek: &nativepb.Seek{Target: &nativepb.Seek_TimeMs{TimeMs: ms}}}}
	}
	// What the Go client sends (client/consumer.go).
	f.Add(sub(&nativepb.Subscribe{Topic: fuzzTopic, Subscription: "shared", Type: nativepb.SubscriptionType_SHARED,
		InitialPosition: nativepb.InitialPosition_EARLIEST, AckTimeoutMs: 30000, NackRedeliveryDelayMs: 1}),
		reqs(flow(10), ack(false, 0, 1, 2), nack(3, 4), flow(5), ack(false, 5, 19, 1<<40)))
	f.Add(sub(&nativepb.Subscribe{Topic: fuzzTopic, Partition: 1, Subscription: "exclusive", ConsumerName: "c1"}),
		reqs(flow(1000), ack(true, 7), seekOffset(3)))
	f.Add(sub(&nativepb.Subscribe{Topic: fuzzTopic, Subscription: "failover", Type: nativepb.SubscriptionType_FAILOVER,
		InitialPosition: nativepb.InitialPosition_EARLIEST}), reqs(flow(3), ack(true, 2), seekTime(1005)))
	f.Add(sub(&nativepb.Subscribe{Topic: fuzzTopic, Subscription: "keys", Type: nativepb.SubscriptionType_KEY_SHARED,
		NackRedeliveryDelayMs: 5, NackRedeliveryMaxDelayMs: 50}), reqs(flow(20), nack(0, 1), ack(false, 2)))
	f.Add(sub(&nativepb.Subscribe{Topic: fuzzTopic, Subscription: "reader-1", NonDurable: true,
		Start: &nativepb.Subscribe_StartOffset{StartOffset: 10}}), reqs(flow(4)))
	f.Add(sub(&nativepb.Subscribe{Topic: fuzzTopic, Subscription: "at-time",
		Start: &nativepb.Subscribe_StartTimeMs{StartTimeMs: 1010}}), reqs(flow(1), ack(true, -1), seekOffset(-5)))
	f.Add(sub(&nativepb.Subscribe{Topic: fuzzTopic, Subscription: "s"}),
		reqs(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: &nativepb.Subscribe{Topic: fuzzTopic}}}))
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, subscribe, requests []byte) {
		var first nativepb.Subscribe
		if proto.Unmarshal(subscribe, &first) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream := &consumeStream{ctx: ctx, reqs: append([]*nativepb.ConsumeRequest{
			{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: &first}},
		}, splitRequests(requests)...)}
		err := s.Consume(stream)
		if ctx.Err() != nil {
			t.Fatalf("Consume did not end before its deadline: %v", err)
		}
		wantStatus(t, "Consume", err)
		checkCursors(t, s.b)
	})
}

// checkCursors fails if a cursor of fuzzTopic acknowledged what was never
// published: a cursor past the end, or more chunks of acknowledgements
// than the partition has offsets for.
func checkCursors(t *testing.T, b *broker.Broker) {
	t.Helper()
	name, err := b.ParseTopic(fuzzTopic)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.InternalStats(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Partitions {
		for _, c := range p.Cursors {
			if c.NextOffset > p.EndOffset || c.AckChunks > int(p.EndOffset>>16)+1 {
				t.Fatalf("cursor %s of partition %d (end %d): next %d, %d chunks of acknowledgements",
					broker.QuoteName(c.Name), p.Partition, p.EndOffset, c.NextOffset, c.AckChunks)
			}
		}
	}
}
