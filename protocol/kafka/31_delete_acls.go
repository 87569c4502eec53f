package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// DeleteAcls, versions 0-3 (2 and later are flexible): each filter
// removes the actions of the ACLs it matches from their grants (acls.go)
// and lists them; every filter matches against the grants as they were
// before the request. A filter with an UNKNOWN value, or for CLUSTER
// (superusers come from the configuration), is INVALID_REQUEST.

func (c *conn) handleDeleteACLs(ctx context.Context, req *kmsg.DeleteACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	filters := make([]aclFilter, len(req.Filters))
	errs := make([]error, len(req.Filters))
	for i, rf := range req.Filters {
		filters[i] = aclFilter{resType: rf.ResourceType, name: rf.ResourceName, pattern: rf.ResourcePatternType,
			principal: rf.Principal, host: rf.Host, op: rf.Operation, perm: rf.PermissionType}
		errs[i] = filters[i].check()
		if errs[i] == nil && rf.ResourceType == kmsg.ACLResourceTypeCluster {
			errs[i] = errClusterACL
		}
	}
	var entries []aclEntry
	var listErr error
	if len(req.Filters) > 0 {
		entries, listErr = c.aclEntries(ctx, nil)
	}
	matched := make([][]aclEntry, len(req.Filters))
	removes := make(map[grantKey]broker.Action)
	var order []grantKey
	for i, f := range filters {
		if errs[i] == nil {
			errs[i] = listErr
		}
		if errs[i] != nil {
			continue
		}
		for _, e := range entries {
			if !f.matches(e) {
				continue
			}
			matched[i] = append(matched[i], e)
			if _, seen := removes[e.key()]; !seen {
				order = append(order, e.key())
			}
			removes[e.key()] |= e.actions
		}
	}
	setErrs := make(map[grantKey]error, len(order))
	for _, k := range order {
		setErrs[k] = c.changeGrant(ctx, k, 0, removes[k])
	}
	for i := range req.Filters {
		rf := kmsg.NewDeleteACLsResponseResult()
		rf.ErrorCode, rf.ErrorMessage = kafkaCode(errs[i]), errString(errs[i])
		for _, e := range matched[i] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			err := setErrs[e.key()]
			m.ErrorCode, m.ErrorMessage = kafkaCode(err), errString(err)
			m.ResourceType, m.ResourceName, m.ResourcePatternType = e.resType, e.resName, kmsg.ACLResourcePatternTypeLiteral
			m.Principal, m.Host, m.Operation, m.PermissionType = e.principal(), aclWildcard, e.op, kmsg.ACLPermissionTypeAllow
			rf.MatchingACLs = append(rf.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, rf)
	}
	return resp
}
