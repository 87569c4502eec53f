package kafka

import (
	"context"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// JoinGroup, versions 0-9 (6 and later are flexible). Version 0 has no
// rebalance timeout (the session timeout is used); from version 4 a new
// member without an ID first gets one with MEMBER_ID_REQUIRED and joins
// again with it (KIP-394); from version 5 a member may be static
// (group.instance.id, KIP-345): restarting with its instance ID it takes
// over its old place, without a rebalance when nothing changed. The
// response waits until the join phase completes (see groups.go).

func (c *conn) handleJoinGroup(clientID string, req *kmsg.JoinGroupRequest) result {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	answer := func(r joinResult) kmsg.Response {
		resp.ErrorCode, resp.Generation, resp.MemberID = r.code, r.generation, r.memberID
		resp.LeaderID, resp.Members = r.leader, r.members
		if r.code == 0 {
			resp.Protocol = &r.protocol
			resp.ProtocolType = &r.protocolType
		}
		return resp
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalance = session
	}
	switch {
	case c.s.b.CheckName(broker.GroupName, req.Group) != nil:
		// Empty, too long, or not printable (broker/names.go): a group
		// is kept in memory and in the metadata service under its name.
		return result{resp: answer(joinResult{code: kerr.InvalidGroupID.Code, memberID: req.MemberID, generation: -1})}
	case session < c.s.cfg.GroupMinSessionTimeout || session > c.s.cfg.GroupMaxSessionTimeout:
		return result{resp: answer(joinResult{code: kerr.InvalidSessionTimeout.Code, memberID: req.MemberID, generation: -1})}
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return result{resp: answer(joinResult{code: kerr.InconsistentGroupProtocol.Code, memberID: req.MemberID, generation: -1})}
	}
	r := joinRequest{
		group: req.Group, memberID: req.MemberID, clientID: clientID, clientHost: c.clientHost(),
		protocolType: req.ProtocolType, protocols: req.Protocols,
		session: session, rebalance: max(rebalance, session), requireKnownID: req.Version >= 4,
	}
	if req.InstanceID != nil {
		r.instanceID = *req.InstanceID
	}
	now, wait := c.s.co.join(r)
	if wait == nil {
		return result{resp: answer(now)}
	}
	return result{later: func(ctx context.Context) kmsg.Response {
		select {
		case r := <-wait:
			return answer(r)
		case <-ctx.Done():
			return answer(joinResult{code: kerr.RebalanceInProgress.Code, memberID: req.MemberID, generation: -1})
		}
	}}
}

// clientHost is the client's address as DescribeGroups shows it.
func (c *conn) clientHost() string {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		return "/" + c.nc.RemoteAddr().String()
	}
	return "/" + host
}
