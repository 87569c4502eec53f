package client_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// fakeBroker is a native-protocol server scripted for routing faults: the
// first produce stream ends with a redirect to nobody (the bundle is
// moving), lookups fail the first failLookups times after that (the
// metadata service is electing a leader), and a lookup that hangs stands
// for a paused broker.
type fakeBroker struct {
	nativepb.UnimplementedMagnetarServer
	addr        string
	hangLookups bool // every lookup waits for its caller to give up

	mu          sync.Mutex
	streams     int
	failLookups int
	stored      int64
}

func startFakeBroker(t *testing.T, fb *fakeBroker) {
	t.Helper()
	fb.addr = serveFake(t, fb)
}

// serveFake serves a scripted native-protocol server on a port of its own
// until the test ends, and returns its address.
func serveFake(t *testing.T, srv nativepb.MagnetarServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	nativepb.RegisterMagnetarServer(g, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	t.Cleanup(func() {
		g.Stop()
		<-done
	})
	return lis.Addr().String()
}

func (fb *fakeBroker) Lookup(ctx context.Context, req *nativepb.LookupRequest) (*nativepb.LookupResponse, error) {
	if fb.hangLookups {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.streams > 0 && fb.failLookups > 0 {
		fb.failLookups--
		return nil, status.Error(codes.Internal, "metadata: no leader")
	}
	return &nativepb.LookupResponse{Topic: "public/default/t", Partitions: 1,
		PartitionOwners: []string{fb.addr}, Brokers: []string{fb.addr}}, nil
}

func (fb *fakeBroker) Produce(stream nativepb.Magnetar_ProduceServer) error {
	fb.mu.Lock()
	fb.streams++
	first := fb.streams == 1
	fb.mu.Unlock()
	open, err := stream.Recv()
	if err != nil {
		return err
	}
	id := open.GetOpen().GetProducerId()
	if id == 0 {
		id = 7
	}
	if err := stream.Send(&nativepb.ProduceResponse{Kind: &nativepb.ProduceResponse_Opened{
		Opened: &nativepb.ProducerOpened{Topic: "public/default/t", ProducerId: id}}}); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		send := req.GetSend()
		if first {
			// The partition's bundle moved away under the send, to no
			// owner yet.
			_ = grpc.SetTrailer(stream.Context(), metadata.Pairs(client.OwnerTrailer, ""))
			return status.Error(codes.FailedPrecondition, "broker: bundle public/default/0x0_0xffffffff is moving; look it up again")
		}
		fb.mu.Lock()
		base := fb.stored
		fb.stored += int64(len(send.GetMessages()))
		fb.mu.Unlock()
		if err := stream.Send(&nativepb.ProduceResponse{Kind: &nativepb.ProduceResponse_Receipt{Receipt: &nativepb.SendReceipt{
			SequenceId: send.GetSequenceId(), BaseOffset: base, Count: int32(len(send.GetMessages()))}}}); err != nil {
			return err
		}
	}
}

// A send whose partition moves while the metadata service is electing a
// leader (the lookups that follow the redirect fail for a while) is sent
// again once the new owner is known, instead of failing with "bundle is
// moving".
func TestASendFollowsAMovingBundleWhileLookupsFail(t *testing.T) {
	fb := &fakeBroker{failLookups: 3}
	startFakeBroker(t, fb)
	c, err := client.New(client.Options{Address: fb.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	id, err := p.Send(ctx, &client.Message{Value: []byte("m")})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if id.Offset != 0 {
		t.Fatalf("stored at %v, want offset 0", id)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.streams != 2 || fb.failLookups != 0 {
		t.Fatalf("%d produce streams and %d lookups left to fail; want the send redirected once after every failed lookup", fb.streams, fb.failLookups)
	}
}

// A broker that takes a lookup and never answers (paused, or cut off by
// the network) is passed over for the next one after LookupTimeout.
func TestALookupPassesOverABrokerThatDoesNotAnswer(t *testing.T) {
	paused := &fakeBroker{hangLookups: true}
	startFakeBroker(t, paused)
	live := &fakeBroker{}
	startFakeBroker(t, live)
	c, err := client.New(client.Options{Address: paused.addr + "," + live.addr, LookupTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	info, err := c.Lookup(ctx, "t", false)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if info.Partitions != 1 {
		t.Fatalf("lookup answered %+v", info)
	}
}
