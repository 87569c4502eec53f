package bookie_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// replica is one in-process replica of a 3-replica test shard, served
// over gRPC on loopback.
type replica struct {
	shard    *bookie.Shard
	grpcAddr string
}

// openReplicatedShard opens three replicas of one shard in this process,
// talking Raft over loopback TCP, each served over gRPC on the address
// named in the peers (by serve, if given: serveGRPC by default).
func openReplicatedShard(t *testing.T, serve ...func(i int, s *bookie.Shard, ln net.Listener)) []*replica {
	t.Helper()
	var lns []net.Listener
	var peers []string
	raftAddrs := nettest.FreeAddrs(t, 3)
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		peers = append(peers, fmt.Sprintf("r%d=%s=%s", i+1, raftAddrs[i], ln.Addr()))
	}
	ps, err := bookie.ParsePeers(strings.Join(peers, ","))
	if err != nil {
		t.Fatal(err)
	}
	reps := make([]*replica, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		cfg := testConfig(t.TempDir())
		cfg.NodeID, cfg.RaftAddr, cfg.Peers = fmt.Sprintf("r%d", i+1), raftAddrs[i], ps
		cfg.ElectionTimeout = 200 * time.Millisecond
		wg.Go(func() {
			s, err := bookie.OpenShard(ctx, cfg) // waits for a majority
			reps[i], errs[i] = &replica{shard: s, grpcAddr: lns[i].Addr().String()}, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i+1, err)
		}
	}
	for i, r := range reps {
		if len(serve) > 0 {
			serve[0](i, r.shard, lns[i])
		} else {
			serveGRPC(t, r.shard, lns[i])
		}
		t.Cleanup(func() { _ = r.shard.Close() }) // after the server stops (cleanups run last first)
	}
	return reps
}

// leaderAndFollower waits until one replica leads and returns it and a
// follower that knows it.
func leaderAndFollower(t *testing.T, reps []*replica) (leader, follower *replica) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		leader, follower = nil, nil
		for _, r := range reps {
			st := r.shard.Status()
			if st.Leader {
				leader = r
			} else if st.LeaderID != "" {
				follower = r
			}
		}
		if leader != nil && follower != nil {
			return leader, follower
		}
		time.Sleep(10 * time.Millisecond) // poll
	}
	t.Fatal("no leader with a follower that knows it")
	return nil, nil
}

// A follower refuses every write and linearizable read with a
// *NotLeaderError naming the leader's gRPC address, in process and over
// the wire; under WithFollowerReads it serves what it has applied.
func TestFollowerRefusesAndNamesTheLeader(t *testing.T) {
	reps := openReplicatedShard(t)
	leader, follower := leaderAndFollower(t, reps)
	if err := leader.shard.CreateSegment(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.shard.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, 0, 3)}}); err != nil {
		t.Fatal(err)
	}

	cc, err := grpc.NewClient(follower.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	wire := bookie.NewRemoteClient(cc) // no leader-following: sees the raw answer
	for name, c := range map[string]bookie.Client{"in process": follower.shard, "over gRPC": wire} {
		for method, err := range calls(c) {
			var nl *bookie.NotLeaderError
			if !errors.As(err, &nl) || !errors.Is(err, bookie.ErrNotLeader) || nl.LeaderAddr != leader.grpcAddr {
				t.Errorf("%s: %s on a follower: %v, want NotLeader naming %s", name, method, err, leader.grpcAddr)
			}
		}
	}

	fctx := bookie.WithFollowerReads(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, err := wire.Read(fctx, 1, 0, 1<<20)
		if err == nil && len(es) == 1 && es[0].LastOffset == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower read: %v, %v", es, err)
		}
		time.Sleep(10 * time.Millisecond) // poll: the follower applies asynchronously
	}
}

// A RemoteClient given every replica finds the leader, and after the
// leader goes away carries on with the new one; what was acknowledged
// before is all there.
func TestRemoteClientFollowsTheLeader(t *testing.T) {
	reps := openReplicatedShard(t)
	var addrs []string
	for _, r := range reps {
		addrs = append(addrs, r.grpcAddr)
	}
	c, err := bookie.DialShard(ctx, addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateSegment(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	appendOne := func() {
		t.Helper()
		n, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, next, 2)}})
		if err != nil {
			t.Fatal(err)
		}
		next = n
	}
	for range 10 {
		appendOne()
	}
	var old *replica
	for _, r := range reps {
		if r.grpcAddr == c.Leader() {
			old = r
		}
	}
	if old == nil || !old.shard.Status().Leader {
		t.Fatalf("the client's leader %q is not the leader", c.Leader())
	}
	if err := old.shard.Close(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		appendOne()
	}
	if c.Leader() == old.grpcAddr {
		t.Fatal("the client still names the closed replica")
	}
	info, err := c.Info(ctx, 1)
	if err != nil || info.NextOffset != next || next != 40 {
		t.Fatalf("Info = %+v, %v; want next offset %d = 40", info, err, next)
	}
}

func TestShardConfigValidatesPeers(t *testing.T) {
	peers := func(s string) bookie.Peers {
		p, err := bookie.ParsePeers(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	three := "b1=127.0.0.1:1=127.0.0.1:2,b2=127.0.0.1:3=127.0.0.1:4,b3=127.0.0.1:5=127.0.0.1:6"
	for _, tc := range []struct {
		name string
		cfg  bookie.ShardConfig
		ok   bool
	}{
		{"no peers is a single in-memory voter", bookie.ShardConfig{Dir: "d"}, true},
		{"three peers including this node", bookie.ShardConfig{Dir: "d", NodeID: "b2", RaftAddr: ":3", Peers: peers(three)}, true},
		{"peers without a raft address", bookie.ShardConfig{Dir: "d", NodeID: "b2", Peers: peers(three)}, false},
		{"this node is not a peer", bookie.ShardConfig{Dir: "d", NodeID: "b9", RaftAddr: ":3", Peers: peers(three)}, false},
		{"an even number of peers", bookie.ShardConfig{Dir: "d", NodeID: "b1", RaftAddr: ":1", Peers: peers("b1=127.0.0.1:1=127.0.0.1:2,b2=127.0.0.1:3=127.0.0.1:4")}, false},
		{"a bad raft address", bookie.ShardConfig{Dir: "d", RaftAddr: "nope"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.EnsureDefaults()
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	for _, bad := range []string{"b1=a:1", "b1=a:1=", "=a:1=b:2"} {
		if _, err := bookie.ParsePeers(bad); !errors.Is(err, bookie.ErrInvalidConfig) {
			t.Errorf("ParsePeers(%q) = %v, want ErrInvalidConfig", bad, err)
		}
	}
}
