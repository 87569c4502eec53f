package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator, versions 0-4 (3 and later are flexible; 4 asks for
// several keys at once). A group's coordinator is the owner of the group's
// bundle in GroupNamespace (owners.go); alone, this broker coordinates
// every group.
// Transactions are not served, so a transaction coordinator is answered
// with INVALID_REQUEST and a message saying so: a code clients do not
// retry, so a transactional producer fails at once instead of hanging.

func (c *conn) handleFindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	var coord node
	find := func(key string) (code int16, msg *string) {
		switch {
		case req.CoordinatorType == 1:
			m := "transactions are not supported"
			return kerr.InvalidRequest.Code, &m
		case req.CoordinatorType != 0:
			m := "unknown coordinator type"
			return kerr.InvalidRequest.Code, &m
		case key == "":
			m := "empty group ID"
			return kerr.InvalidRequest.Code, &m
		}
		n, err := c.coordinator(ctx, key)
		if err != nil {
			m := err.Error()
			return kerr.CoordinatorNotAvailable.Code, &m
		}
		coord = n
		return 0, nil
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			rc := kmsg.NewFindCoordinatorResponseCoordinator()
			rc.Key = key
			rc.ErrorCode, rc.ErrorMessage = find(key)
			if rc.ErrorCode == 0 {
				rc.NodeID, rc.Host, rc.Port = coord.id, coord.host, coord.port
			} else {
				rc.NodeID, rc.Port = -1, -1
			}
			resp.Coordinators = append(resp.Coordinators, rc)
		}
		return resp
	}
	resp.ErrorCode, resp.ErrorMessage = find(req.CoordinatorKey)
	if resp.ErrorCode == 0 {
		resp.NodeID, resp.Host, resp.Port = coord.id, coord.host, coord.port
	} else {
		resp.NodeID, resp.Port = -1, -1
	}
	return resp
}
