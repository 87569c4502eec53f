package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/magnetar-mq/magnetar/client/adminapi"
)

// Permissions are the grants on a namespace or a topic: role -> actions
// (produce, consume, admin).
type Permissions = adminapi.Permissions

// NamespacePermissions returns the grants on a namespace (tenant/ns).
func (a *Admin) NamespacePermissions(ctx context.Context, namespace string) (Permissions, error) {
	var p Permissions
	err := a.do(ctx, http.MethodGet, "/admin/v1/namespaces/"+namespacePath(namespace)+"/permissions", nil, &p)
	return p, err
}

// GrantNamespacePermission gives role exactly actions (produce, consume,
// admin) on every topic of the namespace, replacing what it had.
func (a *Admin) GrantNamespacePermission(ctx context.Context, namespace, role string, actions []string) error {
	return a.do(ctx, http.MethodPut, "/admin/v1/namespaces/"+namespacePath(namespace)+"/permissions/"+url.PathEscape(role),
		adminapi.GrantRequest{Actions: actions}, nil)
}

// RevokeNamespacePermission takes back what role was granted on the
// namespace.
func (a *Admin) RevokeNamespacePermission(ctx context.Context, namespace, role string) error {
	return a.do(ctx, http.MethodDelete, "/admin/v1/namespaces/"+namespacePath(namespace)+"/permissions/"+url.PathEscape(role), nil, nil)
}

// TopicPermissions returns the grants on a topic (its namespace's apply
// too).
func (a *Admin) TopicPermissions(ctx context.Context, topic string) (Permissions, error) {
	var p Permissions
	err := a.do(ctx, http.MethodGet, "/admin/v1/permissions/topics/"+topicPath(topic), nil, &p)
	return p, err
}

// GrantTopicPermission gives role exactly actions on the topic, replacing
// what it had there.
func (a *Admin) GrantTopicPermission(ctx context.Context, topic, role string, actions []string) error {
	return a.do(ctx, http.MethodPut, "/admin/v1/permissions/topics/"+topicPath(topic)+"?role="+url.QueryEscape(role),
		adminapi.GrantRequest{Actions: actions}, nil)
}

// RevokeTopicPermission takes back what role was granted on the topic.
func (a *Admin) RevokeTopicPermission(ctx context.Context, topic, role string) error {
	return a.do(ctx, http.MethodDelete, "/admin/v1/permissions/topics/"+topicPath(topic)+"?role="+url.QueryEscape(role), nil, nil)
}
