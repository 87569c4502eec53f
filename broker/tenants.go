package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Errors of tenants, namespaces and policies. Protocol adapters and the
// admin API map them with internal/errmap.
var (
	ErrTenantNotFound    = errors.New("broker: tenant not found")
	ErrTenantExists      = errors.New("broker: tenant already exists")
	ErrNamespaceNotFound = errors.New("broker: namespace not found")
	ErrNamespaceExists   = errors.New("broker: namespace already exists")
	// ErrNotEmpty refuses to delete a tenant that has namespaces or a
	// namespace that has topics.
	ErrNotEmpty = errors.New("broker: not empty")
	// ErrTooManyTopics refuses a topic beyond its namespace's max_topics.
	ErrTooManyTopics = errors.New("broker: namespace has reached its max_topics policy")
)

// maxNamespaceBundles caps the bundles a namespace is created with.
const maxNamespaceBundles = 1 << 16

// NamespaceName names a namespace: tenant/namespace.
type NamespaceName struct {
	Tenant    string
	Namespace string
}

// String returns tenant/namespace.
func (n NamespaceName) String() string { return n.Tenant + "/" + n.Namespace }

func (n NamespaceName) catName() catalog.NamespaceName { return catalog.NamespaceName(n) }

// NamespaceName returns the topic's namespace.
func (n TopicName) NamespaceName() NamespaceName { return NamespaceName{n.Tenant, n.Namespace} }

// ParseNamespaceName parses tenant/namespace; each part follows the rules
// of topic names.
func ParseNamespaceName(s string) (NamespaceName, error) {
	t, ns, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(ns, "/") {
		return NamespaceName{}, fmt.Errorf("%w: namespace %q: want tenant/namespace", ErrInvalidArgument, s)
	}
	if err := validNamePart(t); err != nil {
		return NamespaceName{}, fmt.Errorf("%w: tenant %q: %v", ErrInvalidArgument, t, err)
	}
	if err := validNamePart(ns); err != nil {
		return NamespaceName{}, fmt.Errorf("%w: namespace %q: %v", ErrInvalidArgument, ns, err)
	}
	return NamespaceName{t, ns}, nil
}

// TenantInfo describes a tenant.
type TenantInfo struct {
	Name       string
	AdminRoles []string
	Created    time.Time
}

// NamespaceInfo describes a namespace and the policies set on it.
type NamespaceInfo struct {
	Name NamespaceName
	// Bundles is the number of bundles its topic hash space is cut into
	// (0: the broker's default).
	Bundles  uint32
	Policies *catalogpb.Policies
	Created  time.Time
}

// NamespaceOptions are a new namespace's settings.
type NamespaceOptions struct {
	Bundles  uint32              // 0: the broker's default
	Policies *catalogpb.Policies // nil: inherit every policy
}

// CreateTenant creates a tenant (ErrTenantExists if it exists).
func (b *Broker) CreateTenant(ctx context.Context, name string, adminRoles []string) error {
	if err := validNamePart(name); err != nil {
		return fmt.Errorf("%w: tenant %q: %v", ErrInvalidArgument, name, err)
	}
	for _, r := range adminRoles {
		if err := ValidateRole(r); err != nil {
			return fmt.Errorf("tenant %s admin roles: %w", name, err)
		}
	}
	_, err := b.cat.Tenants.Create(ctx, name, &catalogpb.Tenant{CreatedUnixMs: time.Now().UnixMilli(), AdminRoles: adminRoles})
	if errors.Is(err, catalog.ErrExists) {
		return fmt.Errorf("%w: %s", ErrTenantExists, name)
	}
	if err != nil {
		return wrapMeta("create tenant", err)
	}
	b.log.Info("tenant created", "tenant", name)
	return nil
}

// Tenant describes a tenant.
func (b *Broker) Tenant(ctx context.Context, name string) (TenantInfo, error) {
	e, ok, err := b.cat.Tenants.Get(ctx, name)
	if err != nil {
		if errors.Is(err, catalog.ErrInvalidName) {
			return TenantInfo{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return TenantInfo{}, wrapMeta("get tenant", err)
	}
	if !ok {
		return TenantInfo{}, fmt.Errorf("%w: %s", ErrTenantNotFound, name)
	}
	return tenantInfo(e.Name, e.Value), nil
}

func tenantInfo(name string, t *catalogpb.Tenant) TenantInfo {
	return TenantInfo{Name: name, AdminRoles: t.AdminRoles, Created: time.UnixMilli(t.CreatedUnixMs)}
}

// ListTenants lists every tenant in name order.
func (b *Broker) ListTenants(ctx context.Context) ([]TenantInfo, error) {
	var out []TenantInfo
	var page catalog.Page
	for {
		l, err := b.cat.Tenants.List(ctx, page)
		if err != nil {
			return nil, wrapMeta("list tenants", err)
		}
		for _, e := range l.Entries {
			out = append(out, tenantInfo(e.Name, e.Value))
		}
		if l.Next == "" {
			return out, nil
		}
		page.After = l.Next
	}
}

// DeleteTenant deletes a tenant that has no namespaces (ErrNotEmpty
// otherwise). Creating a namespace rewrites its tenant's row, so a
// namespace created while the delete runs makes the delete look again.
func (b *Broker) DeleteTenant(ctx context.Context, name string) error {
	for {
		e, ok, err := b.cat.Tenants.Get(ctx, name)
		if err != nil {
			return wrapMeta("delete tenant", err)
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrTenantNotFound, name)
		}
		l, err := b.cat.Namespaces.List(ctx, name, catalog.Page{Limit: 1})
		if err != nil {
			return wrapMeta("delete tenant", err)
		}
		if len(l.Entries) > 0 {
			return fmt.Errorf("%w: tenant %s has namespaces (%s, ...); delete them first", ErrNotEmpty, name, l.Entries[0].Name)
		}
		err = b.cat.Tenants.Delete(ctx, name, e.Version)
		if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
			continue // a namespace was created (or the tenant changed): look again
		}
		if err != nil {
			return wrapMeta("delete tenant", err)
		}
		b.log.Info("tenant deleted", "tenant", name)
		return nil
	}
}

// CreateNamespace creates a namespace in an existing tenant
// (ErrTenantNotFound otherwise; ErrNamespaceExists if it exists).
func (b *Broker) CreateNamespace(ctx context.Context, ns NamespaceName, opts NamespaceOptions) error {
	if _, err := ParseNamespaceName(ns.String()); err != nil {
		return err
	}
	if opts.Bundles > maxNamespaceBundles {
		return fmt.Errorf("%w: bundles must be at most %d, got %d", ErrInvalidArgument, maxNamespaceBundles, opts.Bundles)
	}
	if err := validatePolicies(opts.Policies, false); err != nil {
		return err
	}
	row := &catalogpb.Namespace{CreatedUnixMs: time.Now().UnixMilli(), Policies: opts.Policies, Bundles: opts.Bundles}
	for {
		t, ok, err := b.cat.Tenants.Get(ctx, ns.Tenant)
		if err != nil {
			return wrapMeta("create namespace", err)
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrTenantNotFound, ns.Tenant)
		}
		// Create the namespace only while the tenant's row is the one read,
		// and rewrite that row: a concurrent DeleteTenant then sees a new
		// version and looks for namespaces again.
		done, err := b.createNamespaceRow(ctx, ns, row, t)
		if err != nil {
			if errors.Is(err, catalog.ErrExists) {
				return fmt.Errorf("%w: %s", ErrNamespaceExists, ns)
			}
			return wrapMeta("create namespace", err)
		}
		if done {
			b.log.Info("namespace created", "namespace", ns.String(), "bundles", opts.Bundles)
			return nil
		}
	}
}

func (b *Broker) createNamespaceRow(ctx context.Context, ns NamespaceName, row *catalogpb.Namespace, t catalog.Entry[string, *catalogpb.Tenant]) (bool, error) {
	tk, err := b.cat.Tenants.Key(ns.Tenant)
	if err != nil {
		return false, err
	}
	nk, err := b.cat.Namespaces.Key(ns.catName())
	if err != nil {
		return false, err
	}
	top, err := b.cat.Tenants.PutOp(ns.Tenant, t.Value)
	if err != nil {
		return false, err
	}
	nop, err := b.cat.Namespaces.PutOp(ns.catName(), row)
	if err != nil {
		return false, err
	}
	return b.casCreate(ctx, tk, t.Version, nk, top, nop)
}

// casCreate writes a child row (a namespace, a topic) if it does not
// exist, in one Txn that also rewrites its parent's row (the tenant, the
// namespace) as it was read at parentVersion. The parent's version so
// moves with every child created, which makes both "delete the parent
// only if it has no children" and "count the children" exact under
// concurrency. It returns false when the parent changed meanwhile (read
// it again), catalog.ErrExists when the child exists.
func (b *Broker) casCreate(ctx context.Context, parentKey string, parentVersion int64, childKey string, parentOp, childOp metadata.Op) (bool, error) {
	resp, err := b.cat.Store().Txn(ctx, metadata.TxnRequest{
		Compares: []metadata.Compare{
			metadata.CompareVersion(parentKey, metadata.CmpEqual, parentVersion),
			metadata.KeyMissing(childKey),
		},
		Then: []metadata.Op{childOp, parentOp},
	})
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		return true, nil
	}
	if _, ok, err := b.cat.Store().Get(ctx, childKey); err != nil {
		return false, err
	} else if ok {
		return false, catalog.ErrExists
	}
	return false, nil
}

// Namespace describes a namespace.
func (b *Broker) Namespace(ctx context.Context, ns NamespaceName) (NamespaceInfo, error) {
	e, ok, err := b.cat.Namespaces.Get(ctx, ns.catName())
	if err != nil {
		if errors.Is(err, catalog.ErrInvalidName) {
			return NamespaceInfo{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return NamespaceInfo{}, wrapMeta("get namespace", err)
	}
	if !ok {
		return NamespaceInfo{}, fmt.Errorf("%w: %s", ErrNamespaceNotFound, ns)
	}
	return namespaceInfo(e.Name, e.Value), nil
}

func namespaceInfo(n catalog.NamespaceName, v *catalogpb.Namespace) NamespaceInfo {
	return NamespaceInfo{Name: NamespaceName(n), Bundles: v.Bundles, Policies: v.Policies, Created: time.UnixMilli(v.CreatedUnixMs)}
}

// ListNamespaces lists a tenant's namespaces in name order
// (ErrTenantNotFound if the tenant does not exist).
func (b *Broker) ListNamespaces(ctx context.Context, tenant string) ([]NamespaceInfo, error) {
	if _, err := b.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	var out []NamespaceInfo
	var page catalog.Page
	for {
		l, err := b.cat.Namespaces.List(ctx, tenant, page)
		if err != nil {
			return nil, wrapMeta("list namespaces", err)
		}
		for _, e := range l.Entries {
			out = append(out, namespaceInfo(e.Name, e.Value))
		}
		if l.Next == "" {
			return out, nil
		}
		page.After = l.Next
	}
}

// DeleteNamespace deletes a namespace that has no topics (ErrNotEmpty
// otherwise). Creating a topic rewrites its namespace's row, so a topic
// created while the delete runs makes the delete look again.
func (b *Broker) DeleteNamespace(ctx context.Context, ns NamespaceName) error {
	for {
		e, ok, err := b.cat.Namespaces.Get(ctx, ns.catName())
		if err != nil {
			return wrapMeta("delete namespace", err)
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrNamespaceNotFound, ns)
		}
		l, err := b.cat.Topics.List(ctx, ns.catName(), catalog.Page{Limit: 1})
		if err != nil {
			return wrapMeta("delete namespace", err)
		}
		if len(l.Entries) > 0 {
			return fmt.Errorf("%w: namespace %s has topics (%s, ...); delete them first", ErrNotEmpty, ns, l.Entries[0].Name.Topic)
		}
		err = b.cat.Namespaces.Delete(ctx, ns.catName(), e.Version)
		if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound) {
			continue
		}
		if err != nil {
			return wrapMeta("delete namespace", err)
		}
		b.pol.invalidateNamespace(ns)
		b.log.Info("namespace deleted", "namespace", ns.String())
		return nil
	}
}

// EnsureNamespace creates the namespace and its tenant if they do not
// exist; existing ones are left as they are. The broker does this for its
// default namespace when it starts; protocol adapters with a namespace of
// their own (Kafka's) do it for theirs.
func (b *Broker) EnsureNamespace(ctx context.Context, ns NamespaceName) error {
	if err := b.CreateTenant(ctx, ns.Tenant, nil); err != nil && !errors.Is(err, ErrTenantExists) {
		return err
	}
	err := b.CreateNamespace(ctx, ns, NamespaceOptions{})
	if err != nil && !errors.Is(err, ErrNamespaceExists) {
		return err
	}
	return nil
}

// defaultNamespace is the namespace of bare topic names.
func (b *Broker) defaultNamespace() NamespaceName {
	t, ns, _ := strings.Cut(b.cfg.DefaultNamespace, "/")
	return NamespaceName{t, ns}
}

// createTopicRow creates the topic row in its namespace. The Txn that
// writes it also rewrites the namespace's row as read (see casCreate), so
// with a max_topics policy the count taken before it is exact: a topic
// created by anyone after the namespace was read fails the Txn, and the
// creation starts over with a new count.
func (b *Broker) createTopicRow(ctx context.Context, name TopicName, row *catalogpb.Topic) error {
	nsName := name.NamespaceName()
	ensured := false
	for {
		ns, ok, err := b.cat.Namespaces.Get(ctx, nsName.catName())
		if err != nil {
			return wrapMeta("create topic", err)
		}
		if !ok {
			if nsName == b.defaultNamespace() && !ensured {
				ensured = true
				if err := b.EnsureNamespace(ctx, nsName); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%w: %s (create it first, e.g. magctl namespaces create %s)", ErrNamespaceNotFound, nsName, nsName)
		}
		if limit := b.ResolvePolicies(ns.Value.Policies, nil).MaxTopics; limit > 0 {
			n, err := b.countTopics(ctx, nsName, int(limit))
			if err != nil {
				return err
			}
			if n >= int(limit) {
				return fmt.Errorf("%w: %s has %d topics, the limit is %d", ErrTooManyTopics, nsName, n, limit)
			}
		}
		nk, err := b.cat.Namespaces.Key(nsName.catName())
		if err != nil {
			return err
		}
		tk, err := b.cat.Topics.Key(name.catName())
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidTopicName, err)
		}
		nop, err := b.cat.Namespaces.PutOp(nsName.catName(), ns.Value)
		if err != nil {
			return err
		}
		top, err := b.cat.Topics.PutOp(name.catName(), row)
		if err != nil {
			return err
		}
		done, err := b.casCreate(ctx, nk, ns.Version, tk, nop, top)
		if errors.Is(err, catalog.ErrExists) {
			return fmt.Errorf("%w: %s", ErrTopicExists, name)
		}
		if err != nil {
			return wrapMeta("create topic", err)
		}
		if done {
			return nil
		}
	}
}

// countTopics counts the namespace's topics, stopping at limit.
func (b *Broker) countTopics(ctx context.Context, ns NamespaceName, limit int) (int, error) {
	n := 0
	page := catalog.Page{Limit: min(limit, catalog.DefaultPageSize)}
	for n < limit {
		l, err := b.cat.Topics.List(ctx, ns.catName(), page)
		if err != nil {
			return 0, wrapMeta("count topics", err)
		}
		n += len(l.Entries)
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	return n, nil
}
