package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/internal/nettest"
	"github.com/magnetar-mq/magnetar/metadata"
)

// node is one member of an in-process 3-node cluster: a Service with Raft
// over TCP on loopback and its gRPC API.
type node struct {
	svc      *metadata.Service
	grpcAddr string
}

func startCluster(t testing.TB) []*node {
	t.Helper()
	return startClusterWith(t, nil)
}

// startClusterWith starts a cluster whose node i serves gRPC with the
// server options optsOf(i) (nil: none).
func startClusterWith(t testing.TB, optsOf func(i int) []grpc.ServerOption) []*node {
	t.Helper()
	var (
		lis   []net.Listener
		peers metadata.Peers
	)
	for i := range 3 {
		gl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		raftAddr := nettest.FreeAddr(t) // Raft listens there itself
		lis = append(lis, gl)
		peers = append(peers, metadata.Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: raftAddr, ClientAddr: gl.Addr().String()})
	}
	nodes := make([]*node, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			svc, err := metadata.Open(ctx, metadata.Config{Dir: t.TempDir(), NodeID: peers[i].ID,
				RaftAddr: peers[i].RaftAddr, Peers: peers, ElectionTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Errorf("Open %s: %v", peers[i].ID, err)
				_ = lis[i].Close()
				return
			}
			t.Cleanup(func() { _ = svc.Close() })
			var opts []grpc.ServerOption
			if optsOf != nil {
				opts = optsOf(i)
			}
			srv := grpc.NewServer(opts...)
			metadata.NewGRPCServer(svc).Register(srv)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = srv.Serve(lis[i])
			}()
			t.Cleanup(func() {
				srv.Stop()
				<-done
			})
			nodes[i] = &node{svc: svc, grpcAddr: peers[i].ClientAddr}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

func leaderIndex(t testing.TB, nodes []*node) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range nodes {
			if n.svc.Status().Leader {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader within 20s")
	return -1
}

func TestAFollowerRedirectsToTheLeaderAndServesStaleReads(t *testing.T) {
	nodes := startCluster(t)
	l := leaderIndex(t, nodes)
	f := nodes[(l+1)%3]
	ctx := t.Context()

	// A follower refuses writes and linearizable reads, naming the leader's
	// client address.
	var nl *metadata.NotLeaderError
	if _, err := f.svc.Put(ctx, "k", []byte("v"), 0); !errors.As(err, &nl) || nl.LeaderAddr != nodes[l].grpcAddr {
		t.Fatalf("Put on a follower: err = %v, want NotLeaderError naming %s", err, nodes[l].grpcAddr)
	}
	if _, _, err := f.svc.Get(ctx, "k"); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("Get on a follower: err = %v, want ErrNotLeader", err)
	}

	// A client that only knows the follower finds the leader.
	c := dial(t, f.grpcAddr)
	kv, err := c.Put(ctx, "k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(ctx, "k"); err != nil || !ok || string(got.Value) != "v" {
		t.Fatalf("Get through the client = %+v, %v, %v", got, ok, err)
	}

	// Stale reads work on the follower once it has applied the write.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok, err := f.svc.Get(metadata.WithStaleReads(ctx), "k")
		if err != nil {
			t.Fatal(err)
		}
		if ok && got.ModRevision == kv.ModRevision {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower never applied the write: %+v %v", got, ok)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Closing the leader: the client carries on with the new one, and the
	// write is still there.
	if err := nodes[l].svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "k2", []byte("v2"), metadata.AnyVersion); err != nil {
		t.Fatalf("Put after the leader closed: %v", err)
	}
	if got, ok, err := c.Get(ctx, "k"); err != nil || !ok || string(got.Value) != "v" {
		t.Fatalf("Get after failover = %+v, %v, %v", got, ok, err)
	}
	if st := nodes[l].svc.Status(); strings.Contains(st.LeaderID, "x") {
		t.Fatal("unreachable") // Status on a closed service must not panic
	}
}
