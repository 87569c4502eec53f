package broker

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

func as(t *testing.T, role string) context.Context {
	return auth.NewContext(ctxT(t), auth.Principal{Role: role, Method: "token"})
}

func withAuthz(c *Config) {
	c.Authorization = AuthzConfig{Enabled: true, SuperUserRoles: "root, ops"}
}

func TestAuthorizationFollowsSuperusersTenantAdminsAndGrants(t *testing.T) {
	b := newBroker(t, newStores(t), withAuthz)
	if err := b.CreateTenant(ctxT(t), "acme", []string{"acme-admin"}); err != nil {
		t.Fatal(err)
	}
	nsA := mustNamespace(t, b, "acme/iot", NamespaceOptions{})
	nsB := mustNamespace(t, b, "globex/iot", NamespaceOptions{})
	topicA := TopicName{Tenant: "acme", Namespace: "iot", Topic: "orders"}
	topicB := TopicName{Tenant: "globex", Namespace: "iot", Topic: "orders"}
	for _, n := range []TopicName{topicA, topicB} {
		if err := b.CreateTopic(ctxT(t), n, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetNamespacePermission(ctxT(t), nsA, "app", ActionProduce); err != nil {
		t.Fatal(err)
	}
	if err := b.SetTopicPermission(ctxT(t), topicA, "reader", ActionConsume); err != nil {
		t.Fatal(err)
	}
	allowed := func(err error) bool {
		if err != nil && !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("unexpected error %v", err)
		}
		return err == nil
	}
	for _, c := range []struct {
		what string
		err  error
		want bool
	}{
		{"a superuser administers the cluster", b.AuthorizeCluster(as(t, "ops")), true},
		{"a tenant admin may not administer the cluster", b.AuthorizeCluster(as(t, "acme-admin")), false},
		{"an anonymous request may do nothing", b.AuthorizeTopic(as(t, ""), topicA, ActionConsume), false},
		{"a tenant admin administers its tenant", b.AuthorizeTenant(as(t, "acme-admin"), "acme"), true},
		{"a tenant admin consumes its tenant's topics", b.AuthorizeTopic(as(t, "acme-admin"), topicA, ActionConsume), true},
		{"a tenant admin may not touch another tenant", b.AuthorizeTopic(as(t, "acme-admin"), topicB, ActionConsume), false},
		{"a tenant admin may not administer another tenant", b.AuthorizeTenant(as(t, "acme-admin"), "globex"), false},
		{"a namespace grant of produce lets the role produce", b.AuthorizeTopic(as(t, "app"), topicA, ActionProduce), true},
		{"a namespace grant of produce does not let it consume", b.AuthorizeTopic(as(t, "app"), topicA, ActionConsume), false},
		{"a namespace grant covers topics not yet created", b.AuthorizeTopic(as(t, "app"), TopicName{"acme", "iot", "later"}, ActionProduce), true},
		{"a namespace grant does not reach the tenant's other namespaces", b.AuthorizeNamespace(as(t, "app"), nsB, ActionProduce), false},
		{"a namespace grant does not make the role a tenant admin", b.AuthorizeTenant(as(t, "app"), "acme"), false},
		{"a topic grant lets the role consume that topic", b.AuthorizeTopic(as(t, "reader"), topicA, ActionConsume), true},
		{"a topic grant does not reach its namespace", b.AuthorizeNamespace(as(t, "reader"), nsA, ActionConsume), false},
		{"any of the actions needed is enough", b.AuthorizeTopic(as(t, "reader"), topicA, ActionProduce|ActionConsume), true},
		{"an unknown tenant grants nothing", b.AuthorizeTenant(as(t, "acme-admin"), "nope"), false},
	} {
		if got := allowed(c.err); got != c.want {
			t.Errorf("%s: allowed = %v (%v), want %v", c.what, got, c.err, c.want)
		}
	}

	// A revoke applies at once on this broker (and through the watch on
	// the others).
	if err := b.SetNamespacePermission(ctxT(t), nsA, "app", 0); err != nil {
		t.Fatal(err)
	}
	if err := b.AuthorizeTopic(as(t, "app"), topicA, ActionProduce); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("after the revoke: %v, want ErrPermissionDenied", err)
	}
	perms, err := b.TopicPermissions(ctxT(t), topicA)
	if err != nil || perms["reader"] != ActionConsume || len(perms) != 1 {
		t.Fatalf("TopicPermissions = %v, %v", perms, err)
	}
}

func TestAGrantMadeThroughOneBrokerAppliesOnAnother(t *testing.T) {
	s := newStores(t)
	b1 := newBroker(t, s, withAuthz)
	b2 := newBroker(t, s, withAuthz)
	ns := mustNamespace(t, b1, "acme/iot", NamespaceOptions{})
	topic := TopicName{Tenant: "acme", Namespace: "iot", Topic: "t"}
	if err := b2.AuthorizeTopic(as(t, "app"), topic, ActionConsume); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("before the grant: %v", err) // b2 has now cached the namespace
	}
	if err := b1.SetNamespacePermission(ctxT(t), ns, "app", ActionConsume); err != nil {
		t.Fatal(err)
	}
	poll(t, "the grant to reach the other broker", func() bool {
		return b2.AuthorizeTopic(as(t, "app"), topic, ActionConsume) == nil
	})
}

func TestWithoutAuthorizationEveryRequestIsAllowed(t *testing.T) {
	b := newBroker(t, newStores(t))
	if err := b.AuthorizeCluster(as(t, "")); err != nil {
		t.Fatal(err)
	}
}

func TestGrantsAndRolesAreChecked(t *testing.T) {
	b := newBroker(t, newStores(t), withAuthz)
	ns := mustNamespace(t, b, "acme/iot", NamespaceOptions{})
	for _, role := range []string{"", "a\x00b", string(make([]byte, maxRoleLen+1))} {
		if err := b.SetNamespacePermission(ctxT(t), ns, role, ActionConsume); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("role %q: %v, want ErrInvalidArgument", role, err)
		}
	}
	if err := b.CreateTenant(ctxT(t), "bad", []string{"x\ny"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("tenant admin role with a newline: %v", err)
	}
	if _, err := ParseActions([]string{"produce", "fly"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ParseActions(fly): %v", err)
	}
	if a, err := ParseActions([]string{"Produce", " consume"}); err != nil || a != ActionProduce|ActionConsume {
		t.Errorf("ParseActions = %v, %v", a, err)
	}
	if c := (AuthzConfig{Enabled: true}); c.Validate() == nil {
		t.Error("authorization without a superuser validated")
	}
}

// Kafka's CreateAcls and DeleteAcls change one action of a grant each:
// changes made at once are all kept, none lost to another's write.
func TestConcurrentPermissionChangesAreAllKept(t *testing.T) {
	b := newBroker(t, newStores(t), withAuthz)
	ns := mustNamespace(t, b, "acme/iot", NamespaceOptions{})
	var wg sync.WaitGroup
	for _, a := range []Action{ActionProduce, ActionConsume, ActionAdmin} {
		wg.Go(func() {
			if err := b.ChangeNamespacePermission(ctxT(t), ns, "app", func(cur Action) Action { return cur | a }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p, err := b.NamespacePermissions(ctxT(t), ns); err != nil || p["app"] != ActionAll {
		t.Fatalf("after three concurrent additions: %v, %v; want all three actions", p, err)
	}
}
