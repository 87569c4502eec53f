package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// cluster is three nodes in this process talking Raft over TCP.
type cluster struct {
	t     *testing.T
	peers []Peer
	envs  []*env
	nodes []*Node
	fsms  []*counterFSM
}

// clusterTimers are slower than the single-node defaults so that a busy
// test machine (race detector, shared cores) does not make leaders flap.
func clusterTimers(c *Config) {
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CloseTimeout = 500 * time.Millisecond
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	addrs := nettest.FreeAddrs(t, 3)
	var peers []Peer
	for i, a := range addrs {
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), Address: a})
	}
	c := &cluster{t: t, peers: peers, nodes: make([]*Node, 3), fsms: make([]*counterFSM, 3)}
	for range 3 {
		c.envs = append(c.envs, newEnv(t))
	}
	// Open blocks until a leader is known, which needs a majority: open
	// the three at once.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			c.open(i)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return c
}

func (c *cluster) open(i int) {
	c.nodes[i], c.fsms[i] = c.envs[i].open(func(cfg *Config) {
		clusterTimers(cfg)
		cfg.ID = c.peers[i].ID
		cfg.BindAddr = c.peers[i].Address
		cfg.Peers = c.peers
	})
}

// leader polls until exactly one open node says it is leader and returns
// its index.
func (c *cluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if n != nil && n.State() == raft.Leader {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader elected within 20s")
	return -1
}

// waitCount polls until node i's FSM has counter name at want.
func (c *cluster) waitCount(i int, name string, want uint64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for c.fsms[i].count(name) != want {
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d: counter %s = %d, want %d", i, name, c.fsms[i].count(name), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAThreeNodeClusterElectsReplicatesAndSurvivesItsLeaderClosing(t *testing.T) {
	c := newCluster(t)
	l := c.leader()
	if id, addr := c.nodes[(l+1)%3].Leader(); id != fmt.Sprintf("n%d", l+1) || addr == "" {
		t.Fatalf("a follower reports leader %q at %q, want n%d", id, addr, l+1)
	}
	for range 20 {
		incr(t, c.nodes[l], "x")
	}
	for i := range 3 {
		c.waitCount(i, "x", 20)
	}

	// A follower refuses writes and linearizable reads; the leader serves them.
	f := (l + 1) % 3
	if _, err := c.nodes[f].Apply(t.Context(), []byte("incr x")); !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("Apply on a follower: err = %v, want raft.ErrNotLeader", err)
	}
	if err := c.nodes[f].VerifyLeader(t.Context()); !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("VerifyLeader on a follower: err = %v, want raft.ErrNotLeader", err)
	}
	if err := c.nodes[l].VerifyLeader(t.Context()); err != nil {
		t.Fatalf("VerifyLeader on the leader: %v", err)
	}

	// Close the leader: the other two elect a new one, which has every
	// committed entry and goes on committing.
	if err := c.nodes[l].Close(); err != nil {
		t.Fatal(err)
	}
	c.nodes[l] = nil
	nl := c.leader()
	if err := c.nodes[nl].VerifyLeader(t.Context()); err != nil {
		t.Fatalf("VerifyLeader on the new leader: %v", err)
	}
	if got := c.fsms[nl].count("x"); got != 20 {
		t.Fatalf("new leader's counter = %d, want the 20 committed increments", got)
	}
	if got := incr(t, c.nodes[nl], "x"); got != 21 {
		t.Fatalf("incr on the new leader = %d, want 21", got)
	}
	for i := range 3 {
		if c.nodes[i] != nil {
			c.waitCount(i, "x", 21)
		}
	}

	// The old leader, reopened on its data, rejoins as a follower and
	// catches up.
	c.open(l)
	c.waitCount(l, "x", 21)
}

func TestCloseOnANodeThatLostItsMajorityDoesNotHang(t *testing.T) {
	c := newCluster(t)
	l := c.leader()
	incr(t, c.nodes[l], "x")
	for i := range 3 {
		if i != l {
			if err := c.nodes[i].Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The leader cannot commit any more: this Apply waits until the node
	// steps down or closes, and must not hold Close up.
	res := make(chan error, 1)
	go func() {
		_, err := c.nodes[l].Apply(context.Background(), []byte("incr x"))
		res <- err
	}()
	if err := c.nodes[l].Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err == nil {
		t.Fatal("an Apply without a majority succeeded")
	}
}
