package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// Kafka ACLs are a view of the broker's grants on the Kafka namespace
// (broker/authz.go): DescribeAcls lists them as ACLs, CreateAcls and
// DeleteAcls add and remove actions of them. The mapping:
//
//   - principal "User:<role>"; other principal types, and the wildcard
//     "User:*", are refused;
//   - TOPIC <name> (LITERAL) is the topic's grant; TOPIC "*" (LITERAL) or
//     "" (PREFIXED) is the namespace's grant, on every topic; other
//     prefixes are refused;
//   - GROUP "*" (LITERAL) or "" (PREFIXED) is consume on the namespace,
//     which is what any group needs (authz.go); a group by name is
//     refused, since granting it would grant reading every topic;
//   - CLUSTER is for superusers, which come from the server's
//     configuration (authorization.superuser-roles): creating it is
//     refused, and superusers and tenant admin roles are not listed;
//   - operations: READ is consume, WRITE produce; ALTER, CREATE, DELETE,
//     ALTER_CONFIGS and DESCRIBE_CONFIGS are admin; ALL is all three (on a
//     group: READ, DELETE and ALL are consume). DESCRIBE is implied by any
//     grant, as on Kafka, and never stored on its own: creating it
//     succeeds when the role holds a grant on the resource, and is refused
//     otherwise;
//   - ALLOW only: a DENY is refused (grants only allow; deleting an ACL
//     revokes); the host must be "*".
//
// A grant is listed as ALL when it holds all three actions, else as one
// ACL per action: READ, WRITE, ALTER (admin, however it was created). A
// namespace grant holding consume is also listed as GROUP "*" READ: the
// two are one grant, and deleting either removes both. A filter's
// operation matches an ACL standing for the same actions (CREATE matches
// ALTER). Each change is a read and a write of the role's grant: two ACL
// changes racing on the same role and resource may lose one.
//
// The ACL APIs are for admins of the namespace's tenant (authz.go). A
// refused creation or filter is INVALID_REQUEST with a message saying why.

const (
	aclWildcard  = "*"
	aclPrincipal = "User:"
)

// aclEntry is one ACL as DescribeAcls lists it, and the grant it stands
// for: actions of role on topic (or on the namespace, topic "").
type aclEntry struct {
	resType kmsg.ACLResourceType
	resName string
	op      kmsg.ACLOperation
	role    string
	topic   string
	actions broker.Action
}

func (e aclEntry) principal() string { return aclPrincipal + e.role }

// grantKey names one stored grant: a role's on a topic, or on the
// namespace (topic "").
type grantKey struct{ topic, role string }

func (e aclEntry) key() grantKey { return grantKey{e.topic, e.role} }

// errBadACL refuses an ACL or filter that has no grant to stand for.
var errBadACL = kafkaCodeError(kerr.InvalidRequest.Code)

// errClusterACL refuses CLUSTER ACLs, which would name superusers.
var errClusterACL = fmt.Errorf("%w: superusers come from the server's configuration (authorization.superuser-roles)", errBadACL)

func badACL(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadACL}, args...)...)
}

// opActions is what operation op on a resource type stands for; 0 for
// DESCRIBE, implied by any grant. An operation that does not apply is an
// error.
func opActions(t kmsg.ACLResourceType, op kmsg.ACLOperation) (broker.Action, error) {
	switch {
	case op == kmsg.ACLOperationDescribe && (t == kmsg.ACLResourceTypeTopic || t == kmsg.ACLResourceTypeGroup):
		return 0, nil
	case t == kmsg.ACLResourceTypeTopic:
		switch op {
		case kmsg.ACLOperationRead:
			return broker.ActionConsume, nil
		case kmsg.ACLOperationWrite:
			return broker.ActionProduce, nil
		case kmsg.ACLOperationAlter, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete,
			kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationDescribeConfigs:
			return broker.ActionAdmin, nil
		case kmsg.ACLOperationAll:
			return broker.ActionAll, nil
		}
	case t == kmsg.ACLResourceTypeGroup:
		switch op {
		case kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationAll:
			return broker.ActionConsume, nil
		}
	}
	return 0, badACL("operation %s does not apply to %s", op, t)
}

// opsOf lists the ACLs a grant of actions on a resource type shows as.
func opsOf(t kmsg.ACLResourceType, actions broker.Action) []kmsg.ACLOperation {
	if t == kmsg.ACLResourceTypeGroup {
		if actions&broker.ActionConsume != 0 {
			return []kmsg.ACLOperation{kmsg.ACLOperationRead}
		}
		return nil
	}
	if actions == broker.ActionAll {
		return []kmsg.ACLOperation{kmsg.ACLOperationAll}
	}
	var ops []kmsg.ACLOperation
	for _, x := range []struct {
		a  broker.Action
		op kmsg.ACLOperation
	}{{broker.ActionConsume, kmsg.ACLOperationRead}, {broker.ActionProduce, kmsg.ACLOperationWrite}, {broker.ActionAdmin, kmsg.ACLOperationAlter}} {
		if actions&x.a != 0 {
			ops = append(ops, x.op)
		}
	}
	return ops
}

// aclRole parses a principal "User:<role>".
func aclRole(principal string) (string, error) {
	role, ok := strings.CutPrefix(principal, aclPrincipal)
	switch {
	case !ok:
		return "", badACL("principal %q: want User:<role>", clip(principal, maxQuoted))
	case role == aclWildcard:
		return "", badACL("the wildcard principal User:* is not supported: grant each role")
	}
	if err := broker.ValidateRole(role); err != nil {
		return "", badACL("principal: %v", err)
	}
	return role, nil
}

// aclTopic is the grant an ACL's resource names: a topic, or the
// namespace ("").
func (c *conn) aclTopic(t kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType) (string, error) {
	whole := (pattern == kmsg.ACLResourcePatternTypeLiteral && name == aclWildcard) ||
		(pattern == kmsg.ACLResourcePatternTypePrefixed && name == "")
	switch t {
	case kmsg.ACLResourceTypeTopic:
		switch {
		case whole:
			return "", nil
		case pattern == kmsg.ACLResourcePatternTypePrefixed:
			return "", badACL("a prefixed topic ACL must have the empty prefix (the whole namespace)")
		case pattern != kmsg.ACLResourcePatternTypeLiteral:
			return "", badACL("pattern type %s: want LITERAL or PREFIXED", pattern)
		}
		if _, err := c.s.topicName(name); err != nil {
			return "", err
		}
		return name, nil
	case kmsg.ACLResourceTypeGroup:
		if !whole {
			return "", badACL("groups are authorized by consume on the namespace: grant GROUP * (or TOPIC *) READ, not a group by name")
		}
		return "", nil
	case kmsg.ACLResourceTypeCluster:
		return "", errClusterACL
	}
	return "", badACL("resource type %s is not supported", t)
}

// aclEntries lists the grants of the Kafka namespace as ACLs; only the
// topic named by onlyTopic when it is not nil ("" for none).
func (c *conn) aclEntries(ctx context.Context, onlyTopic *string) ([]aclEntry, error) {
	ns, err := c.s.namespace()
	if err != nil {
		return nil, err
	}
	var out []aclEntry
	add := func(t kmsg.ACLResourceType, name, topic string, perms broker.Permissions) {
		for role, a := range perms {
			for _, op := range opsOf(t, a) {
				actions, _ := opActions(t, op)
				out = append(out, aclEntry{resType: t, resName: name, op: op, role: role, topic: topic, actions: actions})
			}
		}
	}
	perms, err := c.s.b.NamespacePermissions(ctx, ns)
	if err != nil && !errors.Is(err, broker.ErrNamespaceNotFound) {
		return nil, err
	}
	add(kmsg.ACLResourceTypeTopic, aclWildcard, "", perms)
	add(kmsg.ACLResourceTypeGroup, aclWildcard, "", perms)
	var topics []broker.TopicName
	switch {
	case onlyTopic == nil:
		infos, err := c.s.b.ListTopics(ctx, c.s.cfg.DefaultNamespace)
		if err != nil {
			return nil, err
		}
		for _, info := range infos {
			topics = append(topics, info.Name)
		}
	case *onlyTopic != "":
		if name, err := c.s.topicName(*onlyTopic); err == nil {
			topics = append(topics, name)
		}
	}
	for _, name := range topics {
		perms, err := c.s.b.TopicPermissions(ctx, name)
		if errors.Is(err, broker.ErrTopicNotFound) {
			continue // deleted meanwhile, or never created
		}
		if err != nil {
			return nil, err
		}
		add(kmsg.ACLResourceTypeTopic, name.Topic, name.Topic, perms)
	}
	slices.SortFunc(out, func(a, b aclEntry) int {
		return cmp.Or(cmp.Compare(a.resType, b.resType), cmp.Compare(a.resName, b.resName),
			cmp.Compare(a.role, b.role), cmp.Compare(a.op, b.op))
	})
	return out, nil
}

// aclFilter is the filter of DescribeAcls and of each DeleteAcls filter.
type aclFilter struct {
	resType   kmsg.ACLResourceType
	name      *string
	pattern   kmsg.ACLResourcePatternType
	principal *string
	host      *string
	op        kmsg.ACLOperation
	perm      kmsg.ACLPermissionType
}

// check refuses a filter with an unknown value, as Kafka does.
func (f aclFilter) check() error {
	switch {
	case f.resType == kmsg.ACLResourceTypeUnknown:
		return badACL("the filter's resource type is UNKNOWN")
	case f.pattern == kmsg.ACLResourcePatternTypeUnknown:
		return badACL("the filter's pattern type is UNKNOWN")
	case f.op == kmsg.ACLOperationUnknown:
		return badACL("the filter's operation is UNKNOWN")
	case f.perm == kmsg.ACLPermissionTypeUnknown:
		return badACL("the filter's permission type is UNKNOWN")
	}
	return nil
}

// onlyTopic is the one topic whose grants can match f, if there is one
// ("" for none): the others need not be read.
func (f aclFilter) onlyTopic() *string {
	none := ""
	switch {
	case f.resType != kmsg.ACLResourceTypeAny && f.resType != kmsg.ACLResourceTypeTopic:
		return &none
	case f.name == nil:
		return nil
	case f.pattern == kmsg.ACLResourcePatternTypePrefixed, *f.name == aclWildcard:
		return &none
	}
	return f.name
}

func (f aclFilter) matches(e aclEntry) bool {
	if f.resType != kmsg.ACLResourceTypeAny && f.resType != e.resType {
		return false
	}
	whole := e.resName == aclWildcard
	switch f.pattern {
	case kmsg.ACLResourcePatternTypePrefixed: // the only prefix stored is "", the namespace
		if !whole || (f.name != nil && *f.name != "") {
			return false
		}
	case kmsg.ACLResourcePatternTypeMatch: // the resource named, and "*"
		if f.name != nil && !whole && *f.name != e.resName {
			return false
		}
	default: // LITERAL, ANY
		if f.name != nil && *f.name != e.resName {
			return false
		}
	}
	if (f.principal != nil && *f.principal != e.principal()) || (f.host != nil && *f.host != aclWildcard) {
		return false
	}
	if f.perm != kmsg.ACLPermissionTypeAny && f.perm != kmsg.ACLPermissionTypeAllow {
		return false
	}
	if f.op == kmsg.ACLOperationAny {
		return true
	}
	a, err := opActions(e.resType, f.op)
	return err == nil && a == e.actions
}

// grants reads the current actions of the grants keys name.
func (c *conn) grants(ctx context.Context, keys []grantKey) (map[grantKey]broker.Action, map[string]error) {
	out := make(map[grantKey]broker.Action, len(keys))
	failed := make(map[string]error)
	loaded := make(map[string]broker.Permissions)
	for _, k := range keys {
		perms, ok := loaded[k.topic]
		if _, bad := failed[k.topic]; !ok && !bad {
			var err error
			if perms, err = c.permissions(ctx, k.topic); err != nil {
				failed[k.topic] = err
				continue
			}
			loaded[k.topic] = perms
		}
		out[k] = perms[k.role]
	}
	return out, failed
}

// permissions reads the grants of a topic, or of the namespace ("").
func (c *conn) permissions(ctx context.Context, topic string) (broker.Permissions, error) {
	if topic == "" {
		ns, err := c.s.namespace()
		if err != nil {
			return nil, err
		}
		return c.s.b.NamespacePermissions(ctx, ns)
	}
	name, err := c.s.topicName(topic)
	if err != nil {
		return nil, err
	}
	return c.s.b.TopicPermissions(ctx, name)
}

// changeGrant adds and removes actions of role's grant on a topic or on
// the namespace (""), atomically.
func (c *conn) changeGrant(ctx context.Context, k grantKey, add, remove broker.Action) error {
	change := func(a broker.Action) broker.Action { return (a | add) &^ remove }
	if k.topic == "" {
		ns, err := c.s.namespace()
		if err != nil {
			return err
		}
		return c.s.b.ChangeNamespacePermission(ctx, ns, k.role, change)
	}
	name, err := c.s.topicName(k.topic)
	if err != nil {
		return err
	}
	return c.s.b.ChangeTopicPermission(ctx, name, k.role, change)
}

// errString is err's message for an optional message field.
func errString(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
