package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// newService serves the native protocol of a broker on fake stores over an
// in-memory connection and returns a client stub for it.
func newService(t testing.TB, mutate ...func(*broker.Config)) nativepb.MagnetarClient {
	t.Helper()
	return newServiceOn(t, bookietest.NewFake(), mutate...)
}

// newServiceOn is newService with the segment store shard.
func newServiceOn(t testing.TB, shard bookie.Client, mutate ...func(*broker.Config)) nativepb.MagnetarClient {
	t.Helper()
	cfg := broker.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	meta := metadatatest.NewStore()
	b, err := broker.New(cfg, meta, bookie.OneShard("s1", shard), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	NewServer(b, "127.0.0.1:6650", nil).Register(srv)
	go srv.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		b.Close()
		meta.Close()
	})
	return nativepb.NewMagnetarClient(conn)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openProducer(t *testing.T, c nativepb.MagnetarClient, topic string, partition int32) nativepb.Magnetar_ProduceClient {
	t.Helper()
	s, err := c.Produce(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{Topic: topic, Partition: partition}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func send(t *testing.T, s nativepb.Magnetar_ProduceClient, seq uint64, values ...string) {
	t.Helper()
	b := &nativepb.SendBatch{SequenceId: seq}
	for _, v := range values {
		// A fixed time, as a client gives its messages when it sends
		// them: a batch sent again is then the same batch.
		b.Messages = append(b.Messages, &nativepb.Message{Value: []byte(v), EventTimeMs: 1_700_000_000_000,
			Headers: []*nativepb.Header{{Key: "h", Value: []byte(v)}}})
	}
	if err := s.Send(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Send{Send: b}}); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("err = %v, want code %v", err, code)
	}
}

func TestProduceAnswersEachSendInOrderAndKeepsTheStreamAfterARefusal(t *testing.T) {
	c := newService(t, func(cfg *broker.Config) { cfg.MaxMessageBytes = 4096 })
	s := openProducer(t, c, "orders", 0)
	resp, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOpened().GetTopic() != "public/default/orders" {
		t.Fatalf("opened = %v", resp)
	}
	send(t, s, 1, "a", "b")
	send(t, s, 3, string(make([]byte, 8192))) // over max-message-bytes
	send(t, s, 4, "c")

	r1, _ := s.Recv()
	if got := r1.GetReceipt(); got.GetSequenceId() != 1 || got.GetBaseOffset() != 0 || got.GetCount() != 2 {
		t.Fatalf("first answer = %v, want receipt 1 at offset 0 for 2 messages", r1)
	}
	r2, _ := s.Recv()
	if got := r2.GetError(); got.GetSequenceId() != 3 || codes.Code(got.GetCode()) != codes.ResourceExhausted {
		t.Fatalf("second answer = %v, want a RESOURCE_EXHAUSTED error for sequence 3", r2)
	}
	r3, _ := s.Recv()
	if got := r3.GetReceipt(); got.GetSequenceId() != 4 || got.GetBaseOffset() != 2 {
		t.Fatalf("third answer = %v, want receipt 4 at offset 2: the refused batch's numbers count", r3)
	}
}

// failingShard fails its first append with err.
type failingShard struct {
	bookie.Client
	err    error
	failed atomic.Bool
}

func (f *failingShard) Append(ctx context.Context, req bookie.AppendRequest) (int64, error) {
	if f.failed.CompareAndSwap(false, true) {
		return 0, f.err
	}
	return f.Client.Append(ctx, req)
}

// A producer that sends one batch and waits for its answer before the
// next: the append fails with an unknown outcome (the shard's leader did
// not answer), or is refused for want of space, and the stream ends with
// UNAVAILABLE at once, so the producer sends the batch again, and the ones
// after it, in order (on a new stream). It wedged: the stream waited for
// the producer's next request before it ended, and the producer waited for
// the answer.
func TestAProduceStreamEndsAtOnceWhenAnAppendFails(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: the leader did not answer", bookie.ErrUnknownOutcome),
		fmt.Errorf("%w: 1 byte available", bookie.ErrDiskFull),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			c := newServiceOn(t, &failingShard{Client: bookietest.NewFake(), err: err})
			s := openProducer(t, c, "orders", 0)
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			send(t, s, 1, "a")
			_, err := s.Recv()
			wantCode(t, err, codes.Unavailable)
		})
	}
}

// A batch sent again on a new stream under the producer's ID is answered
// with the first one's receipt and stored once.
func TestProduceStoresABatchSentTwiceOnce(t *testing.T) {
	c := newService(t)
	s := openProducer(t, c, "resend", 0)
	opened, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	id := opened.GetOpened().GetProducerId()
	if id <= 0 {
		t.Fatalf("opened = %v, want a producer id", opened)
	}
	send(t, s, 0, "a", "b")
	send(t, s, 2, "c")
	for range 2 {
		if r, err := s.Recv(); err != nil || r.GetReceipt() == nil {
			t.Fatalf("answer = %v, %v", r, err)
		}
	}
	_ = s.CloseSend()

	// The client lost the answers and reconnects: same ID, same numbers.
	s2, err := c.Produce(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Send(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{Topic: "resend", ProducerId: id}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := s2.Recv(); err != nil || r.GetOpened().GetProducerId() != id {
		t.Fatalf("reopened = %v, %v; want producer id %d", r, err, id)
	}
	send(t, s2, 2, "c")
	send(t, s2, 3, "d")
	for _, want := range []struct {
		seq  uint64
		base int64
	}{{2, 2}, {3, 3}} {
		r, err := s2.Recv()
		if got := r.GetReceipt(); err != nil || got.GetSequenceId() != want.seq || got.GetBaseOffset() != want.base {
			t.Fatalf("answer = %v, %v; want receipt %d at offset %d", r, err, want.seq, want.base)
		}
	}
	// Other messages under numbers already used are no retry: they are
	// refused (ABORTED: out of order), not answered with the first
	// batch's receipt.
	send(t, s2, 3, "not d")
	if r, err := s2.Recv(); err != nil || codes.Code(r.GetError().GetCode()) != codes.Aborted {
		t.Fatalf("another batch under sequence 3 = %v, %v; want an ABORTED error", r, err)
	}
}

func TestProduceRejectsBadStreams(t *testing.T) {
	c := newService(t, func(cfg *broker.Config) { cfg.AutoCreateTopics = false })
	tests := []struct {
		name  string
		first *nativepb.ProduceRequest
		code  codes.Code
	}{
		{"send before open", &nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Send{Send: &nativepb.SendBatch{}}}, codes.InvalidArgument},
		{"empty request", &nativepb.ProduceRequest{}, codes.InvalidArgument},
		{"invalid topic name", &nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{Topic: "a/b"}}}, codes.InvalidArgument},
		{"missing topic, no auto-creation", &nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{Topic: "nope"}}}, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := c.Produce(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(tt.first); err != nil {
				t.Fatal(err)
			}
			_, err = s.Recv()
			wantCode(t, err, tt.code)
		})
	}
}

func TestProduceToAPartitionOutOfRange(t *testing.T) {
	c := newService(t)
	s := openProducer(t, c, "one-partition", 1)
	_, err := s.Recv()
	wantCode(t, err, codes.OutOfRange)
}

func TestConsumeHonoursPermitsAndExclusivity(t *testing.T) {
	c := newService(t)
	p := openProducer(t, c, "events", 0)
	if _, err := p.Recv(); err != nil {
		t.Fatal(err)
	}
	send(t, p, 1, "v0", "v1", "v2", "v3", "v4")
	if r, err := p.Recv(); err != nil || r.GetReceipt() == nil {
		t.Fatalf("receipt: %v %v", r, err)
	}

	s, err := c.Consume(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	sub := &nativepb.Subscribe{Topic: "events", Subscription: "s", InitialPosition: nativepb.InitialPosition_EARLIEST}
	if err := s.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: sub}}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.GetSubscribed().GetStartOffset() != 0 {
		t.Fatalf("subscribed: %v %v", r, err)
	}
	if err := s.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Flow{Flow: &nativepb.Flow{Permits: 3}}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	msgs := r.GetMessages().GetMessages()
	if len(msgs) != 3 || string(msgs[0].GetMessage().GetValue()) != "v0" || msgs[2].GetOffset() != 2 {
		t.Fatalf("with 3 permits got %v", msgs)
	}
	if h := msgs[1].GetMessage().GetHeaders(); len(h) != 1 || h[0].GetKey() != "h" || string(h[0].GetValue()) != "v1" {
		t.Fatalf("headers did not survive: %v", h)
	}

	// A second consumer on the exclusive subscription is refused.
	s2, err := c.Consume(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: sub}}); err != nil {
		t.Fatal(err)
	}
	_, err = s2.Recv()
	wantCode(t, err, codes.FailedPrecondition)

	// Unsupported subscription types are refused clearly.
	s3, err := c.Consume(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	shared := proto.Clone(sub).(*nativepb.Subscribe)
	shared.Type = nativepb.SubscriptionType(99)
	if err := s3.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: shared}}); err != nil {
		t.Fatal(err)
	}
	_, err = s3.Recv()
	wantCode(t, err, codes.InvalidArgument)
}

func TestLookupResolvesAndAutoCreates(t *testing.T) {
	c := newService(t)
	if _, err := c.Lookup(testCtx(t), &nativepb.LookupRequest{Topic: "fresh"}); status.Code(err) != codes.NotFound {
		t.Fatalf("lookup without auto_create: %v, want NOT_FOUND", err)
	}
	r, err := c.Lookup(testCtx(t), &nativepb.LookupRequest{Topic: "persistent://public/default/fresh", AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetTopic() != "public/default/fresh" || r.GetPartitions() != 1 || r.GetBrokerAddress() != "127.0.0.1:6650" {
		t.Fatalf("lookup = %v", r)
	}
}

// FuzzProduceRequest feeds arbitrary bytes, as they would arrive on the
// wire, to a producer stream after a valid open: the server must answer
// with a receipt, a SendError or a clean stream error, and never panic.
func FuzzProduceRequest(f *testing.F) {
	seed := func(m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Send{Send: &nativepb.SendBatch{SequenceId: 1, Messages: []*nativepb.Message{{Key: []byte("k"), Value: []byte("v"), EventTimeMs: 5}}}}})
	seed(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Send{Send: &nativepb.SendBatch{SequenceId: 2}}})
	seed(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{Topic: "x"}}})
	c := newService(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req nativepb.ProduceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return // gRPC itself refuses what does not decode
		}
		s, err := c.Produce(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		open := &nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{Topic: "fuzz"}}}
		if err := s.Send(open); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&req); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return // the server answered everything and closed cleanly
				}
				if c := status.Code(err); c == codes.Internal || c == codes.Unknown {
					t.Fatalf("stream ended with %v", err)
				}
				return
			}
		}
	})
}

// TestAStrangerCannotTakeOverAProducersID is the hijack of issue 15: a
// stream that presented another producer's ID (then a small sequential
// number) with sequence 2^29 made that producer's next sends succeed at
// offset -1, never stored. An ID not issued to the stream's role is not
// taken: the stranger gets an ID of its own, and the producer's next
// batches are stored.
func TestAStrangerCannotTakeOverAProducersID(t *testing.T) {
	c := newService(t)
	victim := openProducer(t, c, "orders", 0)
	opened, err := victim.Recv()
	if err != nil {
		t.Fatal(err)
	}
	id := opened.GetOpened().GetProducerId()
	send(t, victim, 0, "a")
	if r, err := victim.Recv(); err != nil || r.GetReceipt().GetBaseOffset() != 0 {
		t.Fatalf("first receipt = %v, %v", r, err)
	}

	for _, guess := range []int64{id + 1, id - 1, id ^ 1, 1, 2} {
		s, err := c.Produce(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&nativepb.ProduceRequest{Kind: &nativepb.ProduceRequest_Open{Open: &nativepb.ProducerOpen{Topic: "orders", ProducerId: guess}}}); err != nil {
			t.Fatal(err)
		}
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := r.GetOpened().GetProducerId(); got == guess || got == id {
			t.Fatalf("a stream presenting %d got producer id %d", guess, got)
		}
		send(t, s, 1<<29, "x")
		if r, err := s.Recv(); err != nil || r.GetReceipt() == nil {
			t.Fatalf("the stranger's own batch: %v, %v", r, err)
		}
		_ = s.CloseSend()
	}

	send(t, victim, 1, "b")
	if r, err := victim.Recv(); err != nil || r.GetReceipt().GetBaseOffset() != 6 {
		t.Fatalf("the victim's next batch = %v, %v; want it stored at offset 6", r, err)
	}
}
