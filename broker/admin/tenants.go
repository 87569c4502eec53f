package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Tenant is the JSON form of a tenant.
type Tenant struct {
	Name          string   `json:"name"`
	AdminRoles    []string `json:"admin_roles,omitempty"`
	CreatedUnixMs int64    `json:"created_unix_ms"`
}

// CreateTenantRequest is the (optional) body of a tenant create.
type CreateTenantRequest struct {
	AdminRoles []string `json:"admin_roles,omitempty"`
}

// Namespace is the JSON form of a namespace.
type Namespace struct {
	Name string `json:"name"`
	// Bundles is 0 when the namespace uses the broker's default.
	Bundles       uint32   `json:"bundles"`
	Policies      Policies `json:"policies"`
	CreatedUnixMs int64    `json:"created_unix_ms"`
}

// CreateNamespaceRequest is the (optional) body of a namespace create.
type CreateNamespaceRequest struct {
	Bundles  uint32    `json:"bundles,omitempty"`
	Policies *Policies `json:"policies,omitempty"`
}

// Policies is the JSON form of stored policies: an absent field is not set
// (it inherits). Times are in milliseconds, sizes in bytes, rates per
// second; -1 means unlimited where a limit is meant. See docs/tenants.md.
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

// PoliciesDoc answers the policies endpoints: what is set at this level,
// for a topic what its namespace sets, and the effective result (every
// field set).
type PoliciesDoc struct {
	Policies  Policies  `json:"policies"`
	Namespace *Policies `json:"namespace,omitempty"`
	Effective Policies  `json:"effective"`
}

func registerTenants(mux *http.ServeMux, h *handler) {
	h.handle(mux, "GET /admin/v1/tenants", filtered, h.listTenants)
	h.handle(mux, "PUT /admin/v1/tenants/{tenant}", cluster, h.createTenant)
	h.handle(mux, "GET /admin/v1/tenants/{tenant}", tenantAdmin, h.getTenant)
	h.handle(mux, "DELETE /admin/v1/tenants/{tenant}", cluster, h.deleteTenant)
	h.handle(mux, "GET /admin/v1/namespaces/{tenant}", filtered, h.listNamespaces)
	h.handle(mux, "PUT /admin/v1/namespaces/{tenant}/{ns}", tenantAdmin, h.createNamespace)
	h.handle(mux, "GET /admin/v1/namespaces/{tenant}/{ns}", onNamespace(anyAction), h.getNamespace)
	h.handle(mux, "DELETE /admin/v1/namespaces/{tenant}/{ns}", tenantAdmin, h.deleteNamespace)
	h.handle(mux, "GET /admin/v1/namespaces/{tenant}/{ns}/policies", onNamespace(anyAction), h.namespacePolicies)
	h.handle(mux, "PUT /admin/v1/namespaces/{tenant}/{ns}/policies", tenantAdmin, h.setNamespacePolicies)
	h.handle(mux, "PATCH /admin/v1/namespaces/{tenant}/{ns}/policies", tenantAdmin, h.setNamespacePolicies)
	h.handle(mux, "DELETE /admin/v1/namespaces/{tenant}/{ns}/policies", tenantAdmin, h.setNamespacePolicies)
	h.handle(mux, "GET /admin/v1/policies/topics/{name...}", onTopic(anyAction), h.topicPolicies)
	h.handle(mux, "PUT /admin/v1/policies/topics/{name...}", onTopic(broker.ActionAdmin), h.setTopicPolicies)
	h.handle(mux, "PATCH /admin/v1/policies/topics/{name...}", onTopic(broker.ActionAdmin), h.setTopicPolicies)
	h.handle(mux, "DELETE /admin/v1/policies/topics/{name...}", onTopic(broker.ActionAdmin), h.setTopicPolicies)
}

func (h *handler) listTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := h.b.ListTenants(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	out := make([]Tenant, 0, len(ts))
	for _, t := range ts {
		ok, err := allowed(h.b.AuthorizeTenant(r.Context(), t.Name))
		if err != nil {
			h.fail(w, err)
			return
		}
		if ok {
			out = append(out, tenantJSON(t))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func tenantJSON(t broker.TenantInfo) Tenant {
	return Tenant{Name: t.Name, AdminRoles: t.AdminRoles, CreatedUnixMs: t.Created.UnixMilli()}
}

func (h *handler) createTenant(w http.ResponseWriter, r *http.Request) {
	var req CreateTenantRequest
	if err := readBody(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	name := r.PathValue("tenant")
	if err := h.b.CreateTenant(r.Context(), name, req.AdminRoles); err != nil {
		h.fail(w, err)
		return
	}
	t, err := h.b.Tenant(r.Context(), name)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, tenantJSON(t))
}

func (h *handler) getTenant(w http.ResponseWriter, r *http.Request) {
	t, err := h.b.Tenant(r.Context(), r.PathValue("tenant"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tenantJSON(t))
}

func (h *handler) deleteTenant(w http.ResponseWriter, r *http.Request) {
	if err := h.b.DeleteTenant(r.Context(), r.PathValue("tenant")); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listNamespaces(w http.ResponseWriter, r *http.Request) {
	ns, err := h.b.ListNamespaces(r.Context(), r.PathValue("tenant"))
	if err != nil {
		h.fail(w, err)
		return
	}
	out := make([]Namespace, 0, len(ns))
	for _, n := range ns {
		ok, err := allowed(h.b.AuthorizeNamespace(r.Context(), n.Name, anyAction))
		if err != nil {
			h.fail(w, err)
			return
		}
		if ok {
			out = append(out, namespaceJSON(n))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func namespaceJSON(n broker.NamespaceInfo) Namespace {
	return Namespace{Name: n.Name.String(), Bundles: n.Bundles, Policies: policiesJSON(n.Policies), CreatedUnixMs: n.Created.UnixMilli()}
}

func namespaceOf(r *http.Request) (broker.NamespaceName, error) {
	return broker.ParseNamespaceName(r.PathValue("tenant") + "/" + r.PathValue("ns"))
}

func (h *handler) createNamespace(w http.ResponseWriter, r *http.Request) {
	ns, err := namespaceOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	var req CreateNamespaceRequest
	if err := readBody(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	opts := broker.NamespaceOptions{Bundles: req.Bundles}
	if req.Policies != nil {
		if opts.Policies, err = req.Policies.proto(); err != nil {
			h.fail(w, err)
			return
		}
	}
	if err := h.b.CreateNamespace(r.Context(), ns, opts); err != nil {
		h.fail(w, err)
		return
	}
	info, err := h.b.Namespace(r.Context(), ns)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, namespaceJSON(info))
}

func (h *handler) getNamespace(w http.ResponseWriter, r *http.Request) {
	ns, err := namespaceOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	info, err := h.b.Namespace(r.Context(), ns)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, namespaceJSON(info))
}

func (h *handler) deleteNamespace(w http.ResponseWriter, r *http.Request) {
	ns, err := namespaceOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.b.DeleteNamespace(r.Context(), ns); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) namespacePolicies(w http.ResponseWriter, r *http.Request) {
	ns, err := namespaceOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	pol, err := h.b.NamespacePolicies(r.Context(), ns)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, PoliciesDoc{Policies: policiesJSON(pol), Effective: policiesJSON(h.b.ResolvePolicies(pol, nil).Policies())})
}

// setNamespacePolicies changes the namespace's policies: PUT and PATCH
// take a JSON merge patch (RFC 7396: a field with a value sets it, a field
// with null removes it, an absent field is left alone); DELETE removes the
// policies named by ?policy= (every one without it).
func (h *handler) setNamespacePolicies(w http.ResponseWriter, r *http.Request) {
	ns, err := namespaceOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	upd, err := policyUpdateOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	pol, err := h.b.SetNamespacePolicies(r.Context(), ns, upd)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, PoliciesDoc{Policies: policiesJSON(pol), Effective: policiesJSON(h.b.ResolvePolicies(pol, nil).Policies())})
}

func (h *handler) topicPolicies(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	h.writeTopicPolicies(w, r, name, http.StatusOK)
}

func (h *handler) writeTopicPolicies(w http.ResponseWriter, r *http.Request, name broker.TopicName, code int) {
	tp, np, err := h.b.TopicPolicies(r.Context(), name)
	if err != nil {
		h.fail(w, err)
		return
	}
	nsJSON := policiesJSON(np)
	writeJSON(w, code, PoliciesDoc{Policies: policiesJSON(tp), Namespace: &nsJSON, Effective: policiesJSON(h.b.ResolvePolicies(np, tp).Policies())})
}

// setTopicPolicies is setNamespacePolicies for a topic's overrides.
func (h *handler) setTopicPolicies(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	upd, err := policyUpdateOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	if _, err := h.b.SetTopicPolicies(r.Context(), name, upd); err != nil {
		h.fail(w, err)
		return
	}
	h.writeTopicPolicies(w, r, name, http.StatusOK)
}

// policyUpdateOf reads a policy change: a merge patch body (PUT, PATCH) or
// ?policy= names to remove (DELETE; none: remove every policy).
func policyUpdateOf(r *http.Request) (broker.PolicyUpdate, error) {
	if r.Method == http.MethodDelete {
		names := r.URL.Query()["policy"]
		if len(names) == 0 {
			names = broker.PolicyNames
		}
		return broker.PolicyUpdate{Remove: names}, nil
	}
	body, err := readAll(r)
	if err != nil {
		return broker.PolicyUpdate{}, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return broker.PolicyUpdate{}, fmt.Errorf("%w: request body: want a JSON object of policies: %v", broker.ErrInvalidArgument, err)
	}
	var p Policies
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return broker.PolicyUpdate{}, fmt.Errorf("%w: request body: %v", broker.ErrInvalidArgument, err)
	}
	var upd broker.PolicyUpdate
	for name, v := range fields {
		if string(bytes.TrimSpace(v)) == "null" {
			upd.Remove = append(upd.Remove, name)
		}
	}
	slices.Sort(upd.Remove)
	if upd.Set, err = p.proto(); err != nil {
		return broker.PolicyUpdate{}, err
	}
	return upd, nil
}

// readBody decodes an optional JSON body into v.
func readBody(r *http.Request, v any) error {
	body, err := readAll(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", broker.ErrInvalidArgument, err)
	}
	return nil
}

// proto converts the JSON form to stored policies.
func (p Policies) proto() (*catalogpb.Policies, error) {
	out := &catalogpb.Policies{
		RetentionMs:           p.RetentionMs,
		RetentionBytes:        p.RetentionBytes,
		MessageTtlMs:          p.MessageTTLMs,
		BacklogQuotaBytes:     p.BacklogQuotaBytes,
		MaxTopics:             p.MaxTopics,
		PublishRateMsgs:       p.PublishRateMsgs,
		PublishRateBytes:      p.PublishRateBytes,
		AutoTopicPartitions:   p.AutoTopicPartitions,
		OffloadThresholdBytes: p.OffloadThresholdBytes,
	}
	if p.BacklogQuotaAction != nil {
		a, err := broker.ParseBacklogQuotaAction(*p.BacklogQuotaAction)
		if err != nil {
			return nil, err
		}
		out.BacklogQuotaAction = a
	}
	if p.AutoTopicCreation != nil {
		out.AutoTopicCreation = catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_DISABLED
		if *p.AutoTopicCreation {
			out.AutoTopicCreation = catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_ENABLED
		}
	}
	return out, nil
}

// policiesJSON converts stored policies to their JSON form.
func policiesJSON(p *catalogpb.Policies) Policies {
	if p == nil {
		return Policies{}
	}
	out := Policies{
		RetentionMs:           p.RetentionMs,
		RetentionBytes:        p.RetentionBytes,
		MessageTTLMs:          p.MessageTtlMs,
		BacklogQuotaBytes:     p.BacklogQuotaBytes,
		MaxTopics:             p.MaxTopics,
		PublishRateMsgs:       p.PublishRateMsgs,
		PublishRateBytes:      p.PublishRateBytes,
		AutoTopicPartitions:   p.AutoTopicPartitions,
		OffloadThresholdBytes: p.OffloadThresholdBytes,
	}
	if n := broker.BacklogQuotaActionName(p.BacklogQuotaAction); n != "" {
		out.BacklogQuotaAction = proto.String(n)
	}
	switch p.AutoTopicCreation {
	case catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_ENABLED:
		out.AutoTopicCreation = proto.Bool(true)
	case catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_DISABLED:
		out.AutoTopicCreation = proto.Bool(false)
	}
	return out
}
