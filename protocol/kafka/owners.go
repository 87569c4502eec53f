package kafka

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// Brokers, leaders and coordinators.
//
// With bundle ownership (several brokers) every broker is a Kafka node:
// its node ID is its broker ID when that is a number, else a hash of it
// (nodeIDOf); its address is the
// Kafka address it registered. A partition's leader is the owner of the
// partition's bundle; produce and fetch to any other broker answer
// NOT_LEADER_OR_FOLLOWER (errmap: broker.ErrNotOwner), so clients refresh
// their metadata. A group's coordinator is the owner of the bundle that
// holds the group ID's hash in the system namespace GroupNamespace: one
// broker per group, moving with that bundle; group requests reaching
// another broker answer NOT_COORDINATOR. Committed offsets stay cursors of
// the partitions (broker.CommitOffset writes the cursor row itself when
// the coordinator does not own the partition).
//
// Without ownership (a broker not registered, as in unit tests) this
// broker is node 0 and leads and coordinates everything. TLS listeners
// advertise the other brokers' plain-text Kafka addresses: a cluster that
// serves Kafka over TLS needs the same TLS and plain-text ports on every
// broker (not yet registered separately).

// GroupNamespace is the namespace whose bundles place group coordinators.
const GroupNamespace = "magnetar/groups"

// nodeIDOf is the Kafka node ID of a broker: its ID if that is a
// non-negative decimal int32 (--broker.id 1 is node 1; a standalone is
// broker "0", node 0, as before ownership), else a non-negative hash of it.
func nodeIDOf(brokerID string) int32 {
	if brokerID == "" {
		return nodeID
	}
	if n, err := strconv.ParseInt(brokerID, 10, 32); err == nil && n >= 0 {
		return int32(n)
	}
	return int32(broker.KeyHash(brokerID) & 0x7fffffff)
}

// node is a Kafka node: ID, host and port.
type node struct {
	id   int32
	host string
	port int32
}

// selfNode is this broker, at the address of the listener the client came
// in on.
func (c *conn) selfNode() node {
	host, port := c.advertised()
	return node{nodeIDOf(c.s.b.ID()), host, port}
}

// nodeOf is the node of a partition or group owner.
func (c *conn) nodeOf(o broker.Owner) (node, bool) {
	if o.Self {
		return c.selfNode(), true
	}
	host, ps, err := net.SplitHostPort(o.KafkaAddr)
	if err != nil {
		return node{}, false
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return node{}, false
	}
	return node{nodeIDOf(o.ID), host, int32(port)}, true
}

// clusterNodes lists every live broker with a Kafka address (this one at
// the client's listener address).
func (c *conn) clusterNodes(ctx context.Context) []node {
	self := c.selfNode()
	if c.s.b.ID() == "" {
		return []node{self}
	}
	live, err := c.s.b.LiveBrokers(ctx)
	if err != nil {
		c.log.Warn("listing brokers for metadata", "err", err)
		return []node{self}
	}
	out := []node{self}
	for _, l := range live {
		if l.Self {
			continue
		}
		if n, ok := c.nodeOf(l.Owner); ok {
			out = append(out, n)
		}
	}
	return out
}

// partitionLeaders returns each partition's leader node (-1 when its owner
// has no Kafka address or cannot be found).
func (c *conn) partitionLeaders(ctx context.Context, name broker.TopicName, partitions int32) []node {
	out := make([]node, partitions)
	self := c.selfNode()
	if c.s.b.ID() == "" {
		for i := range out {
			out[i] = self
		}
		return out
	}
	byBundle := map[broker.Bundle]node{}
	for i := range partitions {
		bd, err := c.s.b.BundleOf(ctx, name, i)
		if err != nil {
			out[i] = node{id: -1}
			continue
		}
		n, ok := byBundle[bd]
		if !ok {
			o, err := c.s.b.Owner(ctx, name, i)
			if n, ok = c.nodeOf(o); err != nil || !ok {
				n = node{id: -1}
			}
			byBundle[bd] = n
		}
		out[i] = n
	}
	return out
}

// coordinator returns the node coordinating a group.
func (c *conn) coordinator(ctx context.Context, group string) (node, error) {
	if c.s.b.ID() == "" {
		return c.selfNode(), nil
	}
	o, err := c.s.b.KeyOwner(ctx, GroupNamespace, group)
	if err != nil {
		return node{}, err
	}
	n, ok := c.nodeOf(o)
	if !ok {
		return node{}, broker.ErrNoBroker
	}
	return n, nil
}

// notCoordinator returns NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE)
// when this broker does not coordinate the group, else 0.
func (c *conn) notCoordinator(ctx context.Context, group string) int16 {
	if c.s.b.ID() == "" {
		return 0
	}
	o, err := c.s.b.KeyOwner(ctx, GroupNamespace, group)
	switch {
	case err != nil:
		return kerr.CoordinatorNotAvailable.Code
	case !o.Self:
		return kerr.NotCoordinator.Code
	}
	return 0
}

// metadataTopicLed is metadataTopic with each partition's leader.
func metadataTopicLed(name string, leaders []node) kmsg.MetadataResponseTopic {
	rt := metadataTopic(name, int32(len(leaders)), nil)
	for i := range rt.Partitions {
		p := &rt.Partitions[i]
		l := leaders[i]
		if l.id < 0 {
			p.ErrorCode = kerr.LeaderNotAvailable.Code
			p.Leader, p.Replicas, p.ISR = -1, []int32{}, []int32{}
			continue
		}
		p.Leader, p.Replicas, p.ISR = l.id, []int32{l.id}, []int32{l.id}
	}
	return rt
}

// groupOf returns the group a coordinator request is for ("" for other
// requests).
func groupOf(req kmsg.Request) (string, bool) {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return r.Group, true
	case *kmsg.HeartbeatRequest:
		return r.Group, true
	case *kmsg.LeaveGroupRequest:
		return r.Group, true
	case *kmsg.SyncGroupRequest:
		return r.Group, true
	case *kmsg.OffsetCommitRequest:
		return r.Group, true
	}
	return "", false
}

// coordinatorError answers a group request with code (NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE), which makes the client find the
// coordinator again.
func coordinatorError(req kmsg.Request, code int16) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, r.MemberID
		return resp
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.SyncGroupRequest:
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode, resp.MemberAssignment = code, []byte{}
		return resp
	case *kmsg.OffsetCommitRequest:
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	return nil
}
