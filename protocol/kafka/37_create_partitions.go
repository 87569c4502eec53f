package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// CreatePartitions, versions 0-3 (2 and later are flexible): raises a
// topic's partition count; the new partitions are empty and, like every
// partition, led by this broker, so assignments are ignored. A count that
// does not grow the topic is INVALID_PARTITIONS. It needs admin on the
// topic.

func (c *conn) handleCreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := requestContext(ctx, req.TimeoutMillis)
	defer cancel()
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		err := c.createPartitions(ctx, t.Topic, t.Count, req.ValidateOnly)
		rt.ErrorCode = kafkaCode(err)
		if err != nil {
			msg := err.Error()
			rt.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *conn) createPartitions(ctx context.Context, kafkaName string, count int32, validateOnly bool) error {
	name, err := c.authorizedTopic(ctx, kafkaName, broker.ActionAdmin)
	if err != nil {
		return err
	}
	if validateOnly {
		info, err := c.s.b.Topic(ctx, name, false)
		if err != nil {
			return err
		}
		if count <= info.Partitions || count > broker.MaxPartitions {
			return fmt.Errorf("%w: %s has %d partitions, asked for %d", kafkaCodeError(kerr.InvalidPartitions.Code), kafkaName, info.Partitions, count)
		}
		return nil
	}
	err = c.s.b.AddPartitions(ctx, name, count)
	if errors.Is(err, broker.ErrInvalidArgument) {
		return fmt.Errorf("%w: %w", kafkaCodeError(kerr.InvalidPartitions.Code), err)
	}
	return err
}
