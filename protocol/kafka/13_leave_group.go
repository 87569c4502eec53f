package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// LeaveGroup, versions 0-5 (4 and later are flexible). Versions 0-2 name
// one member; 3 and later a list, each by member ID or, for static
// members, instance ID, with an error code each.

func (c *conn) handleLeaveGroup(req *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Version < 3 {
		resp.ErrorCode = c.s.co.leave(req.Group, req.MemberID, "")
		return resp
	}
	for _, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		instanceID := ""
		if m.InstanceID != nil {
			instanceID = *m.InstanceID
		}
		rm.ErrorCode = c.s.co.leave(req.Group, m.MemberID, instanceID)
		resp.Members = append(resp.Members, rm)
	}
	return resp
}
