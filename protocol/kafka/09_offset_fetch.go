package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// OffsetFetch, versions 1-8 (6 and later are flexible; 8 asks for several
// groups). A committed offset is the position of the subscription named
// after the group; a partition without one is answered with offset -1.
// A null topic list (version 2 and later) asks for every topic the group
// has committed offsets on, from the group's durable row. Transactions
// are not served, so RequireStable has nothing to wait for. It needs the
// group, and consume on each topic: a topic the principal may not consume
// is TOPIC_AUTHORIZATION_FAILED, or left out of "every topic".

// offsetQuery is one topic of an OffsetFetch; nil partitions: every
// partition with a committed offset.
type offsetQuery struct {
	topic      string
	partitions []int32
}

// committedOffset is one partition's answer.
type committedOffset struct {
	partition int32
	offset    int64
	metadata  string
	code      int16
}

type committedTopic struct {
	topic      string
	partitions []committedOffset
}

func (c *conn) handleOffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, g := range req.Groups {
			var qs []offsetQuery
			if g.Topics != nil {
				qs = make([]offsetQuery, 0, len(g.Topics))
				for _, t := range g.Topics {
					qs = append(qs, offsetQuery{t.Topic, t.Partitions})
				}
			}
			topics, code := c.committedOffsets(ctx, g.Group, qs)
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			for _, t := range topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.topic
				for _, p := range t.partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.ErrorCode = p.partition, p.offset, p.code
					rp.Metadata = &p.metadata
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}
	var qs []offsetQuery
	if req.Topics != nil || req.Version < 2 {
		qs = make([]offsetQuery, 0, len(req.Topics))
		for _, t := range req.Topics {
			qs = append(qs, offsetQuery{t.Topic, t.Partitions})
		}
	}
	topics, code := c.committedOffsets(ctx, req.Group, qs)
	resp.ErrorCode = code
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.topic
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.ErrorCode = p.partition, p.offset, p.code
			rp.Metadata = &p.metadata
			if code != 0 && rp.ErrorCode == 0 {
				rp.ErrorCode = code // version 1 has no group-level error
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// committedOffsets answers one group's queries; nil queries: every topic
// of the group (in the configured namespace) and every partition with a
// committed offset.
func (c *conn) committedOffsets(ctx context.Context, group string, qs []offsetQuery) ([]committedTopic, int16) {
	if group == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	all := qs == nil
	if all {
		info, ok, err := c.s.b.Group(ctx, group)
		if err != nil {
			return nil, kafkaCode(err)
		}
		if !ok {
			return nil, 0
		}
		for _, t := range info.Topics {
			if kafkaName, ok := c.s.kafkaName(t); ok {
				qs = append(qs, offsetQuery{topic: kafkaName})
			}
		}
	}
	out := make([]committedTopic, 0, len(qs))
	for _, q := range qs {
		ct := committedTopic{topic: q.topic}
		name, partitions, err := c.kafkaTopic(ctx, q.topic)
		if all {
			if err != nil {
				continue // deleted since the group committed to it, or not the principal's to see
			}
			for i := range partitions {
				q.partitions = append(q.partitions, i)
			}
		}
		for _, p := range q.partitions {
			res := committedOffset{partition: p, offset: -1}
			if errors.Is(err, broker.ErrPermissionDenied) {
				res.code = kafkaCode(err) // else an unknown topic is offset -1, as on Kafka
			}
			if err == nil && p >= 0 && p < partitions {
				cm, ok, err := c.s.b.CommittedOffset(ctx, name, p, group)
				switch {
				case err != nil:
					res.code = kafkaCode(err)
				case ok:
					res.offset, res.metadata = cm.Offset, cm.Metadata
				case all:
					continue
				}
			}
			ct.partitions = append(ct.partitions, res)
		}
		if !all || len(ct.partitions) > 0 {
			out = append(out, ct)
		}
	}
	return out, 0
}

// kafkaName is a topic's Kafka name: its topic part, if it is in the
// configured namespace.
func (s *Server) kafkaName(n broker.TopicName) (string, bool) {
	return n.Topic, n.NamespaceKey() == s.cfg.DefaultNamespace
}
