package bookie_test

import (
	"errors"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

// One bookie process serves several shards on one port: every request goes
// to the shard it names, clients of different shards share the process's
// connection, and a request for a shard the process does not host fails
// with ErrUnknownShard.
func TestOneProcessServesSeveralShards(t *testing.T) {
	a, b := bookietest.NewFake(), bookietest.NewFake()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(bookie.GRPCServerOptions()...)
	bookie.NewGRPCServer(map[string]bookie.Client{"a": a, "b": b}, nil).Register(srv)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	t.Cleanup(func() { srv.Stop(); wg.Wait() })

	conns := bookie.NewConns()
	t.Cleanup(func() { conns.Close() })
	addrs := []string{lis.Addr().String()}
	ca, cb := conns.Shard("a", addrs), conns.Shard("b", addrs)

	// The same segment ID on two shards is two segments.
	if err := ca.CreateSegment(ctx, 7, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := cb.CreateSegment(ctx, 7, 100, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Append(ctx, bookie.AppendRequest{Segment: 7, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, 0, 3)}}); err != nil {
		t.Fatal(err)
	}
	ia, err := a.Info(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := b.Info(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if ia.NextOffset != 3 || ib.StartOffset != 100 || ib.NextOffset != 100 {
		t.Fatalf("shard a has %+v, shard b %+v: the appends went to the wrong shard", ia, ib)
	}

	// Closing one shard's client leaves the shared connection to the others.
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Info(ctx, 7); err != nil {
		t.Fatalf("shard b after closing shard a's client: %v", err)
	}

	if _, err := conns.Shard("c", addrs).Info(ctx, 7); !errors.Is(err, bookie.ErrUnknownShard) {
		t.Fatalf("a shard the process does not host: got %v, want ErrUnknownShard", err)
	}
	if _, err := conns.Shard("", addrs).Info(ctx, 7); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no shard named, two hosted: got %v, want InvalidArgument", err)
	}
}
