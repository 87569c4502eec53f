package metadata_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// remote is a Service served over gRPC on a loopback port, seen through a
// Client: the Store the conformance suite runs against. Closing it closes
// all three.
type remote struct {
	*metadata.Client
	dir  string
	svc  *metadata.Service
	srv  *grpc.Server
	once sync.Once
	err  error
}

func (r *remote) Close() error {
	r.once.Do(func() {
		r.err = r.Client.Close()
		r.srv.Stop()
		r.err = errors.Join(r.err, r.svc.Close())
	})
	return r.err
}

// serve serves svc's gRPC API on a loopback port until the test ends and
// returns the address.
func serve(t testing.TB, svc *metadata.Service) (string, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	metadata.NewGRPCServer(svc).Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String(), srv
}

func dial(t testing.TB, addrs ...string) *metadata.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := metadata.Dial(ctx, addrs)
	if err != nil {
		t.Fatalf("Dial(%v): %v", addrs, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func openRemote(t *testing.T, dir string, history int64) *remote {
	svc := openService(t, dir, history)
	addr, srv := serve(t, svc)
	r := &remote{Client: dial(t, addr), dir: dir, svc: svc, srv: srv}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// The gRPC client over a real single-node service behaves exactly like the
// service itself.
func TestGRPCClientConformance(t *testing.T) {
	const history = 1000
	newStore := func(t *testing.T) metadata.Store { return openRemote(t, t.TempDir(), history) }
	reopen := func(t *testing.T, s metadata.Store) metadata.Store {
		r := s.(*remote)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		return openRemote(t, r.dir, history)
	}
	metadatatest.RunConformance(t, newStore, metadatatest.Reopen(reopen), metadatatest.HistoryRevisions(history))
}

func TestDialFailsWhenNoNodeAnswersBeforeTheContextEnds(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := metadata.Dial(ctx, []string{addr}); err == nil {
		_ = c.Close()
		t.Fatal("Dial to a closed port succeeded")
	}
}
