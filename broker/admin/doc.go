// Package admin serves the broker's admin REST API (JSON over HTTP, on the
// admin port beside /metrics and /healthz):
//
//	GET    /admin/v1/topics[?namespace=tenant/ns]  list topics
//	PUT    /admin/v1/topics/{name}                 create; body {"partitions": N} (default 1)
//	GET    /admin/v1/topics/{name}                 describe
//	DELETE /admin/v1/topics/{name}                 delete, with its data and subscriptions
//	GET    /admin/v1/stats/topics/{name}           offsets, sizes, subscriptions, backlog
//
// Tenants, namespaces and policies (tenants.go; see docs/tenants.md):
//
//	GET    /admin/v1/tenants                           list tenants
//	PUT    /admin/v1/tenants/{tenant}                  create; body {"admin_roles": [...]} (optional)
//	GET    /admin/v1/tenants/{tenant}                  describe
//	DELETE /admin/v1/tenants/{tenant}                  delete; 409 while it has namespaces
//	GET    /admin/v1/namespaces/{tenant}               list the tenant's namespaces
//	PUT    /admin/v1/namespaces/{tenant}/{ns}          create; body {"bundles": N, "policies": {...}} (optional)
//	GET    /admin/v1/namespaces/{tenant}/{ns}          describe, with the policies set on it
//	DELETE /admin/v1/namespaces/{tenant}/{ns}          delete; 409 while it has topics
//	GET    /admin/v1/namespaces/{tenant}/{ns}/policies policies set, and effective (with the broker's defaults)
//	PUT    /admin/v1/namespaces/{tenant}/{ns}/policies change: a JSON merge patch (null removes a policy)
//	DELETE /admin/v1/namespaces/{tenant}/{ns}/policies remove ?policy=NAME (repeatable; none: all)
//	GET|PUT|DELETE /admin/v1/policies/topics/{name}    the same for a topic's overrides
//
// PATCH is accepted wherever PUT changes policies.
//
// {name} is tenant/namespace/topic or a bare topic in the broker's default
// namespace. Errors are {"error": "..."} with the status from
// internal/errmap.
package admin
