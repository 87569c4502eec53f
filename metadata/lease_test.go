package metadata

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// manualLessor opens a service whose lessor runs only when the test calls
// check, by a fake clock.
func manualLessor(t *testing.T) (*Service, *fakeClock) {
	t.Helper()
	s := openSmall(t, defaultRingSize, 1000)
	s.leases.stop() // no ticker: the test drives the lessor
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	s.leases.now = clock.Now
	s.leases.deactivate("test takes over the clock")
	s.leases.check(context.Background())
	return s, clock
}

func exists(t *testing.T, s *Service, key string) bool {
	t.Helper()
	_, ok, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestALeaderChangeGivesEveryLeaseAFullTTLFromTheNewLeadership(t *testing.T) {
	t.Parallel()
	s, clock := manualLessor(t)
	ctx := context.Background()
	const ttl = 10 * time.Second
	id, err := s.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, TxnRequest{Then: []Op{PutOp("owner", nil).WithLease(id)}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(9 * time.Second)
	s.leases.check(ctx)
	if !exists(t, s, "owner") {
		t.Fatal("the lease expired before its TTL")
	}

	// Leadership is lost and regained: the new term's leader forgets the old
	// deadlines and starts every lease afresh.
	s.leases.deactivate("simulated leader change")
	var nl *NotLeaderError
	if _, err := s.KeepAlive(ctx, id); !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("KeepAlive while not serving leases: err = %v, want a *NotLeaderError", err)
	}
	s.leases.check(ctx)
	clock.Advance(9 * time.Second) // 18 s after the grant, 9 s after the election
	s.leases.check(ctx)
	if !exists(t, s, "owner") {
		t.Fatal("a leader change expired a live lease: the new leader gave no grace period")
	}

	clock.Advance(2 * time.Second) // past a full TTL since the election
	s.leases.check(ctx)            // proposes the revoke and waits for it
	if exists(t, s, "owner") {
		t.Fatal("the lease outlived a full TTL after the election")
	}
	if _, err := s.KeepAlive(ctx, id); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("KeepAlive after expiry: err = %v, want ErrLeaseNotFound", err)
	}
}

func TestKeepAliveMovesTheDeadlineAndAnExpiredLeaseCannotBeRenewed(t *testing.T) {
	t.Parallel()
	s, clock := manualLessor(t)
	ctx := context.Background()
	id, err := s.Grant(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		clock.Advance(8 * time.Second)
		if _, err := s.KeepAlive(ctx, id); err != nil {
			t.Fatal(err)
		}
		s.leases.check(ctx)
	}
	clock.Advance(11 * time.Second)
	// The deadline has passed but no check has run: KeepAlive must not
	// resurrect it.
	if _, err := s.KeepAlive(ctx, id); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("KeepAlive past the deadline: err = %v, want ErrLeaseNotFound", err)
	}
}

func TestFSMLeasesAndTheirKeysAreInSnapshots(t *testing.T) {
	t.Parallel()
	src := newTestFSM(t, memDB(t), 100)
	resp := src.ApplyBatch(logs(1,
		command{op: opGrant, ttlMs: 5000},
		command{op: opTxn, txn: TxnRequest{Then: []Op{PutOp("a", []byte("1")).WithLease(1), PutOp("b", nil).WithLease(1), PutOp("c", nil)}}},
	))
	if resp[0] != LeaseID(1) {
		t.Fatalf("grant response = %v, want lease 1 (its Raft index)", resp[0])
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dstDB := memDB(t)
	dst := newTestFSM(t, dstDB, 100)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, dstDB), dump(t, src.db); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state:\n%v\nwant:\n%v", got, want)
	}
	if ttl, ok := dst.readLease(dstDB, 1); !ok || ttl != 5000 {
		t.Fatalf("restored lease 1 = %d ms, %v", ttl, ok)
	}
	// The restored FSM knows which keys the lease holds.
	if resp := dst.ApplyBatch(logs(3, command{op: opRevoke, lease: 1})); resp[0] != nil {
		t.Fatalf("revoke on the restored FSM: %v", resp[0])
	}
	for key, want := range map[string]bool{"a": false, "b": false, "c": true} {
		if _, ok, _ := readKV(dstDB, key); ok != want {
			t.Fatalf("after revoke %q present = %v, want %v", key, ok, want)
		}
	}
	if dst.rev != 2 {
		t.Fatalf("revision after revoke = %d, want 2 (both keys in one revision)", dst.rev)
	}
}

func TestFSMLeaseIDsAreTheGrantsRaftIndexOnEveryReplica(t *testing.T) {
	t.Parallel()
	batch := logs(7, command{op: opGrant, ttlMs: 1000}, put("x", "1", 0), command{op: opGrant, ttlMs: 1000})
	for range 2 { // two replicas applying the same log agree
		f := newTestFSM(t, memDB(t), 100)
		resp := f.ApplyBatch(batch)
		if resp[0] != LeaseID(7) || resp[2] != LeaseID(9) {
			t.Fatalf("lease IDs = %v, %v; want 7, 9", resp[0], resp[2])
		}
	}
}

func TestLeaseRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, ttl := range []int64{1, 1000, 1 << 40} {
		got, err := decodeLeaseRecord(appendLeaseRecord(nil, ttl))
		if err != nil || got != ttl {
			t.Fatalf("lease record of %d ms decodes as %d, %v", ttl, got, err)
		}
	}
	for _, b := range [][]byte{nil, {recordFormat}, {recordFormat, 0}, {9, 2}, {recordFormat, 2, 0}} {
		if _, err := decodeLeaseRecord(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decodeLeaseRecord(%x) err = %v, want ErrCorrupt", b, err)
		}
	}
}

// FuzzDecodeLeaseRecord: lease records are read from Pebble and snapshots.
// No input may panic; whatever decodes re-encodes to the same record.
func FuzzDecodeLeaseRecord(f *testing.F) {
	f.Add(appendLeaseRecord(nil, 5000))
	f.Add([]byte{recordFormat, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ttl, err := decodeLeaseRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again, err := decodeLeaseRecord(appendLeaseRecord(nil, ttl)); err != nil || again != ttl {
			t.Fatalf("ttl %d re-decodes as %d, %v", ttl, again, err)
		}
	})
}
