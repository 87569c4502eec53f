package kafka

import (
	"cmp"
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// Metadata, versions 0-12 (9 and later are flexible). Every live broker
// is listed; a partition's leader (and only replica) is the owner of its
// bundle (owners.go), and this broker is reported as the controller.
// A null topic list (an empty one in version 0) lists every topic of the
// configured namespace. A named topic that does not exist is created with
// the default partition count when auto creation is configured and the
// request allows it (always before version 4), else answered with
// UNKNOWN_TOPIC_OR_PARTITION. Topic IDs are not kept: they are answered
// as zero, and a topic asked for by ID only is UNKNOWN_TOPIC_ID. Only the
// topics the principal holds a grant on are listed or described
// (authz.go).

func (c *conn) handleMetadata(ctx context.Context, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, n := range c.clusterNodes(ctx) {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = n.id, n.host, n.port
		resp.Brokers = append(resp.Brokers, b)
	}
	cluster := clusterID
	resp.ClusterID = &cluster
	resp.ControllerID = c.selfNode().id

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		infos, err := c.s.b.ListTopics(ctx, c.s.cfg.DefaultNamespace)
		if err != nil {
			// No per-request error field: answer no topics, the client retries.
			c.log.Warn("listing topics for metadata", "err", err)
			return resp
		}
		for _, info := range infos {
			if err := c.s.b.AuthorizeTopic(ctx, info.Name, broker.ActionAll); err != nil {
				continue // only the topics the principal may see are listed
			}
			resp.Topics = append(resp.Topics, metadataTopicLed(info.Name.Topic, c.partitionLeaders(ctx, info.Name, info.Partitions)))
		}
		return resp
	}
	autoCreate := c.s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, t := range req.Topics {
		if t.Topic == nil {
			rt := metadataTopic("", 0, errUnknownTopicID)
			rt.Topic = nil
			rt.TopicID = t.TopicID
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		parts, err := c.topicPartitions(ctx, *t.Topic, broker.ActionAll, autoCreate)
		if err != nil {
			resp.Topics = append(resp.Topics, metadataTopic(*t.Topic, parts, err))
			continue
		}
		name, _ := c.s.topicName(*t.Topic) // parsed by topicPartitions
		resp.Topics = append(resp.Topics, metadataTopicLed(*t.Topic, c.partitionLeaders(ctx, name, parts)))
	}
	return resp
}

var errUnknownTopicID = kafkaCodeError(kerr.UnknownTopicID.Code)

// topicPartitions returns a Kafka topic's partition count, creating the
// topic first if asked to and it does not exist. The principal must hold
// one of need on the topic; creating it needs produce or admin on the
// namespace (TOPIC_AUTHORIZATION_FAILED otherwise, as on Kafka).
func (c *conn) topicPartitions(ctx context.Context, kafkaName string, need broker.Action, autoCreate bool) (int32, error) {
	name, err := c.authorizedTopic(ctx, kafkaName, need)
	if err != nil {
		return 0, err
	}
	for {
		info, err := c.s.b.Topic(ctx, name, false)
		if err == nil {
			return info.Partitions, nil
		}
		if !autoCreate || !errors.Is(err, broker.ErrTopicNotFound) {
			return 0, err
		}
		// The namespace's auto_topic_creation policy has the last word.
		if pol, perr := c.s.b.EffectivePolicies(ctx, name); perr != nil || !pol.AutoTopicCreation {
			return 0, cmp.Or(perr, err)
		}
		if err := c.authorizeNamespace(ctx, broker.ActionProduce|broker.ActionAdmin); err != nil {
			return 0, deniedAs(err, kerr.TopicAuthorizationFailed)
		}
		err = c.s.b.CreateTopic(ctx, name, int32(c.s.cfg.DefaultPartitions))
		if err != nil && !errors.Is(err, broker.ErrTopicExists) {
			return 0, err
		}
		autoCreate = false
	}
}

func metadataTopic(name string, partitions int32, err error) kmsg.MetadataResponseTopic {
	rt := kmsg.NewMetadataResponseTopic()
	rt.Topic = &name
	if err != nil {
		rt.ErrorCode = kafkaCode(err)
		return rt
	}
	rt.Partitions = make([]kmsg.MetadataResponseTopicPartition, partitions)
	for i := range rt.Partitions {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = int32(i)
		p.Leader = nodeID
		p.LeaderEpoch = 0
		p.Replicas = []int32{nodeID}
		p.ISR = []int32{nodeID}
		rt.Partitions[i] = p
	}
	return rt
}
