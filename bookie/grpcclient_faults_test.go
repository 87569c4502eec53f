package bookie_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

// blackhole is a TCP proxy in front of a replica's gRPC server that can
// stop forwarding: it keeps reading and accepting, and drops every byte.
// To its clients the replica then looks paused (SIGSTOP) or cut off by a
// network that drops packets: connections open, no answer, no error.
type blackhole struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// serveBehindBlackhole serves s over gRPC on a loopback port of its own
// and proxies ln (the address in the peers) to it through a blackhole.
func serveBehindBlackhole(t *testing.T, s bookie.Client, ln net.Listener) *blackhole {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveGRPC(t, s, inner)
	b := &blackhole{ln: ln, target: inner.Addr().String()}
	b.wg.Go(b.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *blackhole) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", b.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, c, u)
		b.mu.Unlock()
		b.wg.Go(func() { b.pipe(u, c) })
		b.wg.Go(func() { b.pipe(c, u) })
	}
}

func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
}

// The shard leader stops answering without closing its connections (a
// SIGSTOP, or a network that drops packets) while a writer appends, and
// the other replicas elect a new leader. The append in flight fails with
// an unknown outcome once its deadline passes, instead of waiting for as
// long as the pause lasts; the writer's seal finds the new leader (the
// client passes over the silent replica, even while a follower still
// names it) and says where the segment ends: every acknowledged entry is
// in it, and the writer goes on in a new segment.
func TestAnAppendToASilentLeaderTimesOutAndTheWriterGoesOnWithTheNewLeader(t *testing.T) {
	holes := make([]*blackhole, 3)
	reps := openReplicatedShard(t, func(i int, s *bookie.Shard, ln net.Listener) {
		holes[i] = serveBehindBlackhole(t, s, ln)
	})
	var addrs []string
	for _, r := range reps {
		addrs = append(addrs, r.grpcAddr)
	}
	conns := bookie.NewConnsConfig(bookie.ClientConfig{WriteTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
	defer conns.Close()
	c := conns.Shard("s1", addrs)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second) // the pause: longer than the test may wait
	defer cancel()
	if err := c.CreateSegment(wctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	for range 10 {
		n, err := c.Append(wctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, next, 2)}})
		if err != nil {
			t.Fatal(err)
		}
		next = n
	}
	old := -1
	for i, r := range reps {
		if r.grpcAddr == c.Leader() {
			old = i
		}
	}
	if old < 0 {
		t.Fatalf("the client's leader %q is no replica", c.Leader())
	}

	holes[old].frozen.Store(true)
	if err := reps[old].shard.TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Append(wctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(t, next, 2)}})
	if !errors.Is(err, bookie.ErrUnknownOutcome) || !errors.Is(err, bookie.ErrTimeout) {
		t.Fatalf("append to the silent leader: %v, want ErrUnknownOutcome wrapping ErrTimeout", err)
	}
	info, err := c.Seal(wctx, 1, 2, 0)
	if err != nil {
		t.Fatalf("sealing after the timeout: %v", err)
	}
	if info.NextOffset != next { // the append's bytes were dropped on the way
		t.Fatalf("sealed at %d, want the acknowledged end %d", info.NextOffset, next)
	}
	if err := c.CreateSegment(wctx, 2, info.NextOffset, 2); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Append(wctx, bookie.AppendRequest{Segment: 2, Epoch: 2, Entries: [][]byte{bookietest.BatchN(t, next, 2)}}); err != nil || n != next+2 {
		t.Fatalf("append in the new segment: %d, %v; want next offset %d", n, err, next+2)
	}
	t.Logf("appends flowed again %v after the leader went silent", time.Since(start).Round(time.Millisecond))
	if c.Leader() == addrs[old] {
		t.Fatal("the client still names the silent replica as the leader")
	}
	es, err := c.Read(wctx, 1, 0, 1<<20)
	if err != nil || len(es) != 10 || es[9].LastOffset != next-1 {
		t.Fatalf("reading the sealed segment: %d entries, %v; want the 10 acknowledged", len(es), err)
	}
}
