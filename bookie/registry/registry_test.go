package registry_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/registry"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

var ctx = context.Background()

// replica is a shard replica whose leadership and usage the test sets.
type replica struct {
	mu     sync.Mutex
	leader bool
	usage  bookie.Usage
}

func (r *replica) Status() bookie.ShardStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bookie.ShardStatus{Leader: r.leader}
}

func (r *replica) Usage(context.Context) (bookie.Usage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.usage, nil
}

func (r *replica) set(leader bool, u bookie.Usage) {
	r.mu.Lock()
	r.leader, r.usage = leader, u
	r.mu.Unlock()
}

func start(t *testing.T, cat *catalog.Catalog, id string, shards ...registry.HostedShard) *registry.Registrar {
	t.Helper()
	r, err := registry.Start(ctx, cat, registry.Config{BookieID: id, GRPCAddr: id + ":6670", ReportInterval: 20 * time.Millisecond, TTL: time.Second}, shards, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func shardsOf(t *testing.T, cat *catalog.Catalog) map[string]registry.ShardInfo {
	t.Helper()
	l, err := registry.ListShards(ctx, cat)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]registry.ShardInfo{}
	for _, s := range l {
		out[s.ID] = s
	}
	return out
}

// Bookies record their shards and report their leadership and usage; a
// bookie that stops takes its reports with it, and one started with other
// members for a known shard is refused.
func TestRegistrationsShowShardsLeadersAndUsage(t *testing.T) {
	cat := catalog.New(metadatatest.NewStore())
	members := map[string]string{"b1": "b1:6670", "b2": "b2:6670"}
	r1, r2 := &replica{}, &replica{}
	r1.set(true, bookie.Usage{Segments: 3, OpenSegments: 1, Bytes: 300})
	start(t, cat, "b1", registry.HostedShard{ID: "s1", Members: members, Replica: r1})
	b2 := start(t, cat, "b2", registry.HostedShard{ID: "s1", Members: members, Replica: r2})

	waitFor(t, "both replicas to report", func() bool {
		s := shardsOf(t, cat)["s1"]
		return len(s.Replicas) == 2 && s.Replicas[0].Live && s.Replicas[1].Live
	})
	s := shardsOf(t, cat)["s1"]
	if s.Leader != "b1" || s.State != "active" || s.Usage != (registry.ShardUsageInfo{Segments: 3, OpenSegments: 1, Bytes: 300}) {
		t.Fatalf("shard s1: %+v", s)
	}
	bookies, err := registry.ListBookies(ctx, cat)
	if err != nil || len(bookies) != 2 || bookies[0].ID != "b1" || len(bookies[0].Leads) != 1 {
		t.Fatalf("bookies: %+v, %v", bookies, err)
	}

	// Closing b2 revokes its registration at once.
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	if s := shardsOf(t, cat)["s1"]; s.Replicas[1].Live {
		t.Fatalf("b2 closed but still live: %+v", s)
	}

	_, err = registry.Start(ctx, cat, registry.Config{BookieID: "b3"},
		[]registry.HostedShard{{ID: "s1", Members: map[string]string{"b1": "b1:6670", "b3": "b3:6670"}, Replica: &replica{}}}, nil)
	if !errors.Is(err, registry.ErrMembership) {
		t.Fatalf("other members for s1: %v, want ErrMembership", err)
	}
}

// New segments go to the shard with the fewest open segments; a burst is
// spread before the leaders report again; shards without a live leader or
// not active take none; an unknown shard is ErrUnknownShard.
func TestDirectoryPlacesOnTheLeastLoadedShard(t *testing.T) {
	cat := catalog.New(metadatatest.NewStore())
	ra, rb, rc := &replica{}, &replica{}, &replica{}
	ra.set(true, bookie.Usage{OpenSegments: 4, Bytes: 10})
	rb.set(true, bookie.Usage{OpenSegments: 2, Bytes: 1000})
	rc.set(false, bookie.Usage{}) // no leader: must not be chosen
	start(t, cat, "b1",
		registry.HostedShard{ID: "a", Members: map[string]string{"b1": "b1:6670"}, Replica: ra},
		registry.HostedShard{ID: "b", Members: map[string]string{"b1": "b1:6670"}, Replica: rb},
		registry.HostedShard{ID: "c", Members: map[string]string{"b1": "b1:6670"}, Replica: rc})
	waitFor(t, "the reports", func() bool { return shardsOf(t, cat)["b"].Leader == "b1" })

	conns := bookie.NewConns()
	defer conns.Close()
	d := registry.NewDirectory(cat, conns, time.Hour, nil)
	var got []string
	for range 4 {
		id, err := d.Place(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	// b (2 open) takes two, then a and b are level at 4 and a has fewer
	// bytes.
	if want := []string{"b", "b", "a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("placements %v, want %v", got, want)
	}
	if _, err := d.Shard(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Shard(ctx, "nope"); !errors.Is(err, bookie.ErrUnknownShard) {
		t.Fatalf("unknown shard: %v", err)
	}
}

// A registration whose lease is lost (the metadata service expired it) is
// made again on the next refresh.
func TestARegistrationWhoseLeaseIsLostComesBack(t *testing.T) {
	cat := catalog.New(metadatatest.NewStore())
	start(t, cat, "b1", registry.HostedShard{ID: "s1", Members: map[string]string{"b1": "b1:6670"}, Replica: &replica{}})
	var lease metadata.LeaseID
	waitFor(t, "the registration", func() bool {
		e, ok, err := cat.Bookies.Get(ctx, "b1")
		lease = e.Lease
		return err == nil && ok
	})
	if err := cat.Store().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new registration", func() bool {
		e, ok, err := cat.Bookies.Get(ctx, "b1")
		return err == nil && ok && e.Lease != lease
	})
}
