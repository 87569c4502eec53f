package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// bookieNode is one `magnetar bookie` process: a replica of a test shard.
type bookieNode = roleNode

// startBookieShard starts n `magnetar bookie` processes on 127.0.0.1 as
// the replicas of one shard and waits until each says it is ready (a
// leader is elected). It returns the nodes and the --peers value.
func startBookieShard(t testing.TB, n int) ([]*bookieNode, string) {
	t.Helper()
	return startRoleCluster(t, "bookie", "b", n)
}

func dialShard(t testing.TB, nodes []*bookieNode) *bookie.RemoteClient {
	t.Helper()
	c, err := bookie.DialShard(testContext(t, 20*time.Second), grpcAddrs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// entryValue is what the writer stores at offset o: one record whose
// value names its offset, so a misplaced entry is visible.
func entryValue(o int64) string { return fmt.Sprintf("entry-%d", o) }

// readAll reads the segment from offset 0 until a read returns nothing.
func readAll(ctx context.Context, t testing.TB, c bookie.Client, seg uint64) ([]bookie.Entry, error) {
	t.Helper()
	var out []bookie.Entry
	next := int64(0)
	for {
		es, err := c.Read(ctx, seg, next, 1<<20)
		if err != nil || len(es) == 0 {
			return out, err
		}
		out = append(out, es...)
		next = es[len(es)-1].LastOffset + 1
	}
}

// checkDense checks that entries are exactly offsets 0..n-1, one record
// each, in order, each holding the record the writer made for its offset.
func checkDense(t testing.TB, es []bookie.Entry, n int64) {
	t.Helper()
	if int64(len(es)) != n {
		t.Fatalf("%d entries, want %d", len(es), n)
	}
	for i, e := range es {
		want := bookietest.Batch(t, int64(i), entryValue(int64(i)))
		if e.BaseOffset != int64(i) || e.LastOffset != int64(i) || !bytes.Equal(e.Data, want) {
			t.Fatalf("entry %d: offsets %d..%d, %d bytes; want the writer's batch for offset %d", i, e.BaseOffset, e.LastOffset, len(e.Data), i)
		}
	}
}

// A shard of 3 real `magnetar bookie` processes: a writer streams appends
// through a leader-following RemoteClient and the leader is killed with
// SIGKILL mid-stream. The writer carries on with the new leader (an append
// in flight at the kill reports an unknown outcome, which the writer
// resolves with a linearizable Info); afterwards the segment holds every
// acknowledged append, densely, in order, none twice. The killed replica
// is restarted and, once caught up, serves the same bytes itself.
func TestBookieShardSurvivesItsLeader(t *testing.T) {
	skipIfShort(t)
	nodes, peers := startBookieShard(t, 3)
	c := dialShard(t, nodes)
	ctx := testContext(t, 60*time.Second)
	const seg = 1
	if err := c.CreateSegment(ctx, seg, 0, 1); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		acked   = map[int64]bool{}
		unknown int
		next    int64 // the writer's next offset
	)
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			mu.Lock()
			off := next
			mu.Unlock()
			actx, cancel := context.WithTimeout(ctx, 15*time.Second)
			got, err := c.Append(actx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{bookietest.Batch(t, off, entryValue(off))}})
			cancel()
			mu.Lock()
			switch {
			case err == nil && got == off+1:
				acked[off] = true
				next = got
			case errors.Is(err, bookie.ErrUnknownOutcome):
				// Stored or not: the leader knows.
				unknown++
				info, ierr := c.Info(ctx, seg)
				if ierr != nil || (info.NextOffset != off && info.NextOffset != off+1) {
					mu.Unlock()
					writerDone <- fmt.Errorf("resolving the append at %d (%v): Info = %+v, %v", off, err, info, ierr)
					return
				}
				next = info.NextOffset
			default:
				mu.Unlock()
				writerDone <- fmt.Errorf("Append at %d: next %d, %w", off, got, err)
				return
			}
			mu.Unlock()
		}
	}()

	waitFor(t, 15*time.Second, "100 acknowledged appends", func() bool { return ackedCount() >= 100 })
	var old *bookieNode
	for _, b := range nodes {
		if b.grpcAddr == c.Leader() {
			old = b
		}
	}
	if old == nil {
		t.Fatalf("the client's leader %q is none of the replicas", c.Leader())
	}
	old.kill()
	before := ackedCount()
	t.Logf("killed leader %s after %d acknowledged appends", old.id, before)
	waitFor(t, 20*time.Second, "100 more acknowledged appends after the kill", func() bool { return ackedCount() >= before+100 })
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if c.Leader() == old.grpcAddr {
		t.Fatal("the client still names the killed replica as leader")
	}

	mu.Lock()
	total := next
	t.Logf("%d entries, %d acknowledged, %d appends with an unknown outcome", total, len(acked), unknown)
	mu.Unlock()
	info, err := c.Info(ctx, seg)
	if err != nil || info.NextOffset != total {
		t.Fatalf("Info = %+v, %v; want next offset %d", info, err, total)
	}
	es, err := readAll(ctx, t, c, seg)
	if err != nil {
		t.Fatal(err)
	}
	checkDense(t, es, total) // every acknowledged offset is among them

	// The killed replica comes back, catches up from the leader and serves
	// the same entries from its own state (a follower read).
	old.start(peers)
	old.waitReady()
	oc, err := bookie.Dial(ctx, old.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	fctx := bookie.WithFollowerReads(ctx)
	waitFor(t, 20*time.Second, "the restarted replica to catch up", func() bool {
		info, err := oc.Info(fctx, seg)
		return err == nil && info.NextOffset == total
	})
	es, err = readAll(fctx, t, oc, seg)
	if err != nil {
		t.Fatal(err)
	}
	checkDense(t, es, total)
}

// Fencing across processes: writer A appends to a segment; writer B,
// another client, seals it with a newer epoch; A's next append fails with
// ErrFenced, and the sealed segment ends exactly after A's last
// acknowledged entry.
func TestBookieShardFencesTheOldWriter(t *testing.T) {
	skipIfShort(t)
	nodes, _ := startBookieShard(t, 3)
	a, b := dialShard(t, nodes), dialShard(t, nodes)
	ctx := testContext(t, 30*time.Second)
	const seg = 7
	if err := a.CreateSegment(ctx, seg, 100, 1); err != nil {
		t.Fatal(err)
	}
	next := int64(100)
	for range 20 {
		n, err := a.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{bookietest.Batch(t, next, entryValue(next))}})
		if err != nil {
			t.Fatal(err)
		}
		next = n
	}
	sealed, err := b.Seal(ctx, seg, 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	if sealed.State != bookie.SegmentSealed || sealed.NextOffset != next || sealed.Epoch != 2 {
		t.Fatalf("sealed %+v; want sealed at %d with epoch 2", sealed, next)
	}
	_, err = a.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{bookietest.Batch(t, next, entryValue(next))}})
	if !errors.Is(err, bookie.ErrFenced) {
		t.Fatalf("A's append after the seal: %v, want ErrFenced", err)
	}
	if info, err := a.Info(ctx, seg); err != nil || info.NextOffset != next || info.State != bookie.SegmentSealed {
		t.Fatalf("Info after the fenced append = %+v, %v", info, err)
	}
}

// A bookie with --http-addr answers /healthz and /readyz and exports its
// shard's state on /metrics, the Raft log's size among it.
func TestBookieServesHealthAndMetrics(t *testing.T) {
	skipIfShort(t)
	httpAddr := nettest.FreeAddr(t)
	nodes, _ := startRoleCluster(t, "bookie", "b", 1, "--http-addr", httpAddr)
	c := dialShard(t, nodes)
	ctx := testContext(t, 20*time.Second)
	if err := c.CreateSegment(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	for o := range int64(10) {
		if _, err := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.Batch(t, o, entryValue(o))}}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		return string(body)
	}
	get("/healthz")
	get("/readyz")
	metrics := get("/metrics")
	for _, re := range []string{
		`(?m)^magnetar_bookie_is_leader\{shard="[^"]+"\} 1$`,
		`(?m)^magnetar_bookie_applied_index\{shard="[^"]+"\} [1-9][0-9]*$`,
		`(?m)^magnetar_bookie_log_bytes\{shard="[^"]+"\} [1-9][0-9.e+]*$`,
		`(?m)^magnetar_bookie_log_compacted_bytes_total\{shard="[^"]+"\} 0$`,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics lacks %s:\n%s", re, grepLines(metrics, "magnetar_bookie"))
		}
	}
}
