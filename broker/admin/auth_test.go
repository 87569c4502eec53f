package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// asRole serves mux with every request's principal set to role, as the
// Authenticated middleware does after checking a token.
func asRole(t *testing.T, b *broker.Broker, role string) *api {
	mux := http.NewServeMux()
	register(mux, b, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Role: role, Method: auth.MethodToken})))
	}))
	t.Cleanup(srv.Close)
	return &api{t, srv}
}

// TestEveryAdminRouteRefusesARoleWithoutPermission sends every route of
// the API, as a role that was granted nothing, to a broker that checks
// permissions: each is refused (403), but for the lists, which answer with
// nothing in them. A route added without a guard fails here.
func TestEveryAdminRouteRefusesARoleWithoutPermission(t *testing.T) {
	meta := metadatatest.NewStore()
	cfg := broker.DefaultConfig()
	cfg.Authorization = broker.AuthzConfig{Enabled: true, SuperUserRoles: "root"}
	b, err := broker.New(cfg, meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		meta.Close()
	})
	root := asRole(t, b, "root")
	root.call("PUT", "/admin/v1/tenants/acme", `{"admin_roles": ["acme-admin"]}`, http.StatusCreated)
	root.call("PUT", "/admin/v1/namespaces/acme/iot", "", http.StatusCreated)
	root.call("PUT", "/admin/v1/topics/acme/iot/t", "", http.StatusCreated)

	nobody := asRole(t, b, "nobody")
	routes := []struct{ method, path, body string }{
		{"PUT", "/admin/v1/topics/acme/iot/u", ""},
		{"GET", "/admin/v1/topics/acme/iot/t", ""},
		{"DELETE", "/admin/v1/topics/acme/iot/t", ""},
		{"GET", "/admin/v1/stats/topics/acme/iot/t", ""},
		{"GET", "/admin/v1/bookies", ""},
		{"GET", "/admin/v1/shards", ""},
		{"GET", "/admin/v1/brokers", ""},
		{"GET", "/admin/v1/bundles/acme/iot", ""},
		{"POST", "/admin/v1/bundles/acme/iot/0x00000000_0xffffffff/unload", ""},
		{"GET", "/admin/v1/subscriptions/acme/iot/t", ""},
		{"PUT", "/admin/v1/subscriptions/acme/iot/t?subscription=s", ""},
		{"DELETE", "/admin/v1/subscriptions/acme/iot/t?subscription=s", ""},
		{"POST", "/admin/v1/subscriptions/acme/iot/t?subscription=s", `{"action": "skip", "count": 1}`},
		{"GET", "/admin/v1/internal-stats/topics/acme/iot/t", ""},
		{"PUT", "/admin/v1/tenants/evil", ""},
		{"GET", "/admin/v1/tenants/acme", ""},
		{"DELETE", "/admin/v1/tenants/acme", ""},
		{"PUT", "/admin/v1/namespaces/acme/other", ""},
		{"GET", "/admin/v1/namespaces/acme/iot", ""},
		{"DELETE", "/admin/v1/namespaces/acme/iot", ""},
		{"GET", "/admin/v1/namespaces/acme/iot/policies", ""},
		{"PUT", "/admin/v1/namespaces/acme/iot/policies", `{"message_ttl_ms": 1}`},
		{"PATCH", "/admin/v1/namespaces/acme/iot/policies", `{"message_ttl_ms": 1}`},
		{"DELETE", "/admin/v1/namespaces/acme/iot/policies", ""},
		{"GET", "/admin/v1/policies/topics/acme/iot/t", ""},
		{"PUT", "/admin/v1/policies/topics/acme/iot/t", `{"message_ttl_ms": 1}`},
		{"PATCH", "/admin/v1/policies/topics/acme/iot/t", `{"message_ttl_ms": 1}`},
		{"DELETE", "/admin/v1/policies/topics/acme/iot/t", ""},
		{"GET", "/admin/v1/namespaces/acme/iot/permissions", ""},
		{"PUT", "/admin/v1/namespaces/acme/iot/permissions/nobody", `{"actions": ["admin"]}`},
		{"DELETE", "/admin/v1/namespaces/acme/iot/permissions/x", ""},
		{"GET", "/admin/v1/permissions/topics/acme/iot/t", ""},
		{"PUT", "/admin/v1/permissions/topics/acme/iot/t?role=nobody", `{"actions": ["admin"]}`},
		{"DELETE", "/admin/v1/permissions/topics/acme/iot/t?role=x", ""},
	}
	for _, r := range routes {
		nobody.call(r.method, r.path, r.body, http.StatusForbidden)
	}
	lists := []string{"/admin/v1/topics", "/admin/v1/tenants", "/admin/v1/namespaces/acme"}
	if n := len(register(http.NewServeMux(), b, nil).routes); n != len(routes)+len(lists) {
		t.Fatalf("the API has %d routes and this test sends %d: send the new ones", n, len(routes)+len(lists))
	}
	for _, list := range lists {
		var got []json.RawMessage
		if err := json.Unmarshal([]byte(nobody.call("GET", list, "", http.StatusOK)), &got); err != nil || len(got) != 0 {
			t.Errorf("GET %s as a role granted nothing: %s, %v; want []", list, got, err)
		}
	}

	// The tenant's admin may do what is the tenant's, and nothing of the
	// cluster's.
	admin := asRole(t, b, "acme-admin")
	admin.call("PUT", "/admin/v1/namespaces/acme/iot/permissions/app", `{"actions": ["consume"]}`, http.StatusNoContent)
	if got := admin.call("GET", "/admin/v1/namespaces/acme/iot/permissions", "", http.StatusOK); !strings.Contains(got, `"app":["consume"]`) {
		t.Fatalf("permissions = %s", got)
	}
	admin.call("GET", "/admin/v1/bookies", "", http.StatusForbidden)
	app := asRole(t, b, "app")
	app.call("GET", "/admin/v1/stats/topics/acme/iot/t", "", http.StatusOK)
	app.call("DELETE", "/admin/v1/topics/acme/iot/t", "", http.StatusForbidden)
}
