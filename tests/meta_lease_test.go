package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
)

// The lease holder of these tests is a process of its own, so that it can
// die the way a broker does: SIGKILL, no Revoke, connections cut. It is this
// test binary re-executed with leaseHolderEnv set (TestMain hands over to
// leaseHolderMain before building anything).
const (
	leaseHolderEnv    = "MAGNETAR_TEST_LEASE_HOLDER" // comma-separated gRPC addresses
	leaseHolderPrefix = "MAGNETAR_TEST_LEASE_PREFIX"
	leaseHolderTTL    = "MAGNETAR_TEST_LEASE_TTL"
)

// leaseHolderKeys are the keys the holder attaches to its lease, under its
// prefix.
var leaseHolderKeys = []string{"a", "b", "c"}

// leaseHolderMain grants a lease, attaches leaseHolderKeys to it in one
// Txn, prints "ready <lease>" and then renews the lease every TTL/4,
// printing "renewed" after each success. It prints "lost <err>" and exits
// 1 if the lease is gone, and exits when its stdin closes (the test
// process died).
func leaseHolderMain() int {
	addrs := strings.Split(os.Getenv(leaseHolderEnv), ",")
	prefix := os.Getenv(leaseHolderPrefix)
	ttl, err := time.ParseDuration(os.Getenv(leaseHolderTTL))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lease holder:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	c, err := metadata.Dial(dctx, addrs)
	dcancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lease holder: dial:", err)
		return 2
	}
	defer c.Close()
	id, err := c.Grant(ctx, ttl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lease holder: grant:", err)
		return 2
	}
	var req metadata.TxnRequest
	for _, k := range leaseHolderKeys {
		req.Then = append(req.Then, metadata.PutOp(prefix+k, []byte("held")).WithLease(id))
	}
	if _, err := c.Txn(ctx, req); err != nil {
		fmt.Fprintln(os.Stderr, "lease holder: txn:", err)
		return 2
	}
	fmt.Printf("ready %d\n", id)
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return 0
		}
		kctx, kcancel := context.WithTimeout(ctx, ttl)
		_, err := c.KeepAlive(kctx, id)
		kcancel()
		switch {
		case err == nil:
			fmt.Println("renewed")
		case errors.Is(err, metadata.ErrLeaseNotFound):
			fmt.Println("lost", err)
			return 1
		case ctx.Err() != nil:
			return 0
		default: // the cluster is failing over: try again at the next tick
			fmt.Fprintln(os.Stderr, "lease holder: keep-alive:", err)
		}
	}
}

// leaseHolder is a running leaseHolderMain process, seen from the test.
type leaseHolder struct {
	t       testing.TB
	cmd     *exec.Cmd
	lease   metadata.LeaseID
	renewed atomic.Int64 // "renewed" lines read so far
	exited  chan struct{}

	stderr syncBuffer

	mu struct {
		sync.Mutex
		lost string // the "lost" line, if any
	}
}

// startLeaseHolder starts a holder of a lease with the given TTL on the
// cluster's nodes and waits until its keys are written.
func startLeaseHolder(t testing.TB, nodes []*metaNode, prefix string, ttl time.Duration) *leaseHolder {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &leaseHolder{t: t, exited: make(chan struct{})}
	h.cmd = exec.Command(exe)
	h.cmd.Env = append(os.Environ(), leaseHolderEnv+"="+strings.Join(grpcAddrs(nodes), ","),
		leaseHolderPrefix+"="+prefix, leaseHolderTTL+"="+ttl.String())
	h.cmd.Stderr = &h.stderr
	stdin, err := h.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan metadata.LeaseID, 1)
	var read sync.WaitGroup
	read.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "renewed":
				h.renewed.Add(1)
			case strings.HasPrefix(line, "ready "):
				id, _ := strconv.ParseInt(strings.TrimPrefix(line, "ready "), 10, 64)
				ready <- metadata.LeaseID(id)
			case strings.HasPrefix(line, "lost "):
				h.mu.Lock()
				h.mu.lost = line
				h.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	go func() {
		read.Wait() // Wait closes the pipe: read it all first
		_ = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		h.kill()
		if t.Failed() {
			t.Logf("lease holder stderr:\n%s", h.stderr.String())
		}
	})
	select {
	case h.lease = <-ready:
	case <-h.exited:
		t.Fatalf("the lease holder exited before it was ready: %v; stderr:\n%s", h.cmd.ProcessState, h.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the lease holder was not ready within 30s; stderr:\n%s", h.stderr.String())
	}
	return h
}

// lost returns the holder's "lost" line: non-empty if it saw its lease gone.
func (h *leaseHolder) lost() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.lost
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *leaseHolder) kill() {
	select {
	case <-h.exited:
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.exited
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// expectHeldKeys reads the Txn's put events from the watch and checks that
// a linearizable listing has every key attached to the holder's lease.
func expectHeldKeys(ctx context.Context, t *testing.T, c *metadata.Client, events <-chan metadata.Event, prefix string, lease metadata.LeaseID) {
	t.Helper()
	for range leaseHolderKeys {
		select {
		case ev, ok := <-events:
			if !ok || ev.Type != metadata.EventPut || ev.KV.Lease != lease {
				t.Fatalf("watch event %+v (open %v), want a put attached to lease %d", ev, ok, lease)
			}
		case <-ctx.Done():
			t.Fatal("the watch never saw the holder's puts")
		}
	}
	res, err := c.Range(ctx, prefix, metadata.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != len(leaseHolderKeys) {
		t.Fatalf("listing of %s: %d keys, want %d", prefix, len(res.KVs), len(leaseHolderKeys))
	}
	for _, kv := range res.KVs {
		if kv.Lease != lease {
			t.Fatalf("%s is attached to lease %d, want %d", kv.Key, kv.Lease, lease)
		}
	}
}

// awaitDeletes reads the watch until every held key has been deleted and
// returns when the last delete arrived.
func awaitDeletes(ctx context.Context, t *testing.T, events <-chan metadata.Event, prefix string) time.Time {
	t.Helper()
	pending := map[string]bool{}
	for _, k := range leaseHolderKeys {
		pending[prefix+k] = true
	}
	for len(pending) > 0 {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch closed with %d deletes to go", len(pending))
			}
			if ev.Type != metadata.EventDelete || !pending[ev.KV.Key] {
				t.Fatalf("watch event %+v, want the delete of one of %v", ev, pending)
			}
			delete(pending, ev.KV.Key)
		case <-ctx.Done():
			t.Fatalf("the watch did not see the deletes of %v", pending)
		}
	}
	return time.Now()
}

// expectGone checks that the holder's keys and its lease are gone.
func expectGone(ctx context.Context, t *testing.T, c *metadata.Client, prefix string, lease metadata.LeaseID) {
	t.Helper()
	res, err := c.Range(ctx, prefix, metadata.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != 0 {
		t.Fatalf("after expiry %s still lists %d keys", prefix, len(res.KVs))
	}
	if _, err := c.KeepAlive(ctx, lease); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("KeepAlive of the expired lease: err = %v, want ErrLeaseNotFound", err)
	}
}

// A broker-like process holds a lease with a 2 s TTL on a 3-node cluster of
// real processes and keeps it alive. It is killed with SIGKILL: the lease
// expires, its keys are deleted, and a watcher of the prefix sees the
// deletes within TTL + 1 s of the kill (the bound; the measured
// delay is logged for docs/benchmarks.md).
func TestALeaseWhoseHolderIsKilledExpiresAndWatchersSeeTheDeletes(t *testing.T) {
	skipIfShort(t)
	const ttl = 2 * time.Second
	nodes := startMetaCluster(t, 3)
	c := dialMeta(t, nodes)
	ctx := testContext(t, 30*time.Second)
	events, err := c.Watch(ctx, "owners/", 0)
	if err != nil {
		t.Fatal(err)
	}

	h := startLeaseHolder(t, nodes, "owners/", ttl)
	expectHeldKeys(ctx, t, c, events, "owners/", h.lease)
	waitFor(t, 10*time.Second, "two keep-alives", func() bool { return h.renewed.Load() >= 2 })

	killed := time.Now()
	h.kill()
	deleted := awaitDeletes(ctx, t, events, "owners/")
	delay := deleted.Sub(killed)
	t.Logf("lease with TTL %v: the watcher saw its keys deleted %v after the holder was killed", ttl, delay.Round(time.Millisecond))
	if delay > ttl+time.Second {
		t.Errorf("the deletes came %v after the kill; the bound is TTL + 1 s = %v", delay, ttl+time.Second)
	}
	expectGone(ctx, t, c, "owners/", h.lease)
}

// A live holder keeps its lease alive while the metadata leader is killed
// with SIGKILL: its keep-alives fail over with the client, the new leader
// gives the lease a full TTL from its election, and the lease survives
// that grace period and another TTL after it with no delete seen by a
// watcher. The new leader still expires the lease once the holder dies.
func TestKillingTheMetadataLeaderDoesNotExpireALiveLease(t *testing.T) {
	skipIfShort(t)
	const ttl = 2 * time.Second
	nodes := startMetaCluster(t, 3)
	c := dialMeta(t, nodes)
	ctx := testContext(t, 40*time.Second)
	events, err := c.Watch(ctx, "owners/", 0)
	if err != nil {
		t.Fatal(err)
	}
	h := startLeaseHolder(t, nodes, "owners/", ttl)
	expectHeldKeys(ctx, t, c, events, "owners/", h.lease)
	waitFor(t, 10*time.Second, "two keep-alives", func() bool { return h.renewed.Load() >= 2 })

	old := leaderOf(t, c, nodes)
	old.kill()
	renewedAtKill := h.renewed.Load()
	var live []*metaNode
	for _, m := range nodes {
		if m != old {
			live = append(live, m)
		}
	}
	nl := leaderOf(t, c, live)
	t.Logf("killed leader %s; %s leads", old.id, nl.id)

	// The new leader's grace period (one TTL from its election) and a
	// further TTL, with margin: the lease would have expired in this window
	// had the keep-alives not reached the new leader.
	window := time.NewTimer(2*ttl + time.Second)
	defer window.Stop()
	select {
	case ev := <-events:
		t.Fatalf("watch event %+v after the leader was killed: the live lease expired", ev)
	case <-window.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if lost := h.lost(); lost != "" {
		t.Fatalf("the holder lost its lease: %s", lost)
	}
	if n := h.renewed.Load() - renewedAtKill; n < 3 {
		t.Fatalf("only %d keep-alives succeeded after the leader was killed", n)
	}
	res, err := c.Range(ctx, "owners/", metadata.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != len(leaseHolderKeys) {
		t.Fatalf("after the failover %d of %d held keys are left", len(res.KVs), len(leaseHolderKeys))
	}

	killed := time.Now()
	h.kill()
	deleted := awaitDeletes(ctx, t, events, "owners/")
	t.Logf("after the failover, the lease expired %v after its holder was killed", deleted.Sub(killed).Round(time.Millisecond))
	expectGone(ctx, t, c, "owners/", h.lease)
}
