package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// DeleteTopics, versions 0-6 (4 and later are flexible). Versions 0-5 name
// topics; version 6 may name them by ID, which is not kept: a topic asked
// for by ID only is UNKNOWN_TOPIC_ID. Deleting a topic removes its data
// and its subscriptions, whichever protocol created them. It needs admin
// on the topic.

func (c *conn) handleDeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := requestContext(ctx, req.TimeoutMillis)
	defer cancel()
	names := make([]*string, 0, len(req.TopicNames)+len(req.Topics))
	ids := make([][16]byte, 0, cap(names))
	if req.Version < 6 {
		for i := range req.TopicNames {
			names = append(names, &req.TopicNames[i])
			ids = append(ids, [16]byte{})
		}
	} else {
		for _, t := range req.Topics {
			names = append(names, t.Topic)
			ids = append(ids, t.TopicID)
		}
	}
	for i, n := range names {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = n, ids[i]
		var err error
		if n == nil {
			err = kafkaCodeError(kerr.UnknownTopicID.Code)
		} else if name, perr := c.authorizedTopic(ctx, *n, broker.ActionAdmin); perr != nil {
			err = perr
		} else {
			err = c.s.b.DeleteTopic(ctx, name)
		}
		rt.ErrorCode = kafkaCode(err)
		if err != nil && req.Version >= 5 {
			msg := err.Error()
			rt.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
