package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// adminSeeds are requests as magctl and the admin tests make them.
var adminSeeds = []struct{ method, path, query, body string }{
	{"GET", "/admin/v1/topics", "namespace=public/default", ""},
	{"PUT", "/admin/v1/topics/public/default/orders", "", `{"partitions":2}`},
	{"GET", "/admin/v1/topics/persistent://public/default/orders", "", ""},
	{"GET", "/admin/v1/stats/topics/orders", "", ""},
	{"DELETE", "/admin/v1/topics/orders", "", ""},
	{"GET", "/admin/v1/bookies", "", ""},
	{"GET", "/admin/v1/shards", "", ""},
	{"GET", "/admin/v1/brokers", "", ""},
	{"GET", "/admin/v1/bundles/public/default", "", ""},
	{"POST", "/admin/v1/bundles/public/default/00000000-ffffffff/unload", "", ""},
	{"PUT", "/admin/v1/tenants/acme", "", `{"admin_roles":["ops"]}`},
	{"GET", "/admin/v1/tenants", "", ""},
	{"DELETE", "/admin/v1/tenants/acme", "", ""},
	{"PUT", "/admin/v1/namespaces/acme/app", "", `{"bundles":4,"policies":{"retention_ms":3600000,"max_topics":10}}`},
	{"GET", "/admin/v1/namespaces/acme", "", ""},
	{"GET", "/admin/v1/namespaces/public/default/policies", "", ""},
	{"PATCH", "/admin/v1/namespaces/public/default/policies", "", `{"message_ttl_ms":60000,"backlog_quota_action":"producer_exception","retention_bytes":null}`},
	{"DELETE", "/admin/v1/namespaces/public/default/policies", "policy=message_ttl_ms", ""},
	{"PUT", "/admin/v1/policies/topics/orders", "", `{"publish_rate_msgs":100}`},
	{"GET", "/admin/v1/subscriptions/orders", "", ""},
	{"PUT", "/admin/v1/subscriptions/orders", "subscription=audit", `{"from":"earliest","partition":1}`},
	{"POST", "/admin/v1/subscriptions/orders", "subscription=audit", `{"action":"reset","to_offset":0}`},
	{"POST", "/admin/v1/subscriptions/orders", "subscription=audit", `{"action":"skip","count":5}`},
	{"POST", "/admin/v1/subscriptions/orders", "subscription=audit", `{"action":"expire","older_than_ms":1000}`},
	{"DELETE", "/admin/v1/subscriptions/orders", "subscription=audit&partition=0", ""},
	{"GET", "/admin/v1/internal-stats/topics/orders", "", ""},
	{"GET", "/admin/v1/namespaces/public/default/permissions", "", ""},
	{"PUT", "/admin/v1/namespaces/public/default/permissions/app", "", `{"actions":["produce","consume"]}`},
	{"DELETE", "/admin/v1/namespaces/public/default/permissions/app", "", ""},
	{"PUT", "/admin/v1/permissions/topics/orders", "role=app", `{"actions":["admin"]}`},
}

// FuzzAdminRequest sends any method, path, query and body to the admin
// routes of a broker on fake stores. A request a route takes is answered
// 2xx, or 4xx with a JSON Error saying why: nothing that comes from the
// client may make a route panic or answer 5xx (the stores never fail
// here), or run past its deadline. Requests no route takes get the mux's
// own 404 or 405, and a path to clean its redirect.
func FuzzAdminRequest(f *testing.F) {
	for _, s := range adminSeeds {
		f.Add(s.method, s.path, s.query, []byte(s.body))
	}
	meta := metadatatest.NewStore()
	b, err := broker.New(broker.DefaultConfig(), meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		b.Close()
		meta.Close()
	})
	mux := http.NewServeMux()
	Register(mux, b, nil)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		u := &url.URL{Path: path, RawQuery: query}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return // not a request an HTTP server would parse
		}
		req.RequestURI = u.RequestURI()
		if _, pattern := mux.Handler(req); pattern == "" {
			return // the mux answers 404 or 405 itself
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if ctx.Err() != nil {
			t.Fatalf("%s %s: no answer before the deadline", method, u)
		}
		code := rec.Code
		switch {
		case code >= 500:
			t.Fatalf("%s %s %q: %d %s", method, u, body, code, rec.Body)
		case code >= 400:
			var e Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s: %d with body %q, want a JSON error", method, u, code, rec.Body)
			}
		case code >= 300 && rec.Header().Get("Location") != "":
			// The mux redirects to the cleaned path ("a//b" to "a/b").
		case code < 200 || code >= 300:
			t.Fatalf("%s %s: status %d", method, u, code)
		}
	})
}
