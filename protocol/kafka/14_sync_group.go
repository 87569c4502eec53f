package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup, versions 0-5 (4 and later are flexible; 5 checks the
// protocol type and name). The leader's request carries every member's
// assignment; each member's response waits for it.

func (c *conn) handleSyncGroup(req *kmsg.SyncGroupRequest) result {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	answer := func(r syncResult) kmsg.Response {
		resp.ErrorCode, resp.MemberAssignment = r.code, r.assignment
		if r.assignment == nil {
			resp.MemberAssignment = []byte{}
		}
		return resp
	}
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	if req.Version >= 5 {
		resp.ProtocolType, resp.Protocol = req.ProtocolType, req.Protocol
		if !c.s.co.sameProtocol(req.Group, req.ProtocolType, req.Protocol) {
			return result{resp: answer(syncResult{code: kerr.InconsistentGroupProtocol.Code})}
		}
	}
	assignments := make(map[string][]byte, len(req.GroupAssignment))
	for _, a := range req.GroupAssignment {
		assignments[a.MemberID] = a.MemberAssignment
	}
	now, wait := c.s.co.sync(req.Group, req.MemberID, instanceID, req.Generation, assignments)
	if wait == nil {
		return result{resp: answer(now)}
	}
	return result{later: func(ctx context.Context) kmsg.Response {
		select {
		case r := <-wait:
			return answer(r)
		case <-ctx.Done():
			return answer(syncResult{code: kerr.RebalanceInProgress.Code})
		}
	}}
}
