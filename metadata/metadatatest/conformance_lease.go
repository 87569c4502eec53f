package metadatatest

import (
	"errors"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
)

// LeaseTTL sets the TTL of the leases the suite grants (default 1 s). The
// expiry tests wait about that long; the keep-alive test renews every tenth
// of it, so it must be long against the store's scheduling hiccups.
func LeaseTTL(d time.Duration) Option {
	return func(c *suite) { c.ttl = d }
}

const defaultLeaseTTL = time.Second

func (c *suite) leaseTests() []conformanceTest {
	return []conformanceTest{
		{"Grant returns distinct positive IDs and rejects a TTL below 1 ms", testGrant},
		{"A Txn put attaches a key to a lease and Get, Range and Watch report it", testLeaseAttach},
		{"A Txn put to a missing lease fails and writes nothing", testLeaseMissing},
		{"Revoke deletes the lease's keys at once, in one revision, seen by watchers", testRevoke},
		{"A lease not kept alive expires: its keys vanish, watchers see the deletes", c.testLeaseExpiry},
		{"KeepAlive keeps a lease and its keys alive past its TTL", c.testKeepAlive},
		{"A key put again without the lease or deleted leaves the lease", testLeaseDetach},
		{"Txn and lease calls after Close return ErrClosed", testLeaseClose},
	}
}

func (c *suite) leaseTTL() time.Duration {
	if c.ttl > 0 {
		return c.ttl
	}
	return defaultLeaseTTL
}

func mustGrant(t *testing.T, s metadata.Store, ttl time.Duration) metadata.LeaseID {
	t.Helper()
	id, err := s.Grant(ctxT(t), ttl)
	if err != nil {
		t.Fatalf("Grant(%v): %v", ttl, err)
	}
	return id
}

// putLeased puts the keys attached to lease id in one txn.
func putLeased(t *testing.T, s metadata.Store, id metadata.LeaseID, keys ...string) metadata.TxnResponse {
	t.Helper()
	var ops []metadata.Op
	for _, k := range keys {
		ops = append(ops, metadata.PutOp(k, []byte("v-"+k)).WithLease(id))
	}
	return mustTxn(t, s, metadata.TxnRequest{Then: ops})
}

// waitMissing polls until every key is gone; the bound only turns a hang
// into a failure.
func waitMissing(t *testing.T, s metadata.Store, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, k := range keys {
		for {
			if _, ok := mustGet(t, s, k); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q still present 30 s later: its lease never expired", k)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func testGrant(t *testing.T, s metadata.Store) {
	seen := map[metadata.LeaseID]bool{}
	for range 5 {
		id := mustGrant(t, s, time.Hour)
		if id <= 0 || seen[id] {
			t.Fatalf("Grant returned %d after %v", id, seen)
		}
		seen[id] = true
	}
	for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond} {
		if _, err := s.Grant(ctxT(t), ttl); !errors.Is(err, metadata.ErrInvalidTTL) {
			t.Fatalf("Grant(%v): err = %v, want ErrInvalidTTL", ttl, err)
		}
	}
	if ttl, err := s.KeepAlive(ctxT(t), mustGrant(t, s, 90*time.Second)); err != nil || ttl != 90*time.Second {
		t.Fatalf("KeepAlive of a fresh lease = %v, %v; want its TTL 90s", ttl, err)
	}
	for _, id := range []metadata.LeaseID{0, -1, 1 << 60} {
		if _, err := s.KeepAlive(ctxT(t), id); !errors.Is(err, metadata.ErrLeaseNotFound) {
			t.Fatalf("KeepAlive(%d): err = %v, want ErrLeaseNotFound", id, err)
		}
		if err := s.Revoke(ctxT(t), id); !errors.Is(err, metadata.ErrLeaseNotFound) {
			t.Fatalf("Revoke(%d): err = %v, want ErrLeaseNotFound", id, err)
		}
	}
}

func testLeaseAttach(t *testing.T, s metadata.Store) {
	id := mustGrant(t, s, time.Hour)
	ch, err := s.Watch(ctxT(t), "l/", 0)
	if err != nil {
		t.Fatal(err)
	}
	resp := putLeased(t, s, id, "l/a")
	kv := resp.Results[0].KV
	if kv.Lease != id {
		t.Fatalf("Txn result %+v, want lease %d", kv, id)
	}
	assertKV(t, s, kv)
	if got, _ := mustGet(t, s, "l/a"); got.Lease != id {
		t.Fatalf("Get = %+v, want lease %d", got, id)
	}
	res, err := s.Range(ctxT(t), "l/", metadata.RangeOptions{})
	if err != nil || len(res.KVs) != 1 || res.KVs[0].Lease != id {
		t.Fatalf("Range = %+v, %v; want l/a with lease %d", res.KVs, err, id)
	}
	if ev := next(t, ch); ev.KV.Lease != id {
		t.Fatalf("watch event %+v, want lease %d", ev.KV, id)
	}
}

func testLeaseMissing(t *testing.T, s metadata.Store) {
	id := mustGrant(t, s, time.Hour)
	if err := s.Revoke(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	rev := revision(t, s)
	for _, lease := range []metadata.LeaseID{id, 1 << 60} {
		_, err := s.Txn(ctxT(t), metadata.TxnRequest{Then: []metadata.Op{
			metadata.PutOp("plain", nil), metadata.PutOp("leased", nil).WithLease(lease),
		}})
		if !errors.Is(err, metadata.ErrLeaseNotFound) {
			t.Fatalf("Txn put to lease %d: err = %v, want ErrLeaseNotFound", lease, err)
		}
	}
	assertMissing(t, s, "plain")
	assertMissing(t, s, "leased")
	if got := revision(t, s); got != rev {
		t.Fatalf("failed txns moved the revision from %d to %d", rev, got)
	}
}

func testRevoke(t *testing.T, s metadata.Store) {
	id := mustGrant(t, s, time.Hour)
	other := mustGrant(t, s, time.Hour)
	putLeased(t, s, id, "r/a", "r/b")
	putLeased(t, s, other, "r/other")
	mustPut(t, s, "r/plain", "x", 0)
	ch, err := s.Watch(ctxT(t), "r/", 0)
	if err != nil {
		t.Fatal(err)
	}
	rev := revision(t, s)
	if err := s.Revoke(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	assertMissing(t, s, "r/a") // at once: no polling
	assertMissing(t, s, "r/b")
	if got := revision(t, s); got != rev+1 {
		t.Fatalf("revision after Revoke = %d, want %d (one revision for all its keys)", got, rev+1)
	}
	assertEvent(t, ch, metadata.EventDelete, metadata.KV{Key: "r/a", ModRevision: rev + 1})
	assertEvent(t, ch, metadata.EventDelete, metadata.KV{Key: "r/b", ModRevision: rev + 1})
	if _, ok := mustGet(t, s, "r/other"); !ok {
		t.Fatal("revoking one lease deleted another lease's key")
	}
	if _, ok := mustGet(t, s, "r/plain"); !ok {
		t.Fatal("revoking a lease deleted a key without a lease")
	}
	if err := s.Revoke(ctxT(t), id); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("second Revoke: err = %v, want ErrLeaseNotFound", err)
	}
	if _, err := s.KeepAlive(ctxT(t), id); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("KeepAlive of a revoked lease: err = %v, want ErrLeaseNotFound", err)
	}
	// A lease with no keys revokes without taking a revision.
	empty := mustGrant(t, s, time.Hour)
	if err := s.Revoke(ctxT(t), empty); err != nil {
		t.Fatal(err)
	}
	if got := revision(t, s); got != rev+1 {
		t.Fatalf("revoking a lease without keys moved the revision to %d", got)
	}
}

func (c *suite) testLeaseExpiry(t *testing.T, s metadata.Store) {
	id := mustGrant(t, s, c.leaseTTL())
	putLeased(t, s, id, "e/a", "e/b")
	mustPut(t, s, "e/plain", "x", 0)
	ch, err := s.Watch(ctxT(t), "e/", 0)
	if err != nil {
		t.Fatal(err)
	}
	waitMissing(t, s, "e/a", "e/b")
	first := next(t, ch)
	second := next(t, ch)
	if first.Type != metadata.EventDelete || second.Type != metadata.EventDelete ||
		first.KV.Key != "e/a" || second.KV.Key != "e/b" || first.KV.ModRevision != second.KV.ModRevision {
		t.Fatalf("events = %+v, %+v; want deletes of e/a and e/b at one revision", first, second)
	}
	if _, ok := mustGet(t, s, "e/plain"); !ok {
		t.Fatal("a lease's expiry deleted a key without a lease")
	}
	if _, err := s.KeepAlive(ctxT(t), id); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("KeepAlive of an expired lease: err = %v, want ErrLeaseNotFound", err)
	}
	if err := s.Revoke(ctxT(t), id); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("Revoke of an expired lease: err = %v, want ErrLeaseNotFound", err)
	}
}

func (c *suite) testKeepAlive(t *testing.T, s metadata.Store) {
	ttl := c.leaseTTL()
	kept := mustGrant(t, s, ttl)
	dropped := mustGrant(t, s, ttl)
	putLeased(t, s, kept, "k/kept")
	putLeased(t, s, dropped, "k/dropped")
	// Renew one lease every tenth of its TTL until the other has expired
	// (at least one TTL); the renewed lease's key must still be there.
	for {
		if got, err := s.KeepAlive(ctxT(t), kept); err != nil || got != ttl {
			t.Fatalf("KeepAlive = %v, %v; want %v", got, err, ttl)
		}
		if _, ok := mustGet(t, s, "k/dropped"); !ok {
			break
		}
		time.Sleep(ttl / 10)
	}
	for range 5 { // and a little longer
		time.Sleep(ttl / 10)
		if _, err := s.KeepAlive(ctxT(t), kept); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := mustGet(t, s, "k/kept"); !ok {
		t.Fatal("the key of a lease kept alive vanished")
	}
	if err := s.Revoke(ctxT(t), kept); err != nil {
		t.Fatal(err)
	}
}

func testLeaseDetach(t *testing.T, s metadata.Store) {
	id := mustGrant(t, s, time.Hour)
	putLeased(t, s, id, "d/put", "d/recreated", "d/moved")
	other := mustGrant(t, s, time.Hour)
	if kv := mustPut(t, s, "d/put", "plain", metadata.AnyVersion); kv.Lease != metadata.NoLease {
		t.Fatalf("plain Put = %+v, want no lease", kv)
	}
	if err := s.Delete(ctxT(t), "d/recreated", metadata.AnyVersion); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "d/recreated", "again", 0)
	putLeased(t, s, other, "d/moved")
	if err := s.Revoke(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"d/put", "d/recreated", "d/moved"} {
		if _, ok := mustGet(t, s, k); !ok {
			t.Fatalf("%q was deleted with a lease it had left", k)
		}
	}
	if err := s.Revoke(ctxT(t), other); err != nil {
		t.Fatal(err)
	}
	assertMissing(t, s, "d/moved")
}

func testLeaseClose(t *testing.T, s metadata.Store) {
	id := mustGrant(t, s, time.Hour)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := s.Txn(ctx, metadata.TxnRequest{Then: []metadata.Op{metadata.PutOp("a", nil)}}); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Txn after Close: %v", err)
	}
	if _, err := s.Grant(ctx, time.Hour); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Grant after Close: %v", err)
	}
	if _, err := s.KeepAlive(ctx, id); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("KeepAlive after Close: %v", err)
	}
	if err := s.Revoke(ctx, id); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Revoke after Close: %v", err)
	}
}

// testLeaseReopen checks that leases and their keys survive a restart, and
// that the restarted store still expires them.
func (c *suite) testLeaseReopen(t *testing.T) {
	s := c.newStore(t)
	id := mustGrant(t, s, c.leaseTTL())
	putLeased(t, s, id, "lr/a")
	s = c.reopen(t, s)
	if got, _ := mustGet(t, s, "lr/a"); got.Lease != id {
		t.Fatalf("after reopen lr/a = %+v, want lease %d", got, id)
	}
	if _, err := s.KeepAlive(ctxT(t), id); err != nil {
		t.Fatalf("KeepAlive after reopen: %v (the lease should have a fresh TTL)", err)
	}
	waitMissing(t, s, "lr/a")
	if _, err := s.KeepAlive(ctxT(t), id); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("KeepAlive after expiry: err = %v, want ErrLeaseNotFound", err)
	}
}
