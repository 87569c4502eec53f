package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

func newCatalog(t *testing.T) (*catalog.Catalog, *metadatatest.Store) {
	t.Helper()
	s := metadatatest.NewStore()
	t.Cleanup(func() { _ = s.Close() })
	return catalog.New(s), s
}

// Create, Get, Update with the version read, Delete with the version: the
// full compare-and-swap life of a record, with each way of losing a race
// reported by its own sentinel.
func TestTopicLifecycleIsCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	cat, store := newCatalog(t)
	name := catalog.TopicName{Tenant: "acme", Namespace: "prod", Topic: "orders"}

	v, err := cat.Topics.Create(ctx, name, &catalogpb.Topic{Partitions: 3, CreatedUnixMs: 42})
	if err != nil || v != 1 {
		t.Fatalf("Create = %d, %v; want version 1", v, err)
	}
	if _, ok, _ := store.Get(ctx, "o/acme/prod/orders"); !ok {
		t.Fatal("the topic row is not at o/acme/prod/orders")
	}
	_, err = cat.Topics.Create(ctx, name, &catalogpb.Topic{Partitions: 1})
	if !errors.Is(err, catalog.ErrExists) || !errors.Is(err, metadata.ErrVersionMismatch) {
		t.Fatalf("second Create: %v, want ErrExists wrapping ErrVersionMismatch", err)
	}

	e, ok, err := cat.Topics.Get(ctx, name)
	if err != nil || !ok || e.Value.Partitions != 3 || e.Value.CreatedUnixMs != 42 || e.Version != 1 || e.Name != name {
		t.Fatalf("Get = %+v, %v, %v", e, ok, err)
	}
	v, err = cat.Topics.Update(ctx, name, &catalogpb.Topic{Partitions: 6}, e.Version)
	if err != nil || v != 2 {
		t.Fatalf("Update = %d, %v; want version 2", v, err)
	}
	if _, err := cat.Topics.Update(ctx, name, &catalogpb.Topic{Partitions: 9}, e.Version); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("Update with a stale version: %v, want ErrConflict", err)
	}
	if err := cat.Topics.Delete(ctx, name, 1); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("Delete with a stale version: %v, want ErrConflict", err)
	}
	if err := cat.Topics.Delete(ctx, name, 2); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := cat.Topics.Get(ctx, name); ok || err != nil {
		t.Fatalf("Get after Delete: ok=%v err=%v", ok, err)
	}
	if _, err := cat.Topics.Update(ctx, name, &catalogpb.Topic{}, 2); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Update of a deleted record: %v, want ErrNotFound", err)
	}
	if err := cat.Topics.Delete(ctx, name, 2); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Delete of a deleted record: %v, want ErrNotFound", err)
	}
	if err := cat.Topics.Delete(ctx, name, metadata.AnyVersion); err != nil {
		t.Fatalf("unconditional Delete of an absent record: %v", err)
	}
}

// Every store writes under its documented prefix, and a record read back
// equals the one written, policies included.
func TestEveryStoreRoundTripsUnderItsDocumentedKey(t *testing.T) {
	ctx := context.Background()
	cat, store := newCatalog(t)
	ns := catalog.NamespaceName{Tenant: "acme", Namespace: "prod"}
	topic := catalog.TopicName{Tenant: "acme", Namespace: "prod", Topic: "orders"}
	part := catalog.PartitionName{Topic: topic, Index: 7}
	seven, thousand := int64(7), int32(1000)
	pol := &catalogpb.Policies{RetentionMs: &seven, MaxTopics: &thousand,
		BacklogQuotaAction: catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_EXCEPTION,
		AutoTopicCreation:  catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_DISABLED}

	check := func(key string, create func() error, get func() (proto.Message, bool, error), want proto.Message) {
		t.Helper()
		if err := create(); err != nil {
			t.Fatalf("%s: create: %v", key, err)
		}
		if _, ok, _ := store.Get(ctx, key); !ok {
			t.Fatalf("no row at %s", key)
		}
		got, ok, err := get()
		if err != nil || !ok || !proto.Equal(got, want) {
			t.Fatalf("%s: got %v, %v, %v; want %v", key, got, ok, err, want)
		}
	}
	ten := &catalogpb.Tenant{AdminRoles: []string{"ops"}}
	check("t/acme", func() error { _, err := cat.Tenants.Create(ctx, "acme", ten); return err },
		func() (proto.Message, bool, error) {
			e, ok, err := cat.Tenants.Get(ctx, "acme")
			return e.Value, ok, err
		}, ten)
	nsr := &catalogpb.Namespace{Policies: pol, Bundles: 4}
	check("n/acme/prod", func() error { _, err := cat.Namespaces.Create(ctx, ns, nsr); return err },
		func() (proto.Message, bool, error) {
			e, ok, err := cat.Namespaces.Get(ctx, ns)
			return e.Value, ok, err
		}, nsr)
	pr := &catalogpb.Partition{Epoch: 3, Segments: []*catalogpb.Segment{{Id: 9, State: catalogpb.SegmentState_SEGMENT_OPEN, Epoch: 3, Shard: "s1"}}}
	check("p/acme/prod/orders/7", func() error { _, err := cat.Partitions.Create(ctx, part, pr); return err },
		func() (proto.Message, bool, error) {
			e, ok, err := cat.Partitions.Get(ctx, part)
			return e.Value, ok, err
		}, pr)
	cn := catalog.CursorName{Partition: part, Subscription: "billing"}
	cr := &catalogpb.Cursor{NextOffset: 10, Acked: []*catalogpb.OffsetRange{{Start: 12, End: 14}}}
	check("c/acme/prod/orders/7/billing", func() error { _, err := cat.Cursors.Set(ctx, cn, cr); return err },
		func() (proto.Message, bool, error) { e, ok, err := cat.Cursors.Get(ctx, cn); return e.Value, ok, err }, cr)
	sh := &catalogpb.Shard{Members: []string{"k1", "k2", "k3"}, State: catalogpb.ShardState_SHARD_ACTIVE}
	check("s/s1", func() error { _, err := cat.Shards.Create(ctx, "s1", sh); return err },
		func() (proto.Message, bool, error) { e, ok, err := cat.Shards.Get(ctx, "s1"); return e.Value, ok, err }, sh)
	br := &catalogpb.Broker{NativeAddr: "10.0.0.1:6650", KafkaAddr: "10.0.0.1:9092"}
	check("b/b1", func() error { _, _, err := cat.Brokers.RegisterWithTTL(ctx, "b1", br, time.Minute); return err },
		func() (proto.Message, bool, error) { e, ok, err := cat.Brokers.Get(ctx, "b1"); return e.Value, ok, err }, br)
	bk := &catalogpb.Bookie{GrpcAddr: "10.0.0.2:6670"}
	check("k/k1", func() error { _, _, err := cat.Bookies.RegisterWithTTL(ctx, "k1", bk, time.Minute); return err },
		func() (proto.Message, bool, error) { e, ok, err := cat.Bookies.Get(ctx, "k1"); return e.Value, ok, err }, bk)
	bn := catalog.BundleName{Namespace: ns, Start: 0x40000000, End: 0x7fffffff}
	bo := &catalogpb.BundleOwner{Broker: "b1"}
	check("w/acme/prod/40000000-7fffffff", func() error { _, _, err := cat.Bundles.RegisterWithTTL(ctx, bn, bo, time.Minute); return err },
		func() (proto.Message, bool, error) { e, ok, err := cat.Bundles.Get(ctx, bn); return e.Value, ok, err }, bo)
}

// Names that would make an ambiguous key are refused before reaching the
// store.
func TestNamesThatBreakTheKeyLayoutAreRefused(t *testing.T) {
	ctx := context.Background()
	cat, _ := newCatalog(t)
	for _, n := range []catalog.TopicName{
		{Tenant: "", Namespace: "n", Topic: "t"},
		{Tenant: "a/b", Namespace: "n", Topic: "t"},
		{Tenant: "a", Namespace: "n", Topic: "x/y"},
	} {
		if _, err := cat.Topics.Create(ctx, n, &catalogpb.Topic{}); !errors.Is(err, catalog.ErrInvalidName) {
			t.Errorf("Create(%+v): %v, want ErrInvalidName", n, err)
		}
	}
	p := catalog.PartitionName{Topic: catalog.TopicName{Tenant: "a", Namespace: "n", Topic: "t"}, Index: -1}
	if _, _, err := cat.Partitions.Get(ctx, p); !errors.Is(err, catalog.ErrInvalidName) {
		t.Errorf("negative partition: %v, want ErrInvalidName", err)
	}
	if _, err := cat.Tenants.Create(ctx, "", &catalogpb.Tenant{}); !errors.Is(err, catalog.ErrInvalidName) {
		t.Errorf("empty tenant: %v, want ErrInvalidName", err)
	}
}

// Paging through a namespace's topics returns each exactly once, in name
// order, and never a topic of a neighbouring namespace whose name shares a
// prefix ("prod" and "prod2").
func TestTopicListingPagesInOrderWithinItsNamespace(t *testing.T) {
	ctx := context.Background()
	cat, _ := newCatalog(t)
	var names []catalog.TopicName
	var vals []*catalogpb.Topic
	for i := range 25 {
		names = append(names, catalog.TopicName{Tenant: "acme", Namespace: "prod", Topic: fmt.Sprintf("t%03d", i)})
		vals = append(vals, &catalogpb.Topic{Partitions: int32(i + 1)})
	}
	if _, err := cat.Topics.CreateBatch(ctx, names, vals); err != nil {
		t.Fatal(err)
	}
	other := catalog.TopicName{Tenant: "acme", Namespace: "prod2", Topic: "x"}
	if _, err := cat.Topics.Create(ctx, other, &catalogpb.Topic{Partitions: 1}); err != nil {
		t.Fatal(err)
	}

	var got []catalog.TopicName
	page := catalog.Page{Limit: 7}
	pages := 0
	for {
		l, err := cat.Topics.List(ctx, catalog.NamespaceName{Tenant: "acme", Namespace: "prod"}, page)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range l.Entries {
			if e.Value.Partitions != int32(len(got)+1) {
				t.Fatalf("%v has %d partitions, want %d", e.Name, e.Value.Partitions, len(got)+1)
			}
			got = append(got, e.Name)
		}
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	if pages != 4 || len(got) != 25 {
		t.Fatalf("%d pages, %d topics; want 4 pages, 25 topics", pages, len(got))
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("topic %d is %v, want %v", i, got[i], names[i])
		}
	}
	all, err := cat.Topics.List(ctx, catalog.NamespaceName{}, catalog.Page{})
	if err != nil || len(all.Entries) != 26 || all.Next != "" {
		t.Fatalf("listing everything: %d topics, next %q, %v; want 26", len(all.Entries), all.Next, err)
	}
	tenant, err := cat.Topics.List(ctx, catalog.NamespaceName{Tenant: "acme"}, catalog.Page{})
	if err != nil || len(tenant.Entries) != 26 {
		t.Fatalf("listing the tenant: %d topics, %v; want 26", len(tenant.Entries), err)
	}
}

// A batch create is all or nothing: one existing topic fails it and
// writes none of the others.
func TestCreateBatchIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	cat, _ := newCatalog(t)
	a := catalog.TopicName{Tenant: "t", Namespace: "n", Topic: "a"}
	b := catalog.TopicName{Tenant: "t", Namespace: "n", Topic: "b"}
	if _, err := cat.Topics.Create(ctx, b, &catalogpb.Topic{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := cat.Topics.CreateBatch(ctx, []catalog.TopicName{a, b}, []*catalogpb.Topic{{Partitions: 2}, {Partitions: 2}})
	if !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("CreateBatch over an existing topic: %v, want ErrExists", err)
	}
	if _, ok, _ := cat.Topics.Get(ctx, a); ok {
		t.Fatal("the failed batch wrote a")
	}
}

// Cursors and partitions list by their parent, and the listing parses the
// names back from the keys (subscription names may hold '/').
func TestCursorsListByPartition(t *testing.T) {
	ctx := context.Background()
	cat, _ := newCatalog(t)
	topic := catalog.TopicName{Tenant: "t", Namespace: "n", Topic: "x"}
	p1 := catalog.PartitionName{Topic: topic, Index: 1}
	p10 := catalog.PartitionName{Topic: topic, Index: 10}
	for _, c := range []catalog.CursorName{{p1, "a"}, {p1, "group/b"}, {p10, "c"}} {
		if _, err := cat.Cursors.Set(ctx, c, &catalogpb.Cursor{NextOffset: 5}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := cat.Cursors.List(ctx, p1, catalog.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 2 || l.Entries[0].Name.Subscription != "a" || l.Entries[1].Name.Subscription != "group/b" ||
		l.Entries[1].Name.Partition != p1 {
		t.Fatalf("cursors of partition 1: %+v", l.Entries)
	}
	for _, i := range []int32{0, 1, 10} {
		if _, err := cat.Partitions.Create(ctx, catalog.PartitionName{Topic: topic, Index: i}, &catalogpb.Partition{Epoch: 1}); err != nil {
			t.Fatal(err)
		}
	}
	pl, err := cat.Partitions.List(ctx, topic, catalog.Page{})
	if err != nil || len(pl.Entries) != 3 || pl.Entries[0].Name.Index != 0 || pl.Entries[1].Name.Index != 1 || pl.Entries[2].Name.Index != 10 {
		t.Fatalf("partitions: %+v, %v", pl.Entries, err)
	}
}

// Bundle ownership: the first broker to register a bundle holds it, a
// second is refused, and when the holder's lease ends the bundle is free
// for the next broker.
func TestBundleOwnershipFollowsTheLease(t *testing.T) {
	ctx := context.Background()
	cat, store := newCatalog(t)
	bn := catalog.BundleName{Namespace: catalog.NamespaceName{Tenant: "t", Namespace: "n"}, Start: 0, End: 0xffffffff}
	lease1, _, err := cat.Bundles.RegisterWithTTL(ctx, bn, &catalogpb.BundleOwner{Broker: "b1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	lease2, err := store.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Bundles.Register(ctx, bn, &catalogpb.BundleOwner{Broker: "b2"}, lease2); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("second owner: %v, want ErrExists", err)
	}
	e, ok, err := cat.Bundles.Get(ctx, bn)
	if err != nil || !ok || e.Value.Broker != "b1" || e.Lease != lease1 {
		t.Fatalf("owner = %+v, %v, %v; want b1 on lease %d", e, ok, err, lease1)
	}
	// An update keeps the record on its lease.
	if _, err := cat.Bundles.Update(ctx, bn, &catalogpb.BundleOwner{Broker: "b1", AcquiredUnixMs: 5}, e.Version, lease1); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Bundles.Update(ctx, bn, &catalogpb.BundleOwner{Broker: "b1"}, e.Version, lease1); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if err := store.Revoke(ctx, lease1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := cat.Bundles.Get(ctx, bn); ok {
		t.Fatal("the bundle is still owned after its owner's lease was revoked")
	}
	if _, err := cat.Bundles.Register(ctx, bn, &catalogpb.BundleOwner{Broker: "b2"}, lease2); err != nil {
		t.Fatalf("taking over the freed bundle: %v", err)
	}
	l, err := cat.Bundles.List(ctx, bn.Namespace, catalog.Page{})
	if err != nil || len(l.Entries) != 1 || l.Entries[0].Name != bn || l.Entries[0].Value.Broker != "b2" {
		t.Fatalf("bundles: %+v, %v", l.Entries, err)
	}
}

// A failed RegisterWithTTL leaves no lease behind: the broker ID is taken,
// so the lease it granted is revoked.
func TestRegisterWithTTLRevokesTheLeaseItCouldNotUse(t *testing.T) {
	ctx := context.Background()
	cat, store := newCatalog(t)
	if _, _, err := cat.Brokers.RegisterWithTTL(ctx, "b1", &catalogpb.Broker{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, _, err := cat.Brokers.RegisterWithTTL(ctx, "b1", &catalogpb.Broker{}, time.Minute)
	if !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("second registration: %v, want ErrExists", err)
	}
	// Lease IDs are granted in order: the failed registration's lease is the
	// newest, and it must be gone.
	probe, err := store.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.KeepAlive(ctx, probe-1); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("the unused lease %d is still alive: %v", probe-1, err)
	}
}

// Segment IDs are unique across concurrent allocators.
func TestNextSegmentIDIsUniqueUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	cat, _ := newCatalog(t)
	const n, per = 4, 25
	ids := make(chan uint64, n*per)
	errs := make(chan error, n)
	for range n {
		go func() {
			for range per {
				id, err := cat.NextSegmentID(ctx)
				if err != nil {
					errs <- err
					return
				}
				ids <- id
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("segment id %d allocated twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n*per || !seen[1] || !seen[n*per] {
		t.Fatalf("got %d distinct ids, want 1..%d", len(seen), n*per)
	}
}

// A corrupt value is reported, not returned as a zero record.
func TestCorruptRecordIsAnError(t *testing.T) {
	ctx := context.Background()
	cat, store := newCatalog(t)
	if _, err := store.Put(ctx, "o/t/n/x", []byte{0xff, 0xff}, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.Topics.Get(ctx, catalog.TopicName{Tenant: "t", Namespace: "n", Topic: "x"}); !errors.Is(err, catalog.ErrCorrupt) {
		t.Fatalf("Get: %v, want ErrCorrupt", err)
	}
}

// Groups are keyed by their whole name, '/' included, and list in name
// order.
func TestGroupsKeepNamesWithSlashes(t *testing.T) {
	ctx := context.Background()
	cat, _ := newCatalog(t)
	for _, g := range []string{"billing", "team/etl"} {
		if _, err := cat.Groups.Set(ctx, g, &catalogpb.Group{ProtocolType: "consumer", Topics: []string{"t/n/x"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cat.Groups.Set(ctx, "", &catalogpb.Group{}); !errors.Is(err, catalog.ErrInvalidName) {
		t.Fatalf("empty group name: %v, want ErrInvalidName", err)
	}
	l, err := cat.Groups.List(ctx, catalog.Page{})
	if err != nil || len(l.Entries) != 2 || l.Entries[0].Name != "billing" || l.Entries[1].Name != "team/etl" ||
		l.Entries[1].Value.GetTopics()[0] != "t/n/x" {
		t.Fatalf("groups: %+v, %v", l.Entries, err)
	}
}
