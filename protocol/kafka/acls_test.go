package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// newACLServer serves namespace acme/kafka, whose tenant's admin role is
// tadmin, with authorization on, PLAIN users admin (a superuser), tadmin,
// alice, bob and carol ("<name>-pw"), and topics orders and audit.
func newACLServer(t *testing.T) *testServer {
	t.Helper()
	ts := newTestServerOn(t, authzBroker(), func(b *broker.Broker) {
		if err := b.CreateTenant(ctxT(t), "acme", []string{"tadmin"}); err != nil {
			t.Fatal(err)
		}
	}, func(c *Config) {
		c.DefaultNamespace = "acme/kafka"
		c.SASLMechanisms = "PLAIN"
		c.SASLUsers = "admin:admin-pw,tadmin:tadmin-pw,alice:alice-pw,bob:bob-pw,carol:carol-pw"
	})
	for _, topic := range []string{"orders", "audit"} {
		if err := ts.b.CreateTopic(ctxT(t), ts.topic(t, topic), 1); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

// grantsOf is the grants stored on a Kafka topic, or on the namespace
// (topic "").
func (ts *testServer) grantsOf(t *testing.T, topic string) map[string]broker.Action {
	t.Helper()
	var p broker.Permissions
	var err error
	if topic == "" {
		var ns broker.NamespaceName
		if ns, err = ts.s.namespace(); err == nil {
			p, err = ts.b.NamespacePermissions(ctxT(t), ns)
		}
	} else {
		p, err = ts.b.TopicPermissions(ctxT(t), ts.topic(t, topic))
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// describeAll lists every ACL, one "TYPE name principal OPERATION" each.
func describeAll(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	res, err := adm.DescribeACLs(ctxT(t), kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations().
		ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("describe: %v %s", r.Err, r.ErrMessage)
		}
		for _, d := range r.Described {
			if d.Host != "*" || d.Permission != kmsg.ACLPermissionTypeAllow || d.Pattern != kadm.ACLPatternLiteral {
				t.Errorf("described %+v: want host *, ALLOW, LITERAL", d)
			}
			out = append(out, fmt.Sprintf("%s %s %s %s", d.Type, d.Name, d.Principal, d.Operation))
		}
	}
	slices.Sort(out)
	return out
}

func mustCreateACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(ctxT(t), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("creating %s %s %s %s: %v %s", r.Type, r.Name, r.Principal, r.Operation, r.Err, r.ErrMessage)
		}
	}
}

// ACLs created with kadm by a tenant admin become the broker's grants,
// grants made natively are listed as ACLs, and deleting ACLs revokes.
func TestACLsRoundTripToGrants(t *testing.T) {
	t.Parallel()
	ts := newACLServer(t)
	ctx := ctxT(t)
	adm := kadm.NewClient(userClient(t, ts, "tadmin"))

	// As kafka-acls --consumer and --producer create them.
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpRead, kadm.OpDescribe))
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:bob").Topics("").ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpWrite, kadm.OpDescribe, kadm.OpCreate))
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:carol").Groups("*").Operations(kadm.OpRead))
	if err := ts.b.SetTopicPermission(ctx, ts.topic(t, "audit"), "dave", broker.ActionAll); err != nil {
		t.Fatal(err)
	}

	if got, want := ts.grantsOf(t, "orders"), map[string]broker.Action{"alice": broker.ActionConsume}; !maps.Equal(got, want) {
		t.Errorf("grants on orders %v, want %v", got, want)
	}
	if got, want := ts.grantsOf(t, ""), map[string]broker.Action{"bob": broker.ActionProduce | broker.ActionAdmin, "carol": broker.ActionConsume}; !maps.Equal(got, want) {
		t.Errorf("grants on the namespace %v, want %v", got, want)
	}
	want := []string{
		"GROUP * User:carol READ",
		"TOPIC * User:bob ALTER",
		"TOPIC * User:bob WRITE",
		"TOPIC * User:carol READ",
		"TOPIC audit User:dave ALL",
		"TOPIC orders User:alice READ",
	}
	if got := describeAll(t, adm); !slices.Equal(got, want) {
		t.Errorf("described\n%q, want\n%q", got, want)
	}

	// The grants hold: bob creates and writes a topic, carol reads it in
	// a group, alice reads orders but not audit.
	bob := userClient(t, ts, "bob")
	if _, err := kadm.NewClient(bob).CreateTopic(ctx, 1, 1, nil, "events"); err != nil {
		t.Fatalf("bob creates a topic: %v", err)
	}
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("bob produces: %v", err)
	}
	carol := userClient(t, ts, "carol", kgo.ConsumerGroup("g"), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if fs := carol.PollFetches(ctx); fs.Err() != nil || fs.NumRecords() != 1 {
		t.Fatalf("carol's group read %d records: %v", fs.NumRecords(), fs.Err())
	}
	alice := userClient(t, ts, "alice")
	for topic, code := range map[string]int16{"orders": 0, "audit": topicDenied} {
		resp := brokerRequest(t, alice, fetchRequest(topic, 0, 0)).(*kmsg.FetchResponse)
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != code {
			t.Errorf("alice fetches %s: code %d, want %d", topic, got, code)
		}
	}

	// Deleting carol's GROUP * READ revokes her consume on the namespace
	// (its TOPIC * READ too: one grant); deleting every ACL of alice on
	// orders revokes hers.
	del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:carol").AllowHosts("*").Groups("*").Operations(kadm.OpRead))
	if err != nil || len(del) != 1 || del[0].Err != nil || len(del[0].Deleted) != 1 {
		t.Fatalf("deleting carol's group ACL: %+v %v", del, err)
	}
	del, err = adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations())
	if err != nil || len(del) != 1 || del[0].Err != nil || len(del[0].Deleted) != 1 || del[0].Deleted[0].Operation != kadm.OpRead {
		t.Fatalf("deleting alice's ACLs: %+v %v", del, err)
	}
	if got := ts.grantsOf(t, "orders"); len(got) != 0 {
		t.Errorf("grants on orders after the deletion: %v", got)
	}
	if got, want := ts.grantsOf(t, ""), map[string]broker.Action{"bob": broker.ActionProduce | broker.ActionAdmin}; !maps.Equal(got, want) {
		t.Errorf("grants on the namespace after the deletion %v, want %v", got, want)
	}
	// A CREATE filter matches the ACL listed as ALTER: both are admin.
	del, err = adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("*").Operations(kadm.OpCreate))
	if err != nil || len(del) != 1 || len(del[0].Deleted) != 1 || del[0].Deleted[0].Operation != kadm.OpAlter {
		t.Fatalf("deleting bob's CREATE: %+v %v", del, err)
	}
	want = []string{"TOPIC * User:bob WRITE", "TOPIC audit User:dave ALL"}
	if got := describeAll(t, adm); !slices.Equal(got, want) {
		t.Errorf("described after the deletions\n%q, want\n%q", got, want)
	}
}

// What has no grant to stand for is refused with INVALID_REQUEST and a
// message, and changes nothing.
func TestACLsWithoutAGrantToStandForAreRefused(t *testing.T) {
	t.Parallel()
	ts := newACLServer(t)
	adm := kadm.NewClient(userClient(t, ts, "admin"))
	tests := []struct {
		name string
		acl  *kadm.ACLBuilder
		want error
	}{
		{"a DENY", kadm.NewACLs().Deny("User:bob").Topics("orders").Operations(kadm.OpRead), kerr.InvalidRequest},
		{"a CLUSTER ACL", kadm.NewACLs().Allow("User:bob").Clusters().Operations(kadm.OpAlter), kerr.InvalidRequest},
		{"a group by name", kadm.NewACLs().Allow("User:bob").Groups("g").Operations(kadm.OpRead), kerr.InvalidRequest},
		{"a topic prefix", kadm.NewACLs().Allow("User:bob").Topics("ord").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead), kerr.InvalidRequest},
		{"a host", kadm.NewACLs().Allow("User:bob").AllowHosts("10.0.0.1").Topics("orders").Operations(kadm.OpRead), kerr.InvalidRequest},
		{"DESCRIBE alone", kadm.NewACLs().Allow("User:bob").Topics("orders").Operations(kadm.OpDescribe), kerr.InvalidRequest},
		{"the wildcard principal", kadm.NewACLs().Allow("User:*").Topics("orders").Operations(kadm.OpRead), kerr.InvalidRequest},
		{"another principal type", kadm.NewACLs().Allow("Group:ops").Topics("orders").Operations(kadm.OpRead), kerr.InvalidRequest},
		{"an operation of another resource", kadm.NewACLs().Allow("User:bob").Groups("*").Operations(kadm.OpWrite), kerr.InvalidRequest},
		{"idempotent write", kadm.NewACLs().Allow("User:bob").Topics("orders").Operations(kadm.OpIdempotentWrite), kerr.InvalidRequest},
		{"a transactional ID", kadm.NewACLs().Allow("User:bob").TransactionalIDs("tx").Operations(kadm.OpWrite), kerr.InvalidRequest},
		{"a topic that does not exist", kadm.NewACLs().Allow("User:bob").Topics("nope").Operations(kadm.OpRead), kerr.UnknownTopicOrPartition},
	}
	for _, tt := range tests {
		res, err := adm.CreateACLs(ctxT(t), tt.acl)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(res) != 1 || !errors.Is(res[0].Err, tt.want) || res[0].ErrMessage == "" {
			t.Errorf("%s: %+v, want %v with a message", tt.name, res, tt.want)
		}
	}
	if g, o := ts.grantsOf(t, ""), ts.grantsOf(t, "orders"); len(g) != 0 || len(o) != 0 {
		t.Fatalf("grants after refusals: namespace %v, orders %v", g, o)
	}
	// Deleting superusers is refused the same way.
	del, err := adm.DeleteACLs(ctxT(t), kadm.NewACLs().Allow().AllowHosts().Clusters().Operations())
	if err != nil || len(del) != 1 || !errors.Is(del[0].Err, kerr.InvalidRequest) {
		t.Fatalf("deleting CLUSTER ACLs: %+v %v", del, err)
	}
}

// Only superusers and the tenant's admins read or change ACLs; a role
// holding a grant does not.
func TestACLsAreForTenantAdmins(t *testing.T) {
	t.Parallel()
	ts := newACLServer(t)
	ctx := ctxT(t)
	if err := ts.b.SetTopicPermission(ctx, ts.topic(t, "orders"), "alice", broker.ActionAll); err != nil {
		t.Fatal(err)
	}
	acl := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("audit").Operations(kadm.OpRead)
	for _, user := range []string{"alice", "bob"} {
		adm := kadm.NewClient(userClient(t, ts, user))
		if res, err := adm.CreateACLs(ctx, acl); err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("%s creates an ACL: %+v %v, want CLUSTER_AUTHORIZATION_FAILED", user, res, err)
		}
		if res, err := adm.DescribeACLs(ctx, acl); !errors.Is(err, kerr.ClusterAuthorizationFailed) && (err != nil || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed)) {
			t.Errorf("%s describes ACLs: %+v %v, want CLUSTER_AUTHORIZATION_FAILED", user, res, err)
		}
		if res, err := adm.DeleteACLs(ctx, acl); err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("%s deletes ACLs: %+v %v, want CLUSTER_AUTHORIZATION_FAILED", user, res, err)
		}
	}
	mustCreateACLs(t, kadm.NewClient(userClient(t, ts, "admin")), acl)
	if got := ts.grantsOf(t, "audit"); got["alice"] != broker.ActionConsume {
		t.Fatalf("grants on audit: %v", got)
	}
}

// The ACL APIs at every version served, over a raw connection (version 0
// has no pattern type: LITERAL).
func TestACLAPIsAtEveryVersion(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t) // authorization off: anyone may manage grants
	ctx := context.Background()
	if err := ts.b.CreateTopic(ctx, ts.topic(t, "orders"), 1); err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t)
	for v := int16(0); v <= 3; v++ {
		role := fmt.Sprintf("r%d", v)
		cr := kmsg.NewPtrCreateACLsRequest()
		cr.Version = v
		creation := kmsg.NewCreateACLsRequestCreation()
		creation.ResourceType, creation.ResourceName, creation.Principal, creation.Host = kmsg.ACLResourceTypeTopic, "orders", "User:"+role, "*"
		creation.Operation, creation.PermissionType = kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow
		cr.Creations = append(cr.Creations, creation)
		if r := c.roundTrip(cr).(*kmsg.CreateACLsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != 0 {
			t.Fatalf("v%d create: %+v", v, r.Results)
		}
		dr := kmsg.NewPtrDescribeACLsRequest()
		dr.Version, dr.ResourceType, dr.ResourceName = v, kmsg.ACLResourceTypeTopic, kmsg.StringPtr("orders")
		dr.Principal, dr.Operation, dr.PermissionType = kmsg.StringPtr("User:"+role), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		r := c.roundTrip(dr).(*kmsg.DescribeACLsResponse)
		if r.ErrorCode != 0 || len(r.Resources) != 1 || len(r.Resources[0].ACLs) != 1 || r.Resources[0].ACLs[0].Operation != kmsg.ACLOperationWrite {
			t.Fatalf("v%d describe: %+v", v, r)
		}
		del := kmsg.NewPtrDeleteACLsRequest()
		del.Version = v
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourceName, f.Principal = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("orders"), kmsg.StringPtr("User:"+role)
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		del.Filters = append(del.Filters, f)
		if r := c.roundTrip(del).(*kmsg.DeleteACLsResponse); len(r.Results) != 1 || len(r.Results[0].MatchingACLs) != 1 {
			t.Fatalf("v%d delete: %+v", v, r.Results)
		}
	}
	if got := ts.grantsOf(t, "orders"); len(got) != 0 {
		t.Fatalf("grants left: %v", got)
	}
	// A filter with an UNKNOWN value is INVALID_REQUEST.
	dr := kmsg.NewPtrDescribeACLsRequest()
	dr.Version, dr.ResourceType = 3, kmsg.ACLResourceTypeUnknown
	if r := c.roundTrip(dr).(*kmsg.DescribeACLsResponse); r.ErrorCode != kerr.InvalidRequest.Code || r.ErrorMessage == nil {
		t.Fatalf("an UNKNOWN filter: %+v", r)
	}
}
