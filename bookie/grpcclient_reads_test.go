package bookie_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

// errUnreadableLog is what a replica with a corrupt Raft log segment
// answers a read of the entries it holds: an error that is no bookie
// error, so it reaches the client as an internal one.
var errUnreadableLog = errors.New("raft-wal: reading log entry: segment file: input/output error")

// faultyReplica serves a replica, failing its reads on demand.
type faultyReplica struct {
	*bookie.Shard
	// unreadable fails every Read, as a replica whose log segment is
	// corrupt.
	unreadable atomic.Bool
	// behind makes the replica answer as one that has applied none of the
	// segment's entries yet: Read finds nothing and Info reports the
	// segment open and empty.
	behind atomic.Bool
}

func (f *faultyReplica) Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]bookie.Entry, error) {
	switch {
	case f.unreadable.Load():
		return nil, errUnreadableLog
	case f.behind.Load():
		if _, err := f.Shard.Read(ctx, segment, fromOffset, maxBytes); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return f.Shard.Read(ctx, segment, fromOffset, maxBytes)
}

func (f *faultyReplica) Info(ctx context.Context, segment uint64) (bookie.SegmentInfo, error) {
	info, err := f.Shard.Info(ctx, segment)
	if err == nil && f.behind.Load() {
		info.State, info.NextOffset, info.Bytes = bookie.SegmentOpen, info.StartOffset, 0
	}
	return info, err
}

// openFaultyShard opens a 3-replica shard whose replicas are served
// through faultyReplicas, and a client of it.
func openFaultyShard(t *testing.T) ([]*replica, []*faultyReplica, *bookie.RemoteClient) {
	t.Helper()
	faulty := make([]*faultyReplica, 3)
	reps := openReplicatedShard(t, func(i int, s *bookie.Shard, ln net.Listener) {
		faulty[i] = &faultyReplica{Shard: s}
		serveGRPC(t, faulty[i], ln)
	})
	var addrs []string
	for _, r := range reps {
		addrs = append(addrs, r.grpcAddr)
	}
	conns := bookie.NewConns()
	t.Cleanup(func() { conns.Close() })
	return reps, faulty, conns.Shard("s1", addrs)
}

// appendEntries writes n entries of two records each to a new segment 1
// and returns its next offset.
func appendEntries(t *testing.T, c bookie.Client, n int) int64 {
	t.Helper()
	if err := c.CreateSegment(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	for range n {
		nn, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, next, 2)}})
		if err != nil {
			t.Fatal(err)
		}
		next = nn
	}
	return next
}

// leaderIndex returns the index of the replica the client takes for the
// leader.
func leaderIndex(t *testing.T, reps []*replica, c *bookie.RemoteClient) int {
	t.Helper()
	for i, r := range reps {
		if r.grpcAddr == c.Leader() && r.shard.Status().Leader {
			return i
		}
	}
	t.Fatalf("the client's leader %q is not the leader", c.Leader())
	return -1
}

// readUntil reads segment 1 from offset from to end as a consumer does,
// each read from where the last one stopped: a follower returns what it
// has applied, which may be a part of what the leader committed a moment
// ago. It gives up after 10 s without progress, returning the last error.
func readUntil(c bookie.Client, from, end int64) ([]bookie.Entry, error) {
	var out []bookie.Entry
	deadline := time.Now().Add(10 * time.Second)
	for from < end {
		es, err := c.Read(ctx, 1, from, 1<<20)
		if len(es) > 0 {
			out = append(out, es...)
			from = es[len(es)-1].LastOffset + 1
			deadline = time.Now().Add(10 * time.Second)
			continue
		}
		if time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(20 * time.Millisecond) // poll
	}
	return out, nil
}

// The shard's leader cannot read its log (a corrupt segment file), while
// both followers hold every entry: reads are served by the followers, of
// an open segment and of a sealed one, up to the sealed end.
func TestAReadTheLeaderCannotServeIsServedByAFollower(t *testing.T) {
	reps, faulty, c := openFaultyShard(t)
	next := appendEntries(t, c, 10)
	leader := leaderIndex(t, reps, c)
	faulty[leader].unreadable.Store(true)

	es, err := readUntil(c, 0, next)
	if err != nil || len(es) != 10 || es[9].LastOffset != next-1 {
		t.Fatalf("reading the open segment: %d entries, %v; want the 10 appended", len(es), err)
	}
	if _, err := c.Seal(ctx, 1, 2, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for es, err = c.Read(ctx, 1, next, 1<<20); err != nil && time.Now().Before(deadline); es, err = c.Read(ctx, 1, next, 1<<20) {
		time.Sleep(20 * time.Millisecond) // poll: until a follower has applied the seal
	}
	if err != nil || len(es) != 0 {
		t.Fatalf("reading the sealed segment at its end: %d entries, %v; want none, no error", len(es), err)
	}
	if c.Leader() != reps[leader].grpcAddr {
		t.Fatal("a read failure moved the client off a leader that still leads")
	}
}

// Only a follower that has not applied the entries yet is left: it may
// not answer "nothing there" for acknowledged entries of an open segment,
// which would read as the segment's end. The read fails until a replica
// that has them serves it.
func TestALaggingFollowerNeverAnswersThatAcknowledgedEntriesDoNotExist(t *testing.T) {
	reps, faulty, c := openFaultyShard(t)
	if next := appendEntries(t, c, 10); next != 20 {
		t.Fatalf("next offset %d after 10 entries of 2", next)
	}
	leader := leaderIndex(t, reps, c)
	faulty[leader].unreadable.Store(true)
	lagging, broken := (leader+1)%3, (leader+2)%3
	faulty[lagging].behind.Store(true)
	faulty[broken].unreadable.Store(true)

	for _, from := range []int64{0, 10} {
		if es, err := c.Read(ctx, 1, from, 1<<20); err == nil {
			t.Fatalf("read at %d with only a lagging replica able to answer: %d entries and no error, want an error", from, len(es))
		}
	}
	faulty[broken].unreadable.Store(false)
	if es, err := readUntil(c, 10, 20); err != nil || len(es) != 5 || es[0].BaseOffset != 10 {
		t.Fatalf("read at 10 once a replica with the entries answers: %d entries, %v; want 5 from 10", len(es), err)
	}
}
