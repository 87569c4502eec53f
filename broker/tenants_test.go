package broker

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

func mustNamespace(t *testing.T, b *Broker, ns string, opts NamespaceOptions) NamespaceName {
	t.Helper()
	n, err := ParseNamespaceName(ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTenant(ctxT(t), n.Tenant, nil); err != nil && !errors.Is(err, ErrTenantExists) {
		t.Fatal(err)
	}
	if err := b.CreateNamespace(ctxT(t), n, opts); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTheDefaultNamespaceAndItsTenantExistOnceTheBrokerHasStarted(t *testing.T) {
	b := newBroker(t, newStores(t))
	ts, err := b.ListTenants(ctxT(t))
	if err != nil || len(ts) != 1 || ts[0].Name != "public" {
		t.Fatalf("ListTenants = %+v, %v; want [public]", ts, err)
	}
	ns, err := b.ListNamespaces(ctxT(t), "public")
	if err != nil || len(ns) != 1 || ns[0].Name.String() != "public/default" {
		t.Fatalf("ListNamespaces(public) = %+v, %v; want [public/default]", ns, err)
	}
}

func TestATopicNeedsAnExistingNamespaceAndANamespaceAnExistingTenant(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n, _ := b.ParseTopic("acme/app/orders")
	if err := b.CreateTopic(ctx, n, 1); !errors.Is(err, ErrNamespaceNotFound) {
		t.Fatalf("topic in a missing namespace: err = %v, want ErrNamespaceNotFound", err)
	}
	if _, err := b.Topic(ctx, n, true); !errors.Is(err, ErrNamespaceNotFound) {
		t.Fatalf("auto-creating a topic in a missing namespace: err = %v, want ErrNamespaceNotFound", err)
	}
	app := NamespaceName{"acme", "app"}
	if err := b.CreateNamespace(ctx, app, NamespaceOptions{}); !errors.Is(err, ErrTenantNotFound) {
		t.Fatalf("namespace of a missing tenant: err = %v, want ErrTenantNotFound", err)
	}
	if err := b.CreateTenant(ctx, "acme", []string{"ops"}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTenant(ctx, "acme", nil); !errors.Is(err, ErrTenantExists) {
		t.Fatalf("second tenant create: err = %v, want ErrTenantExists", err)
	}
	if err := b.CreateNamespace(ctx, app, NamespaceOptions{Bundles: 8, Policies: &catalogpb.Policies{MaxTopics: proto.Int32(10)}}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateNamespace(ctx, app, NamespaceOptions{}); !errors.Is(err, ErrNamespaceExists) {
		t.Fatalf("second namespace create: err = %v, want ErrNamespaceExists", err)
	}
	if err := b.CreateTopic(ctx, n, 2); err != nil {
		t.Fatal(err)
	}
	info, err := b.Namespace(ctx, app)
	if err != nil || info.Bundles != 8 || info.Policies.GetMaxTopics() != 10 {
		t.Fatalf("Namespace(acme/app) = %+v, %v", info, err)
	}
	if ti, err := b.Tenant(ctx, "acme"); err != nil || len(ti.AdminRoles) != 1 || ti.AdminRoles[0] != "ops" {
		t.Fatalf("Tenant(acme) = %+v, %v", ti, err)
	}
	for _, bad := range []string{"acme", "a/b/c", "acme/a b", "/x"} {
		if _, err := ParseNamespaceName(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseNamespaceName(%q): err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestTenantsAndNamespacesAreDeletedOnlyWhenEmpty(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	app := mustNamespace(t, b, "acme/app", NamespaceOptions{})
	n := topic(t, b, "acme/app/orders", 1)
	if err := b.DeleteTenant(ctx, "acme"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("delete a tenant with a namespace: err = %v, want ErrNotEmpty", err)
	}
	if err := b.DeleteNamespace(ctx, app); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("delete a namespace with a topic: err = %v, want ErrNotEmpty", err)
	}
	if err := b.DeleteTopic(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteNamespace(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteNamespace(ctx, app); !errors.Is(err, ErrNamespaceNotFound) {
		t.Fatalf("second namespace delete: err = %v, want ErrNamespaceNotFound", err)
	}
	if err := b.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Tenant(ctx, "acme"); !errors.Is(err, ErrTenantNotFound) {
		t.Fatalf("tenant after delete: err = %v, want ErrTenantNotFound", err)
	}
	if _, err := b.ListNamespaces(ctx, "acme"); !errors.Is(err, ErrTenantNotFound) {
		t.Fatalf("namespaces of a deleted tenant: err = %v, want ErrTenantNotFound", err)
	}
}

// TestMaxTopicsHoldsUnderConcurrentCreates proves the limit is strict: of
// many concurrent creates of distinct topics, exactly max_topics succeed,
// whichever broker they go through.
func TestMaxTopicsHoldsUnderConcurrentCreates(t *testing.T) {
	s := newStores(t)
	brokers := []*Broker{newBroker(t, s), newBroker(t, s)}
	const limit, tries = 5, 24
	mustNamespace(t, brokers[0], "acme/small", NamespaceOptions{Policies: &catalogpb.Policies{MaxTopics: proto.Int32(limit)}})
	var wg sync.WaitGroup
	errs := make([]error, tries)
	for i := range tries {
		wg.Go(func() {
			b := brokers[i%2]
			n, _ := b.ParseTopic(fmt.Sprintf("acme/small/t%d", i))
			errs[i] = b.CreateTopic(ctxT(t), n, 1)
		})
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, ErrTooManyTopics):
			t.Errorf("unexpected error %v", err)
		}
	}
	ts, err := brokers[0].ListTopics(ctxT(t), "acme/small")
	if err != nil {
		t.Fatal(err)
	}
	if created != limit || len(ts) != limit {
		t.Fatalf("%d creates succeeded and %d topics exist; want exactly %d", created, len(ts), limit)
	}
}

// TestDeletingANamespaceWhileTopicsAreCreatedLeavesNoOrphans races topic
// creates with the namespace's delete: either the delete fails, or no
// topic row is left in the deleted namespace.
func TestDeletingANamespaceWhileTopicsAreCreatedLeavesNoOrphans(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	for round := range 20 {
		ns := mustNamespace(t, b, fmt.Sprintf("acme/race%d", round), NamespaceOptions{})
		var wg sync.WaitGroup
		wg.Go(func() {
			n, _ := b.ParseTopic(ns.String() + "/t")
			_ = b.CreateTopic(ctx, n, 1)
		})
		delErr := b.DeleteNamespace(ctx, ns)
		wg.Wait()
		l, err := b.cat.Topics.List(ctx, ns.catName(), catalog.Page{})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case delErr == nil && len(l.Entries) > 0:
			t.Fatalf("round %d: namespace deleted but topic %s is left in it", round, l.Entries[0].Name)
		case delErr != nil && !errors.Is(delErr, ErrNotEmpty):
			t.Fatalf("round %d: delete: %v", round, delErr)
		}
	}
}

func TestAutoTopicCreationFollowsTheNamespacePolicy(t *testing.T) {
	ctx := ctxT(t)
	// The broker creates nothing by default; one namespace turns it on
	// with 3 partitions.
	b := newBroker(t, newStores(t), func(c *Config) { c.AutoCreateTopics = false })
	mustNamespace(t, b, "acme/auto", NamespaceOptions{Policies: &catalogpb.Policies{
		AutoTopicCreation:   catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_ENABLED,
		AutoTopicPartitions: proto.Int32(3),
	}})
	n, _ := b.ParseTopic("acme/auto/made")
	if info, err := b.Topic(ctx, n, true); err != nil || info.Partitions != 3 {
		t.Fatalf("auto-created %+v, %v; want 3 partitions", info, err)
	}
	if _, err := b.Topic(ctx, TopicName{"public", "default", "nope"}, true); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("broker default off: err = %v, want ErrTopicNotFound", err)
	}

	// The broker creates topics by default; one namespace turns it off.
	b2 := newBroker(t, newStores(t))
	mustNamespace(t, b2, "acme/manual", NamespaceOptions{Policies: &catalogpb.Policies{
		AutoTopicCreation: catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_DISABLED,
	}})
	n2, _ := b2.ParseTopic("acme/manual/x")
	if _, err := b2.Topic(ctx, n2, true); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("namespace off: err = %v, want ErrTopicNotFound", err)
	}
	if info, err := b2.Topic(ctx, TopicName{"public", "default", "yes"}, true); err != nil || info.Partitions != 1 {
		t.Fatalf("broker default on: %+v, %v", info, err)
	}
}
