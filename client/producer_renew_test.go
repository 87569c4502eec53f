package client_test

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// renewBroker fails its first produce stream for good (INTERNAL, which the
// client does not retry) and records what later streams present.
type renewBroker struct {
	nativepb.UnimplementedMagnetarServer
	addr string
	// refuse: the first send is answered with an ABORTED error (out of
	// sequence) instead of ending the stream.
	refuse bool

	mu     sync.Mutex
	nextID int64
	opens  []int64  // the producer ID each open presented
	seqs   []uint64 // the sequence of each send after the first stream
	broken bool
}

func (rb *renewBroker) Lookup(context.Context, *nativepb.LookupRequest) (*nativepb.LookupResponse, error) {
	return &nativepb.LookupResponse{Topic: "public/default/t", Partitions: 1,
		PartitionOwners: []string{rb.addr}, Brokers: []string{rb.addr}}, nil
}

func (rb *renewBroker) Produce(stream nativepb.Magnetar_ProduceServer) error {
	open, err := stream.Recv()
	if err != nil {
		return err
	}
	rb.mu.Lock()
	id := open.GetOpen().GetProducerId()
	rb.opens = append(rb.opens, id)
	if id == 0 {
		rb.nextID++
		id = rb.nextID
	}
	rb.mu.Unlock()
	if err := stream.Send(&nativepb.ProduceResponse{Kind: &nativepb.ProduceResponse_Opened{
		Opened: &nativepb.ProducerOpened{Topic: "public/default/t", ProducerId: id}}}); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		rb.mu.Lock()
		fail := !rb.broken
		rb.broken = true
		if !fail {
			rb.seqs = append(rb.seqs, req.GetSend().GetSequenceId())
		}
		rb.mu.Unlock()
		if fail && rb.refuse {
			if err := stream.Send(&nativepb.ProduceResponse{Kind: &nativepb.ProduceResponse_Error{Error: &nativepb.SendError{
				SequenceId: req.GetSend().GetSequenceId(), Code: int32(codes.Aborted), Message: "broker: out of order producer sequence number"}}}); err != nil {
				return err
			}
			continue
		}
		if fail {
			return status.Error(codes.Internal, "broker: storage failed")
		}
		if err := stream.Send(&nativepb.ProduceResponse{Kind: &nativepb.ProduceResponse_Receipt{Receipt: &nativepb.SendReceipt{
			SequenceId: req.GetSend().GetSequenceId(), Count: int32(len(req.GetSend().GetMessages()))}}}); err != nil {
			return err
		}
	}
}

// A batch whose stream broke for good may or may not have been stored, and
// brokers take no gap in a producer's numbers: the producer goes on under
// a new producer ID, numbering from 0, instead of sending its next batch
// under the old ID, where it would be out of order for good.
func TestAProducerGoesOnUnderANewIDAfterABatchFailedWithoutAnAnswer(t *testing.T) {
	testRenew(t, &renewBroker{}, codes.Internal)
}

// A batch refused as out of sequence (another client used the producer's
// numbers, or a batch of its was lost) leaves the ID's numbers to someone
// else: the producer goes on under a new ID too.
func TestAProducerGoesOnUnderANewIDAfterAnOutOfOrderRefusal(t *testing.T) {
	testRenew(t, &renewBroker{refuse: true}, codes.Aborted)
}

func testRenew(t *testing.T, rb *renewBroker, firstCode codes.Code) {
	rb.addr = serveFake(t, rb)
	c, err := client.New(client.Options{Address: rb.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Send(ctx, &client.Message{Value: []byte("lost")}); status.Code(err) != firstCode {
		t.Fatalf("the first send: %v, want %v", err, firstCode)
	}
	for _, v := range []string{"a", "b"} {
		if _, err := p.Send(ctx, &client.Message{Value: []byte(v)}); err != nil {
			t.Fatalf("send %s: %v", v, err)
		}
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if len(rb.opens) != 2 || rb.opens[0] != 0 || rb.opens[1] != 0 {
		t.Fatalf("opens presented producer ids %v; want [0 0]: a new id after the failure", rb.opens)
	}
	if len(rb.seqs) != 2 || rb.seqs[0] != 0 || rb.seqs[1] != 1 {
		t.Fatalf("sequences after the failure %v, want [0 1]", rb.seqs)
	}
}
