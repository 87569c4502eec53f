package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// CreateTopics, versions 0-7 (5 and later are flexible). A partition
// count of -1 (version 4 and later) takes the configured default; a
// replica assignment gives the count by its length. The replication
// factor is accepted and echoed (-1 as 1): durability is the segment
// store's replication, not brokers'. Topic configs are accepted and not
// applied yet. validate_only checks without creating. Topic IDs are not
// kept and are answered as zero. Creating a topic needs admin on it, that
// is on its namespace (authz.go).

func (c *conn) handleCreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := requestContext(ctx, req.TimeoutMillis)
	defer cancel()
	seen := make(map[string]int, len(req.Topics))
	for _, t := range req.Topics {
		seen[t.Topic]++
	}
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		partitions, rf := t.NumPartitions, t.ReplicationFactor
		if len(t.ReplicaAssignment) > 0 {
			partitions = int32(len(t.ReplicaAssignment))
			rf = int16(len(t.ReplicaAssignment[0].Replicas))
		}
		if partitions == -1 {
			partitions = int32(c.s.cfg.DefaultPartitions)
		}
		if rf == -1 {
			rf = 1
		}
		_, err := c.authorizedTopic(ctx, t.Topic, broker.ActionAdmin)
		switch {
		case seen[t.Topic] > 1:
			err = fmt.Errorf("%w: topic %q named more than once", kafkaCodeError(kerr.InvalidRequest.Code), t.Topic)
		case err != nil:
		case partitions < 1 || partitions > broker.MaxPartitions:
			err = fmt.Errorf("%w: %d partitions, want 1 to %d", kafkaCodeError(kerr.InvalidPartitions.Code), partitions, broker.MaxPartitions)
		case rf < 1:
			err = fmt.Errorf("%w: replication factor %d", kafkaCodeError(kerr.InvalidReplicationFactor.Code), rf)
		default:
			err = c.createTopic(ctx, t.Topic, partitions, req.ValidateOnly)
		}
		rt.ErrorCode = kafkaCode(err)
		if err != nil {
			msg := err.Error()
			rt.ErrorMessage = &msg
		} else {
			rt.NumPartitions, rt.ReplicationFactor = partitions, rf
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *conn) createTopic(ctx context.Context, kafkaName string, partitions int32, validateOnly bool) error {
	name, err := c.s.topicName(kafkaName)
	if err != nil {
		return err
	}
	if !validateOnly {
		return c.s.b.CreateTopic(ctx, name, partitions)
	}
	_, err = c.s.b.Topic(ctx, name, false)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s", broker.ErrTopicExists, name)
	case errors.Is(err, broker.ErrTopicNotFound):
		return nil
	}
	return err
}
