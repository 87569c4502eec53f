package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeAcls, versions 0-3 (2 and later are flexible; version 0 has no
// pattern type and filters LITERAL): the grants of the Kafka namespace
// that match the filter, as ACLs (acls.go). A filter with an UNKNOWN
// value is INVALID_REQUEST.

func (c *conn) handleDescribeACLs(ctx context.Context, req *kmsg.DescribeACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	f := aclFilter{resType: req.ResourceType, name: req.ResourceName, pattern: req.ResourcePatternType,
		principal: req.Principal, host: req.Host, op: req.Operation, perm: req.PermissionType}
	fail := func(err error) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = kafkaCode(err), errString(err)
		return resp
	}
	if err := f.check(); err != nil {
		return fail(err)
	}
	entries, err := c.aclEntries(ctx, f.onlyTopic())
	if err != nil {
		return fail(err)
	}
	for _, e := range entries { // sorted by resource
		if !f.matches(e) {
			continue
		}
		if n := len(resp.Resources); n == 0 || resp.Resources[n-1].ResourceType != e.resType || resp.Resources[n-1].ResourceName != e.resName {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = e.resType, e.resName, kmsg.ACLResourcePatternTypeLiteral
			resp.Resources = append(resp.Resources, r)
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host, acl.Operation, acl.PermissionType = e.principal(), aclWildcard, e.op, kmsg.ACLPermissionTypeAllow
		r := &resp.Resources[len(resp.Resources)-1]
		r.ACLs = append(r.ACLs, acl)
	}
	return resp
}
