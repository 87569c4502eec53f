package broker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// Authorization, in the Pulsar model, decided here for every protocol. A
// request carries its principal (auth.FromContext), put there by the
// listener that authenticated it; the listener asks the broker before it
// acts (AuthorizeTopic, AuthorizeNamespace, AuthorizeTenant,
// AuthorizeCluster). A role may:
//
//   - do anything, if it is a superuser (AuthzConfig.SuperUserRoles);
//   - do anything within a tenant whose admin roles name it: manage its
//     namespaces, their policies and permissions, and produce, consume
//     and administer every topic;
//   - do what the permissions of a namespace (every topic in it) or of a
//     topic grant it: produce, consume, admin (policies, subscriptions,
//     creating and deleting topics).
//
// Cluster operations (tenants, bookies, shards, brokers, bundles) are for
// superusers. Grants and admin roles are read from the policy cache, which
// the metadata store's watches keep current: a grant or revoke applies on
// every broker within the watch's delay, normally milliseconds.

// Action is a set of things a role may do with a topic.
type Action uint32

// The actions a permission grants.
const (
	ActionProduce Action = 1 << iota
	ActionConsume
	ActionAdmin

	ActionAll = ActionProduce | ActionConsume | ActionAdmin
)

var actionNames = []struct {
	a    Action
	name string
}{{ActionProduce, "produce"}, {ActionConsume, "consume"}, {ActionAdmin, "admin"}}

// ParseActions parses action names (produce, consume, admin).
func ParseActions(names []string) (Action, error) {
	var a Action
next:
	for _, n := range names {
		for _, x := range actionNames {
			if x.name == strings.ToLower(strings.TrimSpace(n)) {
				a |= x.a
				continue next
			}
		}
		return 0, fmt.Errorf("%w: unknown action %s (want produce, consume or admin)", ErrInvalidArgument, quoteShort(n))
	}
	return a, nil
}

// Names returns the actions' names.
func (a Action) Names() []string {
	out := []string{}
	for _, x := range actionNames {
		if a&x.a != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

func (a Action) String() string { return strings.Join(a.Names(), "+") }

// ErrPermissionDenied refuses a request its principal may not make.
var ErrPermissionDenied = errors.New("broker: permission denied")

// maxRoleLen bounds a role name (of a grant or a tenant's admin roles).
const maxRoleLen = 256

// AuthzConfig configures authorization.
type AuthzConfig struct {
	// Enabled makes the broker check every request's principal; off, every
	// request is allowed (as without authentication).
	Enabled bool `yaml:"enabled"`
	// SuperUserRoles may do anything (comma-separated).
	SuperUserRoles string `yaml:"superuser-roles"`
}

// RegisterFlags registers the flags under prefix (e.g. "authorization.").
func (c *AuthzConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, prefix+"enabled", false, "check every request's role against superuser roles, tenant admin roles and namespace/topic permissions (needs authentication)")
	fs.StringVar(&c.SuperUserRoles, prefix+"superuser-roles", "", "roles that may do anything, comma-separated")
}

// Validate reports a configuration that cannot work.
func (c *AuthzConfig) Validate() error {
	for _, r := range c.superUsers() {
		if err := ValidateRole(r); err != nil {
			return fmt.Errorf("broker: superuser-roles: %w", err)
		}
	}
	if c.Enabled && len(c.superUsers()) == 0 {
		return errors.New("broker: authorization needs at least one superuser role (authorization.superuser-roles), or nobody could create a tenant")
	}
	return nil
}

func (c *AuthzConfig) superUsers() []string {
	var out []string
	for r := range strings.SplitSeq(c.SuperUserRoles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// ValidateRole reports whether r may name a role: 1 to 256 printable
// characters.
func ValidateRole(r string) error {
	if r == "" || len(r) > maxRoleLen {
		return fmt.Errorf("%w: a role has 1 to %d bytes", ErrInvalidArgument, maxRoleLen)
	}
	for _, c := range r {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("%w: role %s has a non-printable character", ErrInvalidArgument, quoteShort(r))
		}
	}
	return nil
}

// quoteShort quotes s for an error message, cut to 64 bytes: errors never
// echo large input.
func quoteShort(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}

// AuthorizationEnabled reports whether requests are checked.
func (b *Broker) AuthorizationEnabled() bool { return b.cfg.Authorization.Enabled }

// IsSuperUser reports whether role is a superuser.
func (b *Broker) IsSuperUser(role string) bool {
	return role != "" && slices.Contains(b.cfg.Authorization.superUsers(), role)
}

// principal returns the request's role, and whether the request is to be
// allowed without looking further: authorization off, or a superuser.
func (b *Broker) principal(ctx context.Context) (string, bool) {
	if !b.cfg.Authorization.Enabled {
		return "", true
	}
	p, _ := auth.FromContext(ctx)
	return p.Role, b.IsSuperUser(p.Role)
}

func denied(role, what string) error {
	if role == "" {
		return fmt.Errorf("%w: anonymous requests may not %s", ErrPermissionDenied, what)
	}
	return fmt.Errorf("%w: role %s may not %s", ErrPermissionDenied, quoteShort(role), what)
}

// AuthorizeCluster allows superusers only: tenants, bookies, shards,
// brokers, bundles.
func (b *Broker) AuthorizeCluster(ctx context.Context) error {
	if role, ok := b.principal(ctx); !ok {
		return denied(role, "administer the cluster")
	}
	return nil
}

// AuthorizeTenant allows a superuser or an admin role of the tenant:
// namespaces, their policies and permissions.
func (b *Broker) AuthorizeTenant(ctx context.Context, tenant string) error {
	role, ok := b.principal(ctx)
	if ok {
		return nil
	}
	g, err := b.grantsOf(ctx, role, tenant, nil, nil)
	if err != nil {
		return err
	}
	if g != ActionAll {
		return denied(role, "administer tenant "+quoteShort(tenant))
	}
	return nil
}

// AuthorizeNamespace allows a request that needs any of the actions in
// need on every topic of ns.
func (b *Broker) AuthorizeNamespace(ctx context.Context, ns NamespaceName, need Action) error {
	role, ok := b.principal(ctx)
	if ok {
		return nil
	}
	g, err := b.grantsOf(ctx, role, ns.Tenant, &ns, nil)
	if err != nil {
		return err
	}
	if g&need == 0 {
		return denied(role, need.String()+" on namespace "+quoteShort(ns.String()))
	}
	return nil
}

// AuthorizeTopic allows a request that needs any of the actions in need
// on the topic.
func (b *Broker) AuthorizeTopic(ctx context.Context, name TopicName, need Action) error {
	role, ok := b.principal(ctx)
	if ok {
		return nil
	}
	ns := name.NamespaceName()
	g, err := b.grantsOf(ctx, role, name.Tenant, &ns, &name)
	if err != nil {
		return err
	}
	if g&need == 0 {
		return denied(role, need.String()+" on topic "+quoteShort(name.String()))
	}
	return nil
}

// grantsOf is the union of what role is granted by the tenant's admin
// roles, the namespace's permissions (if ns is set) and the topic's (if
// name is set). A missing tenant, namespace or topic grants nothing.
func (b *Broker) grantsOf(ctx context.Context, role, tenant string, ns *NamespaceName, name *TopicName) (Action, error) {
	if role == "" {
		return 0, nil
	}
	c := b.pol.cache
	var g Action
	add := func(e *polEntry, err error) error {
		if err != nil {
			return wrapMeta("load permissions", err)
		}
		g |= Action(e.grants[role])
		return nil
	}
	if err := add(c.tenants.entry(ctx, tenant)); err != nil || g == ActionAll {
		return g, err
	}
	if ns != nil {
		if err := add(c.ns.entry(ctx, ns.catName())); err != nil {
			return 0, err
		}
	}
	if name != nil {
		if err := add(c.topics.entry(ctx, name.catName())); err != nil {
			return 0, err
		}
	}
	return g, nil
}

// Permissions are the grants stored on a namespace or a topic: role ->
// actions.
type Permissions map[string]Action

func permissionsOf(m map[string]uint32) Permissions {
	out := make(Permissions, len(m))
	for r, a := range m {
		out[r] = Action(a)
	}
	return out
}

// NamespacePermissions returns the grants stored on ns.
func (b *Broker) NamespacePermissions(ctx context.Context, ns NamespaceName) (Permissions, error) {
	e, ok, err := b.cat.Namespaces.Get(ctx, ns.catName())
	if err != nil {
		return nil, wrapMeta("get namespace", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNamespaceNotFound, ns)
	}
	return permissionsOf(e.Value.Permissions), nil
}

// TopicPermissions returns the grants stored on a topic (not its
// namespace's).
func (b *Broker) TopicPermissions(ctx context.Context, name TopicName) (Permissions, error) {
	e, ok, err := b.cat.Topics.Get(ctx, name.catName())
	if err != nil {
		return nil, wrapMeta("get topic", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	return permissionsOf(e.Value.Permissions), nil
}

// SetNamespacePermission grants role exactly actions on every topic of
// ns; no actions revokes what it had.
func (b *Broker) SetNamespacePermission(ctx context.Context, ns NamespaceName, role string, actions Action) error {
	return b.ChangeNamespacePermission(ctx, ns, role, func(Action) Action { return actions })
}

// ChangeNamespacePermission replaces role's actions on ns with change of
// them, atomically: concurrent changes (Kafka's CreateAcls adding one
// action, DeleteAcls removing another) are all kept.
func (b *Broker) ChangeNamespacePermission(ctx context.Context, ns NamespaceName, role string, change func(Action) Action) error {
	if err := ValidateRole(role); err != nil {
		return err
	}
	for {
		e, ok, err := b.cat.Namespaces.Get(ctx, ns.catName())
		if err != nil {
			return wrapMeta("get namespace", err)
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrNamespaceNotFound, ns)
		}
		actions := change(Action(e.Value.Permissions[role]))
		if e.Value.Permissions, err = setGrant(e.Value.Permissions, role, actions); err != nil {
			return err
		}
		_, err = b.cat.Namespaces.Update(ctx, ns.catName(), e.Value, e.Version)
		if errors.Is(err, catalog.ErrConflict) {
			continue
		}
		if err != nil {
			return wrapMeta("update namespace", err)
		}
		b.pol.invalidateNamespace(ns)
		b.log.Info("namespace permission set", "namespace", ns.String(), "role", role, "actions", actions.String())
		return nil
	}
}

// SetTopicPermission grants role exactly actions on a topic; no actions
// revokes what it had there (its namespace's grants still apply).
func (b *Broker) SetTopicPermission(ctx context.Context, name TopicName, role string, actions Action) error {
	return b.ChangeTopicPermission(ctx, name, role, func(Action) Action { return actions })
}

// ChangeTopicPermission is ChangeNamespacePermission for a topic.
func (b *Broker) ChangeTopicPermission(ctx context.Context, name TopicName, role string, change func(Action) Action) error {
	if err := ValidateRole(role); err != nil {
		return err
	}
	for {
		e, ok, err := b.cat.Topics.Get(ctx, name.catName())
		if err != nil {
			return wrapMeta("get topic", err)
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		actions := change(Action(e.Value.Permissions[role]))
		if e.Value.Permissions, err = setGrant(e.Value.Permissions, role, actions); err != nil {
			return err
		}
		_, err = b.cat.Topics.Update(ctx, name.catName(), e.Value, e.Version)
		if errors.Is(err, catalog.ErrConflict) {
			continue
		}
		if err != nil {
			return wrapMeta("update topic", err)
		}
		b.pol.invalidateTopic(name)
		b.log.Info("topic permission set", "topic", name.String(), "role", role, "actions", actions.String())
		return nil
	}
}

// maxGrants bounds the roles granted on one namespace or topic, which are
// kept in its metadata row and in every broker's cache.
const maxGrants = 1024

func setGrant(m map[string]uint32, role string, actions Action) (map[string]uint32, error) {
	if actions&^ActionAll != 0 {
		return nil, fmt.Errorf("%w: unknown action bits %#x", ErrInvalidArgument, uint32(actions&^ActionAll))
	}
	if _, ok := m[role]; !ok && actions != 0 && len(m) >= maxGrants {
		return nil, fmt.Errorf("%w: at most %d roles may be granted permissions on one namespace or topic", ErrInvalidArgument, maxGrants)
	}
	m = maps.Clone(m)
	if m == nil {
		m = make(map[string]uint32)
	}
	if actions == 0 {
		delete(m, role)
	} else {
		m[role] = uint32(actions)
	}
	return m, nil
}
