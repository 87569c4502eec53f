package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
)

// authzBroker is a broker configuration with authorization on and one
// superuser, "admin".
func authzBroker() broker.Config {
	c := broker.DefaultConfig()
	c.Authorization = broker.AuthzConfig{Enabled: true, SuperUserRoles: "admin"}
	return c
}

// newAuthzServer is a server with authorization on and PLAIN users admin
// (a superuser), alice, bob and carol, each with the password
// "<name>-pw". Topic "a" exists, and alice may produce on it; topic "b"
// exists, with no grant; carol may consume on the whole namespace; bob has
// no grant.
func newAuthzServer(t *testing.T, mutate ...func(*Config)) *testServer {
	t.Helper()
	ts := newTestServerOn(t, authzBroker(), nil, append([]func(*Config){func(c *Config) {
		c.SASLMechanisms = "PLAIN"
		c.SASLUsers = "admin:admin-pw,alice:alice-pw,bob:bob-pw,carol:carol-pw"
	}}, mutate...)...)
	ctx := ctxT(t)
	for _, topic := range []string{"a", "b"} {
		if err := ts.b.CreateTopic(ctx, ts.topic(t, topic), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.b.SetTopicPermission(ctx, ts.topic(t, "a"), "alice", broker.ActionProduce); err != nil {
		t.Fatal(err)
	}
	ns, err := ts.s.namespace()
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.b.SetNamespacePermission(ctx, ns, "carol", broker.ActionConsume); err != nil {
		t.Fatal(err)
	}
	return ts
}

// topic is the broker name of a Kafka topic.
func (ts *testServer) topic(t testing.TB, kafkaName string) broker.TopicName {
	t.Helper()
	name, err := ts.s.topicName(kafkaName)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// userClient is a franz-go client logged in as user with PLAIN.
func userClient(t *testing.T, ts *testServer, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, ts, append([]kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: user + "-pw"}.AsMechanism()),
		kgo.RecordDeliveryTimeout(15 * time.Second)}, opts...)...)
}

// brokerRequest sends req to the server as cl's user, as is: no
// coordinator lookup, no sharding.
func brokerRequest(t *testing.T, cl *kgo.Client, req kmsg.Request) kmsg.Response {
	t.Helper()
	resp, err := cl.SeedBrokers()[0].Request(ctxT(t), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// endOffset is the high watermark of a Kafka topic's partition 0.
func endOffset(t *testing.T, ts *testServer, topic string) int64 {
	t.Helper()
	_, end, err := ts.b.PartitionOffsets(ctxT(t), ts.topic(t, topic), 0)
	if err != nil {
		t.Fatal(err)
	}
	return end
}

func TestProduceNeedsProduceOnTheTopic(t *testing.T) {
	t.Parallel()
	ts := newAuthzServer(t)
	ctx := ctxT(t)
	// alice's franz-go producer is idempotent: its producer ID is allowed
	// by her grant on one topic (KIP-679).
	alice := userClient(t, ts, "alice")
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("from alice")}).FirstErr(); err != nil {
		t.Fatalf("alice produces on a: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "b", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produces on b: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	bob := userClient(t, ts, "bob", kgo.DisableIdempotentWrite())
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("from bob")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob produces on a: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// carol, who may consume everything and produce nothing, gets no
	// producer ID.
	carol := userClient(t, ts, "carol")
	if err := carol.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("from carol")}).FirstErr(); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("carol's idempotent producer: %v, want CLUSTER_AUTHORIZATION_FAILED (no producer ID)", err)
	}
	// Sent anyway, bob's batch is refused per partition and not stored.
	resp := brokerRequest(t, bob, produceRequest(t, "a", 0, -1, batchOf(t, 1))).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob's raw produce: code %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}
	if end := endOffset(t, ts, "a"); end != 1 {
		t.Fatalf("a holds %d records, want alice's 1", end)
	}
}

func TestMetadataListsOnlyTopicsThePrincipalMaySee(t *testing.T) {
	t.Parallel()
	ts := newAuthzServer(t)
	ctx := ctxT(t)
	listed := func(user string) []string {
		td, err := kadm.NewClient(userClient(t, ts, user)).ListTopics(ctx)
		if err != nil {
			t.Fatalf("%s lists topics: %v", user, err)
		}
		return td.Names()
	}
	for user, want := range map[string][]string{"admin": {"a", "b"}, "alice": {"a"}, "carol": {"a", "b"}, "bob": {}} {
		if got := listed(user); !slices.Equal(got, want) {
			t.Errorf("%s sees %v, want %v", user, got, want)
		}
	}

	// Named, a topic bob may not see is TOPIC_AUTHORIZATION_FAILED whether
	// it exists or not: its existence is not told.
	bob := userClient(t, ts, "bob")
	carol := userClient(t, ts, "carol")
	named := func(cl *kgo.Client, topic string) int16 {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics, req.AllowAutoTopicCreation = append(req.Topics, rt), true
		return brokerRequest(t, cl, req).(*kmsg.MetadataResponse).Topics[0].ErrorCode
	}
	for _, topic := range []string{"a", "missing"} {
		if code := named(bob, topic); code != kerr.TopicAuthorizationFailed.Code {
			t.Errorf("bob names %s: code %d, want TOPIC_AUTHORIZATION_FAILED", topic, code)
		}
	}
	// carol may see every topic but not create one: produce or admin on
	// the namespace is needed to auto-create.
	if code := named(carol, "a"); code != 0 {
		t.Errorf("carol names a: code %d", code)
	}
	if code := named(carol, "missing"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("carol auto-creates: code %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}
	if code := named(userClient(t, ts, "admin"), "created"); code != 0 {
		t.Errorf("admin auto-creates: code %d", code)
	}
	if _, err := ts.b.Topic(ctx, ts.topic(t, "missing"), false); !errors.Is(err, broker.ErrTopicNotFound) {
		t.Fatalf("the topic carol named was created: %v", err)
	}
}

// carol, who may consume on the namespace, reads alice's records in a
// consumer group; alice, who may only produce, can neither fetch them nor
// use a group, and bob sees no group.
func TestConsumingNeedsConsumeAndGroupsNeedConsumeOnTheNamespace(t *testing.T) {
	t.Parallel()
	ts := newAuthzServer(t)
	ctx := ctxT(t)
	alice := userClient(t, ts, "alice")
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	resp := brokerRequest(t, alice, fetchRequest("a", 0, 0)).(*kmsg.FetchResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice fetches a: code %d, want TOPIC_AUTHORIZATION_FAILED", code)
	}

	carol := userClient(t, ts, "carol", kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("a"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := carol.PollFetches(ctx)
	if err := fs.Err(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "v" {
		t.Fatalf("carol's group read %d records: %v", fs.NumRecords(), err)
	}
	if err := carol.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("carol commits: %v", err)
	}

	aliceGroup := userClient(t, ts, "alice", kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("a"))
	fs = aliceGroup.PollFetches(ctx)
	if err := fs.Err(); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("alice joins a group: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	groups, err := kadm.NewClient(userClient(t, ts, "bob")).ListGroups(ctx)
	if err != nil || len(groups) != 0 {
		t.Fatalf("bob lists groups %v (%v), want none", groups.Groups(), err)
	}
}

// authzCase is one API sent by a principal without grants: the request,
// the codes of its answer, and the codes a refusal answers.
type authzCase struct {
	req   func(t *testing.T) kmsg.Request
	codes func(kmsg.Response) []int16
	want  []int16
}

var (
	topicDenied   = kerr.TopicAuthorizationFailed.Code
	groupDenied   = kerr.GroupAuthorizationFailed.Code
	clusterDenied = kerr.ClusterAuthorizationFailed.Code
)

// openAPIs need no grant: a client needs them to log in and to find the
// brokers.
var openAPIs = []kmsg.Key{kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate, kmsg.DescribeCluster}

// authzCases has a case for every API served but the open ones.
var authzCases = map[kmsg.Key]authzCase{
	kmsg.Produce: {
		req: func(t *testing.T) kmsg.Request { return produceRequest(t, "a", 0, -1, batchOf(t, 1)) },
		codes: func(r kmsg.Response) []int16 {
			return []int16{r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode}
		},
		want: []int16{topicDenied},
	},
	kmsg.Fetch: {
		req: func(*testing.T) kmsg.Request { return fetchRequest("a", 0, 0) },
		codes: func(r kmsg.Response) []int16 {
			return []int16{r.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode}
		},
		want: []int16{topicDenied},
	},
	kmsg.ListOffsets: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "a"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = 0, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		},
		codes: func(r kmsg.Response) []int16 {
			return []int16{r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode}
		},
		want: []int16{topicDenied},
	},
	kmsg.Metadata: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("a")
			req.Topics = append(req.Topics, rt)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.MetadataResponse).Topics[0].ErrorCode} },
		want:  []int16{topicDenied},
	},
	kmsg.OffsetCommit: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Group, req.Generation = "g", -1
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = "a"
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		},
		codes: func(r kmsg.Response) []int16 {
			return []int16{r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode}
		},
		want: []int16{groupDenied},
	},
	kmsg.OffsetFetch: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrOffsetFetchRequest()
			g := kmsg.NewOffsetFetchRequestGroup()
			g.Group = "g"
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = "a", []int32{0}
			g.Topics = append(g.Topics, gt)
			req.Groups = append(req.Groups, g)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode} },
		want:  []int16{groupDenied},
	},
	kmsg.FindCoordinator: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey, req.CoordinatorKeys = "g", []string{"g"}
			return req
		},
		codes: func(r kmsg.Response) []int16 {
			return []int16{r.(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode}
		},
		want: []int16{groupDenied},
	},
	kmsg.JoinGroup: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = "g", 10_000, 10_000, "consumer"
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "range", []byte{}
			req.Protocols = append(req.Protocols, p)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.JoinGroupResponse).ErrorCode} },
		want:  []int16{groupDenied},
	},
	kmsg.Heartbeat: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.Generation, req.MemberID = "g", 1, "m"
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.HeartbeatResponse).ErrorCode} },
		want:  []int16{groupDenied},
	},
	kmsg.LeaveGroup: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group, req.MemberID = "g", "m"
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = "m"
			req.Members = append(req.Members, m)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.LeaveGroupResponse).ErrorCode} },
		want:  []int16{groupDenied},
	},
	kmsg.SyncGroup: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.Generation, req.MemberID = "g", 1, "m"
			req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.SyncGroupResponse).ErrorCode} },
		want:  []int16{groupDenied},
	},
	kmsg.DescribeGroups: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"g"}
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode} },
		want:  []int16{groupDenied},
	},
	kmsg.ListGroups: { // as on Kafka, the groups one may not see are left out
		req: func(*testing.T) kmsg.Request { return kmsg.NewPtrListGroupsRequest() },
		codes: func(r kmsg.Response) []int16 {
			resp := r.(*kmsg.ListGroupsResponse)
			return []int16{resp.ErrorCode, int16(len(resp.Groups))}
		},
		want: []int16{0, 0},
	},
	kmsg.CreateTopics: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "c", 1, 1
			req.Topics = append(req.Topics, rt)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode} },
		want:  []int16{topicDenied},
	},
	kmsg.DeleteTopics: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TopicNames = []string{"a"}
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr("a")
			req.Topics = append(req.Topics, rt)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode} },
		want:  []int16{topicDenied},
	},
	kmsg.InitProducerID: {
		req:   func(*testing.T) kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() },
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.InitProducerIDResponse).ErrorCode} },
		want:  []int16{clusterDenied},
	},
	kmsg.DescribeACLs: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.DescribeACLsResponse).ErrorCode} },
		want:  []int16{clusterDenied},
	},
	kmsg.CreateACLs: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrCreateACLsRequest()
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.Principal, c.Host = kmsg.ACLResourceTypeTopic, "a", "User:bob", "*"
			c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, c)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode} },
		want:  []int16{clusterDenied},
	},
	kmsg.DeleteACLs: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrDeleteACLsRequest()
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode} },
		want:  []int16{clusterDenied},
	},
	kmsg.DescribeConfigs: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeConfigsRequest()
			for _, r := range []struct {
				typ  kmsg.ConfigResourceType
				name string
			}{{kmsg.ConfigResourceTypeTopic, "a"}, {kmsg.ConfigResourceTypeBroker, "0"}} {
				rr := kmsg.NewDescribeConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = r.typ, r.name
				req.Resources = append(req.Resources, rr)
			}
			return req
		},
		codes: func(r kmsg.Response) []int16 {
			resp := r.(*kmsg.DescribeConfigsResponse)
			return []int16{resp.Resources[0].ErrorCode, resp.Resources[1].ErrorCode}
		},
		want: []int16{topicDenied, clusterDenied},
	},
	kmsg.CreatePartitions: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "a", 2
			req.Topics = append(req.Topics, rt)
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode} },
		want:  []int16{topicDenied},
	},
	kmsg.DeleteGroups: {
		req: func(*testing.T) kmsg.Request {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{"g"}
			return req
		},
		codes: func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode} },
		want:  []int16{groupDenied},
	},
}

// Every API the server serves is refused to bob, who has no grant, with
// the code Kafka gives; a new API without an authorization case fails
// here. The same requests from the superuser are not refused, so each
// refusal is authorization's.
func TestEveryServedAPIRefusesAPrincipalWithoutGrants(t *testing.T) {
	t.Parallel()
	for _, v := range supported {
		_, ok := authzCases[kmsg.Key(v.key)]
		if open := slices.Contains(openAPIs, kmsg.Key(v.key)); ok == open {
			t.Errorf("%s: want exactly one of an authorization case or a place in openAPIs", kmsg.NameForKey(v.key))
		}
	}
	ts := newAuthzServer(t)
	// A group exists, so that listing it could show it.
	admin := userClient(t, ts, "admin")
	if err := kadm.NewClient(admin).CommitAllOffsets(ctxT(t), "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "a", Partition: 0, Offset: 0})); err != nil {
		t.Fatal(err)
	}
	keys := make([]kmsg.Key, 0, len(authzCases))
	for k := range authzCases {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bob := userClient(t, ts, "bob")
	for _, k := range keys {
		c := authzCases[k]
		if got := c.codes(brokerRequest(t, bob, c.req(t))); !slices.Equal(got, c.want) {
			t.Errorf("bob's %s: codes %v, want %v", kmsg.NameForKey(int16(k)), got, c.want)
		}
	}
	dc := brokerRequest(t, bob, kmsg.NewPtrDescribeClusterRequest()).(*kmsg.DescribeClusterResponse)
	if dc.ErrorCode != 0 || len(dc.Brokers) != 1 {
		t.Errorf("bob's DescribeCluster: code %d, %d brokers", dc.ErrorCode, len(dc.Brokers))
	}
	for _, k := range keys {
		c := authzCases[k]
		for _, code := range c.codes(brokerRequest(t, admin, c.req(t))) {
			if code == topicDenied || code == groupDenied || code == clusterDenied {
				t.Errorf("the superuser's %s was refused: code %d", kmsg.NameForKey(int16(k)), code)
			}
		}
	}
}

// On the TLS listener with client certificates and no SASL, a verified
// certificate's common name is the role.
func TestClientCertificateIsThePrincipalOnTheTLSListener(t *testing.T) {
	t.Parallel()
	ca, certFile, keyFile, caFile := tlsFiles(t)
	ts := newTestServerOn(t, authzBroker(), nil, func(c *Config) {
		c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = certFile, keyFile, caFile
	})
	ctx := ctxT(t)
	a := ts.topic(t, "a")
	if err := ts.b.CreateTopic(ctx, a, 1); err != nil {
		t.Fatal(err)
	}
	if err := ts.b.SetTopicPermission(ctx, a, "alice", broker.ActionProduce); err != nil {
		t.Fatal(err)
	}
	tlsAddr := ts.serveTLS(t)
	client := func(cn string) *kgo.Client {
		return newClient(t, &testServer{addr: tlsAddr}, kgo.DialTLSConfig(ca.clientTLS(t, cn)),
			kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(15*time.Second))
	}
	if err := client("alice").ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("alice's certificate: %v", err)
	}
	if err := client("bob").ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob's certificate: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// On the plain-text listener the same client is anonymous.
	anon := newClient(t, ts, kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(15*time.Second))
	if err := anon.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("anonymous: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if end := endOffset(t, ts, "a"); end != 1 {
		t.Fatalf("a holds %d records, want alice's 1", end)
	}
}

// A role granted on namespace y/ns sees nothing of x/ns, the Kafka
// namespace, and may not use its topics; a role granted on x/ns may. (Over
// Kafka a client sees one namespace: the other is granted natively.)
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	ts := newTestServerOn(t, authzBroker(), nil, func(c *Config) {
		c.DefaultNamespace = "x/ns"
		c.SASLMechanisms = "PLAIN"
		c.SASLUsers = "xuser:xuser-pw,yuser:yuser-pw"
	})
	ctx := ctxT(t)
	x, y := broker.NamespaceName{Tenant: "x", Namespace: "ns"}, broker.NamespaceName{Tenant: "y", Namespace: "ns"}
	if err := ts.b.EnsureNamespace(ctx, y); err != nil {
		t.Fatal(err)
	}
	for _, name := range []broker.TopicName{ts.topic(t, "orders"), {Tenant: "y", Namespace: "ns", Topic: "orders"}} {
		if err := ts.b.CreateTopic(ctx, name, 1); err != nil {
			t.Fatal(err)
		}
	}
	for role, ns := range map[string]broker.NamespaceName{"xuser": x, "yuser": y} {
		if err := ts.b.SetNamespacePermission(ctx, ns, role, broker.ActionAll); err != nil {
			t.Fatal(err)
		}
	}
	// yuser's native grant lets it read y/ns/orders...
	yctx := auth.NewContext(ctx, auth.Principal{Role: "yuser", Method: auth.MethodToken})
	if err := ts.b.AuthorizeTopic(yctx, broker.TopicName{Tenant: "y", Namespace: "ns", Topic: "orders"}, broker.ActionConsume); err != nil {
		t.Fatal(err)
	}
	// ...but over Kafka, which serves x/ns, it sees, writes and reads nothing.
	yuser := userClient(t, ts, "yuser", kgo.DisableIdempotentWrite())
	yadm := kadm.NewClient(yuser)
	if td, err := yadm.ListTopics(ctx); err != nil || len(td) != 0 {
		t.Fatalf("yuser lists %v (%v), want nothing", td.Names(), err)
	}
	if err := yuser.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("yuser produces on x/ns/orders: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	resp := brokerRequest(t, yuser, fetchRequest("orders", 0, 0)).(*kmsg.FetchResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != topicDenied {
		t.Fatalf("yuser fetches x/ns/orders: code %d", code)
	}
	if _, err := yadm.DeleteTopic(ctx, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("yuser deletes x/ns/orders: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	xuser := userClient(t, ts, "xuser")
	if err := xuser.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("xuser produces on x/ns/orders: %v", err)
	}
	if td, err := kadm.NewClient(xuser).ListTopics(ctx); err != nil || !slices.Equal(td.Names(), []string{"orders"}) {
		t.Fatalf("xuser lists %v (%v)", td.Names(), err)
	}
}

func TestPrincipalOfAConnection(t *testing.T) {
	t.Parallel()
	c := &conn{auth: authState{done: true, user: "alice", mech: "SCRAM-SHA-256"}}
	if got, want := c.principal(), (auth.Principal{Role: "alice", Method: "sasl/SCRAM-SHA-256"}); got != want {
		t.Fatalf("principal %+v, want %+v", got, want)
	}
	ctx := (&conn{ctx: context.Background(), auth: authState{done: true, user: "bob", mech: "PLAIN"}}).withPrincipal()
	if p, ok := auth.FromContext(ctx); !ok || p.Role != "bob" || p.Method != "sasl/PLAIN" {
		t.Fatalf("the request context carries %+v, %v", p, ok)
	}
}

// testCA signs the TLS listener's certificate and clients'.
type testCA struct{ *authtest.CA }

// tlsFiles writes a server certificate and key, and the CA that signed it
// (which also verifies clients), and returns their files.
func tlsFiles(t *testing.T) (ca testCA, certFile, keyFile, caFile string) {
	t.Helper()
	ca = testCA{authtest.NewCA(t)}
	leaf := ca.Issue(t, "broker")
	dir := t.TempDir()
	certFile, keyFile, caFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	for file, data := range map[string][]byte{certFile: leaf.CertPEM, keyFile: leaf.KeyPEM, caFile: ca.CertPEM} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, certFile, keyFile, caFile
}

// clientTLS is the TLS configuration of a client with a certificate for
// commonName.
func (ca testCA) clientTLS(t *testing.T, commonName string) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.Issue(t, commonName).TLS}}
}

// serveTLS serves the TLS listener too and returns its address.
func (ts *testServer) serveTLS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ts.s.ServeTLS(ln) }()
	t.Cleanup(func() {
		ts.s.Close()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}
