package kafka

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// DescribeConfigs, versions 0-4 (4 is flexible), minimal: topics and this
// broker answer the handful of settings clients and tools look at, all
// read-only and at their defaults (AlterConfigs is not served). Other
// resource types are INVALID_REQUEST. Synonyms are not reported. A
// topic's settings need admin on it, the broker's a superuser.

type configEntry struct {
	name, value string
	typ         kmsg.ConfigType
	doc         string
}

func (c *conn) topicConfigs() []configEntry {
	return []configEntry{
		{"cleanup.policy", "delete", kmsg.ConfigTypeList, "Only delete: compaction is not supported yet."},
		{"compression.type", "producer", kmsg.ConfigTypeString, "Batches are stored as the producer compressed them."},
		{"max.message.bytes", strconv.Itoa(c.s.cfg.MaxMessageBytes), kmsg.ConfigTypeInt, "Largest record batch accepted."},
		{"message.timestamp.type", "CreateTime", kmsg.ConfigTypeString, "Timestamps are the producer's."},
		{"retention.ms", "-1", kmsg.ConfigTypeLong, "Retention is not enforced yet."},
		{"retention.bytes", "-1", kmsg.ConfigTypeLong, "Retention is not enforced yet."},
		{"min.insync.replicas", "1", kmsg.ConfigTypeInt, "Durability comes from the segment store's replication."},
	}
}

func (c *conn) brokerConfigs() []configEntry {
	return []configEntry{
		{"broker.id", strconv.Itoa(int(c.selfNode().id)), kmsg.ConfigTypeInt, "This broker's node ID."},
		{"auto.create.topics.enable", strconv.FormatBool(c.s.cfg.AutoCreateTopics), kmsg.ConfigTypeBoolean, "Metadata requests create missing topics."},
		{"num.partitions", strconv.Itoa(c.s.cfg.DefaultPartitions), kmsg.ConfigTypeInt, "Partitions of auto-created topics."},
		{"default.replication.factor", "1", kmsg.ConfigTypeShort, "Replication is the segment store's."},
		{"message.max.bytes", strconv.Itoa(c.s.cfg.MaxMessageBytes), kmsg.ConfigTypeInt, "Largest record batch accepted."},
		{"socket.request.max.bytes", strconv.Itoa(c.s.cfg.MaxRequestBytes), kmsg.ConfigTypeInt, "Largest request accepted."},
	}
}

func (c *conn) handleDescribeConfigs(ctx context.Context, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		var entries []configEntry
		var err error
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if _, err = c.topicPartitions(ctx, r.ResourceName, broker.ActionAdmin, false); err == nil {
				entries = c.topicConfigs()
			}
		case kmsg.ConfigResourceTypeBroker:
			if err = c.mayDescribeBroker(ctx); err != nil {
				break
			}
			if r.ResourceName != "" && r.ResourceName != strconv.Itoa(int(c.selfNode().id)) {
				err = fmt.Errorf("%w: no broker %q", kafkaCodeError(kerr.InvalidRequest.Code), r.ResourceName)
			} else {
				entries = c.brokerConfigs()
			}
		default:
			err = fmt.Errorf("%w: resource type %s is not described", kafkaCodeError(kerr.InvalidRequest.Code), r.ResourceType)
		}
		rr.ErrorCode = kafkaCode(err)
		if err != nil {
			msg := err.Error()
			rr.ErrorMessage = &msg
		}
		for _, e := range entries {
			if r.ConfigNames != nil && !slices.Contains(r.ConfigNames, e.name) {
				continue
			}
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name = e.name
			rc.Value = &e.value
			rc.ReadOnly = true
			rc.IsDefault = true
			rc.Source = kmsg.ConfigSourceDefaultConfig
			rc.ConfigType = e.typ
			if req.IncludeDocumentation {
				rc.Documentation = &e.doc
			}
			rr.Configs = append(rr.Configs, rc)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}
