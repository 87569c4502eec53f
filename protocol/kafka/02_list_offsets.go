package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// ListOffsets, versions 1-7 (6 and later are flexible). Timestamp -1 is
// the high watermark (latest), -2 the log start (earliest), -3 (version 7)
// the record with the largest timestamp. A timestamp >= 0 finds the first
// record, in offset order, whose timestamp is at or after it: batches
// whose max timestamp is below it are skipped by their header, the batch
// that qualifies is decoded to find the exact record, as Kafka answers. No
// record: offset -1 and timestamp -1. There is no time index yet, so that
// search reads the partition's batch headers from the start. Isolation
// levels read the same (no transactions: the last stable offset is the
// high watermark); leader epochs are not checked and -1 is answered. A
// topic the principal may not consume is TOPIC_AUTHORIZATION_FAILED.

const (
	listLatest       = -1
	listEarliest     = -2
	listMaxTimestamp = -3
)

func (c *conn) handleListOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		name, nameErr := c.authorizedTopic(ctx, t.Topic, broker.ActionConsume)
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LeaderEpoch = -1
			offset, ts, err := int64(-1), int64(-1), nameErr
			if err == nil {
				offset, ts, err = c.listOffset(ctx, name, p.Partition, p.Timestamp, req.Version)
			}
			rp.ErrorCode = kafkaCode(err)
			if err == nil {
				rp.Offset, rp.Timestamp = offset, ts
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *conn) listOffset(ctx context.Context, name broker.TopicName, partition int32, ts int64, version int16) (offset, timestamp int64, err error) {
	switch {
	case ts == listLatest || ts == listEarliest:
		start, end, err := c.s.b.PartitionOffsets(ctx, name, partition)
		if err != nil {
			return 0, 0, err
		}
		if ts == listLatest {
			return end, -1, nil
		}
		return start, -1, nil
	case ts == listMaxTimestamp && version >= 7, ts >= 0:
		target := ts
		if ts == listMaxTimestamp {
			target = broker.MaxTimestamp
		}
		off, t, found, err := c.s.b.OffsetForTimestamp(ctx, name, partition, target)
		if err != nil {
			return 0, 0, err
		}
		if !found {
			return -1, -1, nil
		}
		return off, t, nil
	}
	return 0, 0, kafkaCodeError(kerr.InvalidRequest.Code)
}
