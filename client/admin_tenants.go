package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// TenantInfo is a tenant as the admin API describes it.
type TenantInfo struct {
	Name          string   `json:"name"`
	AdminRoles    []string `json:"admin_roles,omitempty"`
	CreatedUnixMs int64    `json:"created_unix_ms"`
}

// NamespaceInfo is a namespace with the policies set on it.
type NamespaceInfo struct {
	Name          string   `json:"name"`
	Bundles       uint32   `json:"bundles"` // 0: the broker's default
	Policies      Policies `json:"policies"`
	CreatedUnixMs int64    `json:"created_unix_ms"`
}

// NamespaceOptions are a new namespace's settings.
type NamespaceOptions struct {
	Bundles  uint32    `json:"bundles,omitempty"`
	Policies *Policies `json:"policies,omitempty"`
}

// Policies are a namespace's policies or a topic's overrides: a nil field
// is not set (it inherits: from the namespace, then the broker's default).
// Times are in milliseconds, sizes in bytes, rates per second; -1 means
// unlimited where a limit is meant. BacklogQuotaAction is
// producer_request_hold, producer_exception or consumer_backlog_eviction.
type Policies struct {
	RetentionMs           *int64  `json:"retention_ms,omitempty"`
	RetentionBytes        *int64  `json:"retention_bytes,omitempty"`
	MessageTTLMs          *int64  `json:"message_ttl_ms,omitempty"`
	BacklogQuotaBytes     *int64  `json:"backlog_quota_bytes,omitempty"`
	BacklogQuotaAction    *string `json:"backlog_quota_action,omitempty"`
	MaxTopics             *int32  `json:"max_topics,omitempty"`
	PublishRateMsgs       *int64  `json:"publish_rate_msgs,omitempty"`
	PublishRateBytes      *int64  `json:"publish_rate_bytes,omitempty"`
	AutoTopicCreation     *bool   `json:"auto_topic_creation,omitempty"`
	AutoTopicPartitions   *int32  `json:"auto_topic_partitions,omitempty"`
	OffloadThresholdBytes *int64  `json:"offload_threshold_bytes,omitempty"`
}

// PolicyNames are the names of the policies, as RemoveNamespacePolicies
// and RemoveTopicPolicies take them (the JSON field names of Policies).
var PolicyNames = []string{
	"retention_ms", "retention_bytes", "message_ttl_ms", "backlog_quota_bytes",
	"backlog_quota_action", "max_topics", "publish_rate_msgs", "publish_rate_bytes",
	"auto_topic_creation", "auto_topic_partitions", "offload_threshold_bytes",
}

// PoliciesInfo is what a namespace or topic has set, for a topic what its
// namespace sets, and the effective policies (every field set).
type PoliciesInfo struct {
	Policies  Policies  `json:"policies"`
	Namespace *Policies `json:"namespace,omitempty"`
	Effective Policies  `json:"effective"`
}

// CreateTenant creates a tenant.
func (a *Admin) CreateTenant(ctx context.Context, tenant string, adminRoles []string) (TenantInfo, error) {
	var t TenantInfo
	err := a.do(ctx, http.MethodPut, "/admin/v1/tenants/"+url.PathEscape(tenant), map[string][]string{"admin_roles": adminRoles}, &t)
	return t, err
}

// Tenant describes a tenant.
func (a *Admin) Tenant(ctx context.Context, tenant string) (TenantInfo, error) {
	var t TenantInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/tenants/"+url.PathEscape(tenant), nil, &t)
	return t, err
}

// ListTenants lists every tenant.
func (a *Admin) ListTenants(ctx context.Context) ([]TenantInfo, error) {
	var ts []TenantInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/tenants", nil, &ts)
	return ts, err
}

// DeleteTenant deletes a tenant that has no namespaces.
func (a *Admin) DeleteTenant(ctx context.Context, tenant string) error {
	return a.do(ctx, http.MethodDelete, "/admin/v1/tenants/"+url.PathEscape(tenant), nil, nil)
}

// CreateNamespace creates a namespace (tenant/namespace) in an existing
// tenant.
func (a *Admin) CreateNamespace(ctx context.Context, namespace string, opts NamespaceOptions) (NamespaceInfo, error) {
	var n NamespaceInfo
	err := a.do(ctx, http.MethodPut, "/admin/v1/namespaces/"+topicPath(namespace), opts, &n)
	return n, err
}

// Namespace describes a namespace.
func (a *Admin) Namespace(ctx context.Context, namespace string) (NamespaceInfo, error) {
	var n NamespaceInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/namespaces/"+topicPath(namespace), nil, &n)
	return n, err
}

// ListNamespaces lists a tenant's namespaces.
func (a *Admin) ListNamespaces(ctx context.Context, tenant string) ([]NamespaceInfo, error) {
	var ns []NamespaceInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/namespaces/"+url.PathEscape(tenant), nil, &ns)
	return ns, err
}

// DeleteNamespace deletes a namespace that has no topics.
func (a *Admin) DeleteNamespace(ctx context.Context, namespace string) error {
	return a.do(ctx, http.MethodDelete, "/admin/v1/namespaces/"+topicPath(namespace), nil, nil)
}

// NamespacePolicies returns the namespace's policies and the effective
// ones.
func (a *Admin) NamespacePolicies(ctx context.Context, namespace string) (PoliciesInfo, error) {
	return a.policies(ctx, http.MethodGet, namespacePoliciesPath(namespace), nil)
}

// SetNamespacePolicies sets the policies that set has (non-nil fields) on
// the namespace, leaving the others as they are.
func (a *Admin) SetNamespacePolicies(ctx context.Context, namespace string, set Policies) (PoliciesInfo, error) {
	return a.policies(ctx, http.MethodPut, namespacePoliciesPath(namespace), set)
}

// RemoveNamespacePolicies unsets the named policies (PolicyNames) on the
// namespace, so they inherit the broker's defaults again; with no names,
// every policy.
func (a *Admin) RemoveNamespacePolicies(ctx context.Context, namespace string, names ...string) (PoliciesInfo, error) {
	return a.policies(ctx, http.MethodDelete, namespacePoliciesPath(namespace)+removeQuery(names), nil)
}

// TopicPolicies returns the topic's overrides, its namespace's policies and
// the effective ones.
func (a *Admin) TopicPolicies(ctx context.Context, topic string) (PoliciesInfo, error) {
	return a.policies(ctx, http.MethodGet, "/admin/v1/policies/topics/"+topicPath(topic), nil)
}

// SetTopicPolicies sets overrides on the topic, leaving the others as
// they are. Namespace-wide policies (max topics, auto topic creation)
// cannot be set on a topic.
func (a *Admin) SetTopicPolicies(ctx context.Context, topic string, set Policies) (PoliciesInfo, error) {
	return a.policies(ctx, http.MethodPut, "/admin/v1/policies/topics/"+topicPath(topic), set)
}

// RemoveTopicPolicies removes the named overrides (every one with no
// names), so the topic inherits its namespace's policies again.
func (a *Admin) RemoveTopicPolicies(ctx context.Context, topic string, names ...string) (PoliciesInfo, error) {
	return a.policies(ctx, http.MethodDelete, "/admin/v1/policies/topics/"+topicPath(topic)+removeQuery(names), nil)
}

func (a *Admin) policies(ctx context.Context, method, path string, in any) (PoliciesInfo, error) {
	var p PoliciesInfo
	err := a.do(ctx, method, path, in, &p)
	return p, err
}

func namespacePoliciesPath(namespace string) string {
	return "/admin/v1/namespaces/" + topicPath(strings.TrimSuffix(namespace, "/")) + "/policies"
}

func removeQuery(names []string) string {
	if len(names) == 0 {
		return ""
	}
	q := url.Values{"policy": names}
	return "?" + q.Encode()
}
