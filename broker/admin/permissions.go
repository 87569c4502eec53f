package admin

import (
	"fmt"
	"net/http"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/client/adminapi"
)

// Permission routes: grants of produce, consume and admin to roles, on a
// namespace (every topic in it) or one topic. Only a superuser or an admin
// role of the tenant reads or changes them, as in Pulsar.
func registerPermissions(mux *http.ServeMux, h *handler) {
	h.handle(mux, "GET /admin/v1/namespaces/{tenant}/{ns}/permissions", tenantAdmin, h.namespacePermissions)
	h.handle(mux, "PUT /admin/v1/namespaces/{tenant}/{ns}/permissions/{role}", tenantAdmin, h.grantNamespace)
	h.handle(mux, "DELETE /admin/v1/namespaces/{tenant}/{ns}/permissions/{role}", tenantAdmin, h.revokeNamespace)
	h.handle(mux, "GET /admin/v1/permissions/topics/{name...}", tenantAdminOfTopic, h.topicPermissions)
	h.handle(mux, "PUT /admin/v1/permissions/topics/{name...}", tenantAdminOfTopic, h.grantTopic)
	h.handle(mux, "DELETE /admin/v1/permissions/topics/{name...}", tenantAdminOfTopic, h.revokeTopic)
}

func permissionsJSON(p broker.Permissions) adminapi.Permissions {
	out := make(adminapi.Permissions, len(p))
	for role, a := range p {
		out[role] = a.Names()
	}
	return out
}

func (h *handler) namespacePermissions(w http.ResponseWriter, r *http.Request) {
	ns, err := namespaceOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	p, err := h.b.NamespacePermissions(r.Context(), ns)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, permissionsJSON(p))
}

// grantActions reads a grant's body.
func grantActions(r *http.Request) (broker.Action, error) {
	var req adminapi.GrantRequest
	if err := readBody(r, &req); err != nil {
		return 0, err
	}
	a, err := broker.ParseActions(req.Actions)
	if err != nil {
		return 0, err
	}
	if a == 0 {
		return 0, fmt.Errorf("%w: a grant names at least one action (produce, consume, admin); DELETE revokes", broker.ErrInvalidArgument)
	}
	return a, nil
}

func (h *handler) setNamespace(w http.ResponseWriter, r *http.Request, a broker.Action) {
	ns, err := namespaceOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.b.SetNamespacePermission(r.Context(), ns, r.PathValue("role"), a); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) grantNamespace(w http.ResponseWriter, r *http.Request) {
	a, err := grantActions(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.setNamespace(w, r, a)
}

func (h *handler) revokeNamespace(w http.ResponseWriter, r *http.Request) { h.setNamespace(w, r, 0) }

func (h *handler) topicPermissions(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	p, err := h.b.TopicPermissions(r.Context(), name)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, permissionsJSON(p))
}

// setTopic grants the ?role= of the request a on the topic (none: revoke).
func (h *handler) setTopic(w http.ResponseWriter, r *http.Request, a broker.Action) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.b.SetTopicPermission(r.Context(), name, r.URL.Query().Get("role"), a); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) grantTopic(w http.ResponseWriter, r *http.Request) {
	a, err := grantActions(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.setTopic(w, r, a)
}

func (h *handler) revokeTopic(w http.ResponseWriter, r *http.Request) { h.setTopic(w, r, 0) }
