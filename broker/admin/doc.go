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
// Subscriptions and internal stats (subscriptions.go; see
// docs/subscriptions.md):
//
//	GET    /admin/v1/subscriptions/{name}                  list every partition's subscriptions
//	PUT    /admin/v1/subscriptions/{name}?subscription=S   create; body {"from": "earliest|latest|offset|time", "offset": N, "time_ms": T, "partition": P}
//	DELETE /admin/v1/subscriptions/{name}?subscription=S   delete (?partition=P: one partition)
//	POST   /admin/v1/subscriptions/{name}?subscription=S   {"action": "reset", "to_offset": N | "to_time_ms": T}, {"action": "skip", "count": N},
//	                                                       {"action": "expire", "older_than_ms": D}; optional "partition": P
//	GET    /admin/v1/internal-stats/topics/{name}          segments and cursors of every partition
//
// Permissions (permissions.go; see docs/security.md), for superusers and
// the tenant's admin roles:
//
//	GET    /admin/v1/namespaces/{tenant}/{ns}/permissions         role -> actions
//	PUT    /admin/v1/namespaces/{tenant}/{ns}/permissions/{role}  grant; body {"actions": ["produce", "consume", "admin"]}
//	DELETE /admin/v1/namespaces/{tenant}/{ns}/permissions/{role}  revoke
//	GET|PUT|DELETE /admin/v1/permissions/topics/{name}[?role=R]   the same for one topic
//
// With authentication on, every route needs a bearer token or a verified
// client certificate (Authenticated), and each has a guard (auth.go) that
// asks the broker's authorization: cluster routes are for superusers.
//
// {name} is tenant/namespace/topic or a bare topic in the broker's default
// namespace. Errors are {"error": "..."} with the status from
// internal/errmap.
package admin
