package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// CreateAcls, versions 0-3 (2 and later are flexible; version 0 creates
// LITERAL ACLs): each creation adds its operation's actions to a role's
// grant on a topic or on the namespace (acls.go), or is refused with
// INVALID_REQUEST and a message. The creations of one request that name
// the same grant are applied together; a DESCRIBE is checked last, so it
// may come with the operation that implies it.

func (c *conn) handleCreateACLs(ctx context.Context, req *kmsg.CreateACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	errs := make([]error, len(req.Creations))
	keys := make([]grantKey, len(req.Creations))
	adds := make(map[grantKey]broker.Action)
	var order []grantKey
	for i, cr := range req.Creations {
		k, a, err := c.creation(cr)
		if errs[i] = err; err != nil {
			continue
		}
		keys[i] = k
		if _, seen := adds[k]; !seen {
			order = append(order, k)
		}
		adds[k] |= a
	}
	// What each named grant holds now, and of a topic's, its namespace's
	// too (which implies DESCRIBE there).
	var read []grantKey
	for _, k := range order {
		read = append(read, k, grantKey{role: k.role})
	}
	held, failed := c.grants(ctx, read)
	for _, k := range order {
		err := failed[k.topic]
		if err == nil && adds[k] != 0 {
			err = c.changeGrant(ctx, k, adds[k], 0)
		}
		for i := range req.Creations {
			if errs[i] == nil && keys[i] == k {
				errs[i] = err
			}
		}
	}
	for i, cr := range req.Creations {
		k := keys[i]
		if errs[i] == nil && cr.Operation == kmsg.ACLOperationDescribe && held[k]|adds[k]|held[grantKey{role: k.role}]|adds[grantKey{role: k.role}] == 0 {
			errs[i] = badACL("DESCRIBE is implied by any grant and not stored on its own: create READ, WRITE or ALTER")
		}
		rc := kmsg.NewCreateACLsResponseResult()
		rc.ErrorCode, rc.ErrorMessage = kafkaCode(errs[i]), errString(errs[i])
		resp.Results = append(resp.Results, rc)
	}
	return resp
}

// creation checks one ACL and returns the grant it adds to and the
// actions it adds.
func (c *conn) creation(cr kmsg.CreateACLsRequestCreation) (grantKey, broker.Action, error) {
	switch {
	case cr.PermissionType == kmsg.ACLPermissionTypeDeny:
		return grantKey{}, 0, badACL("DENY ACLs are not supported: grants only allow; delete an ACL to revoke it")
	case cr.PermissionType != kmsg.ACLPermissionTypeAllow:
		return grantKey{}, 0, badACL("permission type %s: want ALLOW", cr.PermissionType)
	case cr.Host != aclWildcard:
		return grantKey{}, 0, badACL("host %q: grants hold for every host, want *", clip(cr.Host, maxQuoted))
	}
	role, err := aclRole(cr.Principal)
	if err != nil {
		return grantKey{}, 0, err
	}
	topic, err := c.aclTopic(cr.ResourceType, cr.ResourceName, cr.ResourcePatternType)
	if err != nil {
		return grantKey{}, 0, err
	}
	a, err := opActions(cr.ResourceType, cr.Operation)
	if err != nil {
		return grantKey{}, 0, err
	}
	return grantKey{topic, role}, a, nil
}
