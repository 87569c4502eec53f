package kafka

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// OffsetCommit, versions 2-8 (8 is flexible). A committed offset becomes
// the cursor of the subscription named after the group on that partition
// (broker.CommitOffset), durable before the response. A member commits
// with its generation; a commit with generation -1 and no member ID
// (kadm, tools) is allowed while the group has no members. The retention
// time of versions 2-4 is ignored: committed offsets live until the group
// or the topic is deleted. It needs the group and consume on each topic
// (authz.go).

// commitParallelism bounds the partitions of one request committed at
// once.
const commitParallelism = 16

func (c *conn) handleOffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	defer func() { // every return answers with codes
		for i, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}()
	failAll := func(code int16) kmsg.Response {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
		return resp
	}
	if req.Group == "" {
		return failAll(kerr.InvalidGroupID.Code)
	}
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	protocolType, code := c.s.co.commitCheck(req.Group, req.MemberID, instanceID, req.Generation)
	if code != 0 {
		return failAll(code)
	}

	type commit struct {
		i, j      int
		name      broker.TopicName
		partition int32
		c         broker.Committed
	}
	var commits []commit
	var topics []broker.TopicName
	var fulls []string
	for i, t := range req.Topics {
		name, partitions, err := c.kafkaTopic(ctx, t.Topic)
		if err == nil {
			topics, fulls = append(topics, name), append(fulls, name.String())
		}
		for j, p := range t.Partitions {
			switch {
			case err != nil:
				codes[i][j] = kafkaCode(err)
			case p.Partition < 0 || p.Partition >= partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case p.Metadata != nil && len(*p.Metadata) > broker.MaxCommitMetadata:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				cm := commit{i: i, j: j, name: name, partition: p.Partition, c: broker.Committed{Offset: p.Offset}}
				if p.Metadata != nil {
					cm.c.Metadata = *p.Metadata
				}
				commits = append(commits, cm)
			}
		}
	}
	if len(commits) == 0 {
		return resp
	}
	if missing := c.s.co.unrecordedTopics(req.Group, fulls); len(missing) > 0 {
		if err := c.s.b.AddGroupTopics(ctx, req.Group, protocolType, topics); err != nil {
			c.log.Warn("recording group topics", "group", req.Group, "err", err)
			return failAll(kafkaCode(err))
		}
		c.s.co.markRecorded(req.Group, fulls)
	}
	sem := make(chan struct{}, commitParallelism)
	var wg sync.WaitGroup
	for _, cm := range commits {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			codes[cm.i][cm.j] = kafkaCode(c.s.b.CommitOffset(ctx, cm.name, cm.partition, req.Group, cm.c))
		})
	}
	wg.Wait()
	return resp
}

// kafkaTopic maps a Kafka topic name, checks that the principal may
// consume it (committed offsets are a consumer's) and returns its
// partition count.
func (c *conn) kafkaTopic(ctx context.Context, kafkaName string) (broker.TopicName, int32, error) {
	name, err := c.authorizedTopic(ctx, kafkaName, broker.ActionConsume)
	if err != nil {
		return name, 0, err
	}
	info, err := c.s.b.Topic(ctx, name, false)
	if err != nil {
		return name, 0, fmt.Errorf("topic %q: %w", kafkaName, err)
	}
	return name, info.Partitions, nil
}
