package metadata_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// Only the leader keeps lease deadlines. A follower asked to renew a lease
// refuses with a *NotLeaderError naming the leader's client address, over
// gRPC too (a NOT_LEADER detail with that address, which is what the
// client redirects on), and a client that only knows the follower renews
// the lease on the leader.
func TestKeepAliveOnAFollowerNamesTheLeaderAndTheClientFollowsIt(t *testing.T) {
	nodes := startCluster(t)
	l := leaderIndex(t, nodes)
	f := nodes[(l+1)%3]
	ctx := t.Context()

	id, err := nodes[l].svc.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var nl *metadata.NotLeaderError
	if _, err := f.svc.KeepAlive(ctx, id); !errors.As(err, &nl) || nl.LeaderAddr != nodes[l].grpcAddr {
		t.Fatalf("KeepAlive on a follower: err = %v, want a NotLeaderError naming %s", err, nodes[l].grpcAddr)
	}

	cc := dialRaw(t, f.grpcAddr)
	_, err = metadatapb.NewMetadataClient(cc).KeepAlive(ctx, &metadatapb.KeepAliveRequest{Id: int64(id)})
	var detail *metadatapb.ErrorDetail
	for _, d := range status.Convert(err).Details() {
		if d, ok := d.(*metadatapb.ErrorDetail); ok {
			detail = d
		}
	}
	if detail == nil || detail.Reason != metadatapb.ErrorReason_ERROR_REASON_NOT_LEADER || detail.LeaderAddr != nodes[l].grpcAddr {
		t.Fatalf("gRPC KeepAlive on a follower: err = %v, detail = %v; want NOT_LEADER naming %s", err, detail, nodes[l].grpcAddr)
	}

	c := dial(t, f.grpcAddr)
	if ttl, err := c.KeepAlive(ctx, id); err != nil || ttl != time.Minute {
		t.Fatalf("KeepAlive through a client dialed at the follower = %v, %v; want 1m0s", ttl, err)
	}
}

// dialRaw opens a plain gRPC connection to one node, without the client's
// leader following.
func dialRaw(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
