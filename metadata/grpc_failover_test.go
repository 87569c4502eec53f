package metadata_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/metadata"
)

// freezer makes a gRPC server stop answering the way a paused (SIGSTOP)
// process does: its connections stay open, calls are taken and never
// answered, and the streams already open go silent.
type freezer struct{ frozen chan struct{} }

func newFreezer() *freezer { return &freezer{frozen: make(chan struct{})} }

func (f *freezer) freeze() { close(f.frozen) }

// hold returns at once before the freeze; after it, only once ctx ends.
func (f *freezer) hold(ctx context.Context) error {
	select {
	case <-f.frozen:
		<-ctx.Done()
		return ctx.Err()
	default:
		return nil
	}
}

func (f *freezer) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := f.hold(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := f.hold(ss.Context()); err != nil {
				return err
			}
			return h(srv, frozenStream{ss, f})
		}),
	}
}

type frozenStream struct {
	grpc.ServerStream
	f *freezer
}

func (s frozenStream) SendMsg(m any) error {
	if err := s.f.hold(s.Context()); err != nil {
		return err
	}
	return s.ServerStream.SendMsg(m)
}

// The leader stops answering (as a paused process: connections open,
// nothing answered) and another node takes over. The client's calls to the
// silent node time out, it finds the new leader and carries on: a lease is
// renewed there well within its TTL, writes go through, and a watch opened
// on the silent node resumes on the new leader with every event. The
// times are logged.
func TestTheClientLeavesALeaderThatStopsAnsweringForTheNewOne(t *testing.T) {
	freezers := []*freezer{newFreezer(), newFreezer(), newFreezer()}
	nodes := startClusterWith(t, func(i int) []grpc.ServerOption { return freezers[i].options() })
	l := leaderIndex(t, nodes)
	c := dial(t, nodes[0].grpcAddr, nodes[1].grpcAddr, nodes[2].grpcAddr)
	ctx := t.Context()

	const ttl = 5 * time.Second
	id, err := c.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.Watch(ctx, "w/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "w/before", nil, metadata.AnyVersion); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, "w/before")

	freezers[l].freeze()
	if err := metadata.TransferLeadership(nodes[l].svc); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()

	kctx, cancel := context.WithTimeout(ctx, ttl)
	_, err = c.KeepAlive(kctx, id)
	cancel()
	if err != nil {
		t.Fatalf("KeepAlive after the leader went silent: %v", err)
	}
	renewed := time.Since(frozen)
	pctx, cancel := context.WithTimeout(ctx, ttl)
	_, err = c.Put(pctx, "w/after", nil, metadata.AnyVersion)
	cancel()
	if err != nil {
		t.Fatalf("Put after the leader went silent: %v", err)
	}
	written := time.Since(frozen)
	expectEvent(t, events, "w/after")
	t.Logf("after the leader went silent: lease renewed in %v, write acknowledged in %v, watch event in %v",
		renewed.Round(time.Millisecond), written.Round(time.Millisecond), time.Since(frozen).Round(time.Millisecond))
}

// expectEvent waits for the put of key on the watch (within 20 s).
func expectEvent(t *testing.T, events <-chan metadata.Event, key string) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok || ev.Type != metadata.EventPut || ev.KV.Key != key {
			t.Fatalf("watch event %+v (open %v), want the put of %s", ev, ok, key)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the watch did not deliver the put of %s within 20s", key)
	}
}
