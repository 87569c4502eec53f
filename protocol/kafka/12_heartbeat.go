package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// Heartbeat, versions 0-4 (4 is flexible). It keeps a member's session
// alive; REBALANCE_IN_PROGRESS tells the member to join again.

func (c *conn) handleHeartbeat(req *kmsg.HeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	resp.ErrorCode = c.s.co.heartbeat(req.Group, req.MemberID, instanceID, req.Generation)
	return resp
}
