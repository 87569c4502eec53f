package kafka

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

func metadataFor(t *testing.T, c *rawConn, version int16, allowAuto bool, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	req.AllowAutoTopicCreation = allowAuto
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return c.roundTrip(req).(*kmsg.MetadataResponse)
}

func TestMetadataAdvertisesThisBrokerAsLeaderOfEveryPartition(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.AdvertisedAddr = "kafka.example:19092" })
	c := ts.dial(t)
	createTopic(t, c, "three", 3)
	for _, v := range []int16{0, 1, 4, 9, 12} {
		m := metadataFor(t, c, v, false, "three")
		if len(m.Brokers) != 1 || m.Brokers[0].Host != "kafka.example" || m.Brokers[0].Port != 19092 {
			t.Fatalf("v%d: brokers %+v", v, m.Brokers)
		}
		if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 || len(m.Topics[0].Partitions) != 3 {
			t.Fatalf("v%d: topics %+v", v, m.Topics)
		}
		for _, p := range m.Topics[0].Partitions {
			if p.Leader != m.Brokers[0].NodeID || len(p.Replicas) != 1 || len(p.ISR) != 1 {
				t.Fatalf("v%d: partition %+v", v, p)
			}
		}
	}
}

func TestMetadataAutoCreatesWhenConfiguredAndAllowed(t *testing.T) {
	t.Parallel()
	on := newTestServer(t, func(c *Config) { c.DefaultPartitions = 2 })
	c := on.dial(t)
	if m := metadataFor(t, c, 12, false, "notyet"); m.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto creation not allowed by the request: error %d", m.Topics[0].ErrorCode)
	}
	m := metadataFor(t, c, 12, true, "auto")
	if m.Topics[0].ErrorCode != 0 || len(m.Topics[0].Partitions) != 2 {
		t.Fatalf("auto-created: error %d, %d partitions; want 2", m.Topics[0].ErrorCode, len(m.Topics[0].Partitions))
	}
	if m := metadataFor(t, c, 3, false, "old-client"); m.Topics[0].ErrorCode != 0 {
		t.Fatalf("before v4 requests always allow auto creation: error %d", m.Topics[0].ErrorCode)
	}
	if m := metadataFor(t, c, 12, true, "bad/name"); m.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name: error %d", m.Topics[0].ErrorCode)
	}

	off := newTestServer(t, func(c *Config) { c.AutoCreateTopics = false })
	if m := metadataFor(t, off.dial(t), 12, true, "auto"); m.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto creation disabled: error %d", m.Topics[0].ErrorCode)
	}

	// The namespace's policy turns it off for Kafka clients too.
	ns, err := broker.ParseNamespaceName(on.s.cfg.DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := on.b.SetNamespacePolicies(ctxT(t), ns, broker.PolicyUpdate{Set: &catalogpb.Policies{
		AutoTopicCreation: catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_DISABLED}}); err != nil {
		t.Fatal(err)
	}
	if m := metadataFor(t, c, 12, true, "not-in-this-namespace"); m.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto creation off for the namespace: error %d", m.Topics[0].ErrorCode)
	}
}

func TestTopicsOfTheNamespaceAreKafkaTopicsWhoeverCreatedThem(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.DefaultNamespace = "acme/kafka" })
	ctx := ctxT(t)
	if err := ts.b.EnsureNamespace(ctx, broker.NamespaceName{Tenant: "acme", Namespace: "other"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"acme/kafka/native-made", "acme/other/elsewhere"} {
		name, err := broker.ParseTopicName(n, "x/y")
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.b.CreateTopic(ctx, name, 2); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.dial(t)
	createTopic(t, c, "kafka-made", 1)
	for _, v := range []int16{0, 12} {
		var all []string
		var topics []string
		if v == 0 {
			topics = []string{} // v0: an empty list means every topic
		}
		for _, tp := range metadataFor(t, c, v, false, topics...).Topics {
			all = append(all, *tp.Topic)
		}
		if len(all) != 2 || all[0] != "kafka-made" || all[1] != "native-made" {
			t.Fatalf("v%d: Kafka sees %v, want [kafka-made native-made]", v, all)
		}
	}
	name, _ := broker.ParseTopicName("acme/kafka/kafka-made", "x/y")
	if info, err := ts.b.Topic(ctx, name, false); err != nil || info.Partitions != 1 {
		t.Fatalf("the broker sees the Kafka topic as %+v, %v", info, err)
	}
}

func TestCreateTopicsErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "exists", 1)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	for _, tc := range []struct {
		name       string
		partitions int32
	}{{"exists", 1}, {"zero", 0}, {"bad/name", 1}, {"dup", 1}, {"dup", 1}, {"defaulted", -1}} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tc.name, tc.partitions, -1
		req.Topics = append(req.Topics, rt)
	}
	resp := c.roundTrip(req).(*kmsg.CreateTopicsResponse)
	want := []*kerr.Error{kerr.TopicAlreadyExists, kerr.InvalidPartitions, kerr.InvalidTopicException, kerr.InvalidRequest, kerr.InvalidRequest, nil}
	for i, rt := range resp.Topics {
		code := int16(0)
		if want[i] != nil {
			code = want[i].Code
		}
		if rt.ErrorCode != code {
			t.Errorf("%s: error %d, want %d", rt.Topic, rt.ErrorCode, code)
		}
	}
	if d := resp.Topics[5]; d.NumPartitions != 1 || d.ReplicationFactor != 1 {
		t.Errorf("defaults: %d partitions, replication factor %d; want 1 and 1", d.NumPartitions, d.ReplicationFactor)
	}
	req.ValidateOnly = true
	req.Topics = req.Topics[5:]
	req.Topics[0].Topic = "validated"
	if code := c.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("validate only: error %d", code)
	}
	if m := metadataFor(t, c, 12, false, "validated"); m.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatal("validate_only created the topic")
	}
}

func TestDeleteTopics(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "doomed", 2)
	for _, v := range []int16{0, 6} {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = v
		req.TopicNames = []string{"doomed", "never"}
		for _, n := range req.TopicNames {
			dt := kmsg.NewDeleteTopicsRequestTopic()
			dt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, dt)
		}
		resp := c.roundTrip(req).(*kmsg.DeleteTopicsResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		if v == 0 && resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("v0: deleting doomed: error %d", resp.Topics[0].ErrorCode)
		}
		createTopic(t, c, "doomed", 2)
	}
}

func TestCreatePartitionsGrowsATopic(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "growing", 1)
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = 3
	for _, n := range []int32{3, 1} {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "growing", n
		req.Topics = []kmsg.CreatePartitionsRequestTopic{rt}
		code := c.roundTrip(req).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode
		if want := map[int32]int16{3: 0, 1: kerr.InvalidPartitions.Code}[n]; code != want {
			t.Fatalf("to %d partitions: error %d, want %d", n, code, want)
		}
	}
	if m := metadataFor(t, c, 12, false, "growing"); len(m.Topics[0].Partitions) != 3 {
		t.Fatalf("%d partitions after growing to 3", len(m.Topics[0].Partitions))
	}
	if code, _ := produceCode(t, c, produceRequest(t, "growing", 2, -1, batchOf(t, 1))); code != 0 {
		t.Fatalf("producing to a new partition: error %d", code)
	}
}

func TestDescribeConfigsOfTopicsAndTheBroker(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "configured", 1)
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.IncludeDocumentation = true
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "configured"}, {kmsg.ConfigResourceTypeTopic, "nope"}, {kmsg.ConfigResourceTypeBroker, strconv.Itoa(nodeID)}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		req.Resources = append(req.Resources, rr)
	}
	req.Resources[0].ConfigNames = []string{"max.message.bytes"}
	resp := c.roundTrip(req).(*kmsg.DescribeConfigsResponse)
	if r := resp.Resources[0]; r.ErrorCode != 0 || len(r.Configs) != 1 || *r.Configs[0].Value != strconv.Itoa(DefaultConfig().MaxMessageBytes) {
		t.Fatalf("topic: %+v", r)
	}
	if r := resp.Resources[1]; r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: error %d", r.ErrorCode)
	}
	if r := resp.Resources[2]; r.ErrorCode != 0 || len(r.Configs) == 0 {
		t.Fatalf("broker: %+v", r)
	}
}
