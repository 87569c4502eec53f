// Package admin serves the broker's admin REST API (JSON over HTTP, on the
// admin port beside /metrics and /healthz):
//
//	GET    /admin/v1/topics[?namespace=tenant/ns]  list topics
//	PUT    /admin/v1/topics/{name}                 create; body {"partitions": N} (default 1)
//	GET    /admin/v1/topics/{name}                 describe
//	DELETE /admin/v1/topics/{name}                 delete, with its data and subscriptions
//	GET    /admin/v1/stats/topics/{name}           offsets, sizes, subscriptions, backlog
//
// {name} is tenant/namespace/topic or a bare topic in the broker's default
// namespace. Errors are {"error": "..."} with the status from
// internal/errmap.
package admin
