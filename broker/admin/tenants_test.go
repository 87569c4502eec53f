package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type api struct {
	t   *testing.T
	srv *httptest.Server
}

func newAPI(t *testing.T) *api {
	t.Helper()
	meta := metadatatest.NewStore()
	b, err := broker.New(broker.DefaultConfig(), meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, b, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		b.Close()
		meta.Close()
	})
	return &api{t, srv}
}

// call sends the request and checks the status; it returns the body.
func (a *api) call(method, path, body string, wantStatus int) string {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		a.t.Fatalf("%s %s %s: status %d, want %d; body %s", method, path, body, resp.StatusCode, wantStatus, data)
	}
	return string(data)
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return v
}

func TestTenantAndNamespaceLifecycleOverREST(t *testing.T) {
	a := newAPI(t)
	a.call("PUT", "/admin/v1/topics/acme/app/orders", "", http.StatusNotFound) // no namespace yet
	a.call("PUT", "/admin/v1/namespaces/acme/app", "", http.StatusNotFound)    // no tenant yet
	if tn := decode[Tenant](t, a.call("PUT", "/admin/v1/tenants/acme", `{"admin_roles":["ops"]}`, http.StatusCreated)); tn.Name != "acme" || len(tn.AdminRoles) != 1 {
		t.Fatalf("created tenant %+v", tn)
	}
	a.call("PUT", "/admin/v1/tenants/acme", "", http.StatusConflict)
	a.call("PUT", "/admin/v1/tenants/bad%20name", "", http.StatusBadRequest)
	ts := decode[[]Tenant](t, a.call("GET", "/admin/v1/tenants", "", http.StatusOK))
	if len(ts) != 2 || ts[0].Name != "acme" || ts[1].Name != "public" {
		t.Fatalf("tenants %+v; want acme and public", ts)
	}
	ns := decode[Namespace](t, a.call("PUT", "/admin/v1/namespaces/acme/app", `{"bundles":4,"policies":{"max_topics":2,"retention_ms":3600000}}`, http.StatusCreated))
	if ns.Name != "acme/app" || ns.Bundles != 4 || *ns.Policies.MaxTopics != 2 || *ns.Policies.RetentionMs != 3600000 {
		t.Fatalf("created namespace %+v", ns)
	}
	a.call("PUT", "/admin/v1/namespaces/acme/app", "", http.StatusConflict)
	a.call("PUT", "/admin/v1/namespaces/acme/other", `{"policies":{"colour":"blue"}}`, http.StatusBadRequest)
	a.call("PUT", "/admin/v1/namespaces/acme/other", `{"policies":{"retention_ms":-5}}`, http.StatusBadRequest)
	a.call("GET", "/admin/v1/namespaces/nope", "", http.StatusNotFound)
	if l := decode[[]Namespace](t, a.call("GET", "/admin/v1/namespaces/acme", "", http.StatusOK)); len(l) != 1 || l[0].Name != "acme/app" {
		t.Fatalf("namespaces of acme: %+v", l)
	}

	a.call("PUT", "/admin/v1/topics/acme/app/t1", "", http.StatusCreated)
	a.call("PUT", "/admin/v1/topics/acme/app/t2", "", http.StatusCreated)
	if body := a.call("PUT", "/admin/v1/topics/acme/app/t3", "", http.StatusConflict); !strings.Contains(body, "max_topics") {
		t.Fatalf("third topic over max_topics 2: %s", body)
	}
	a.call("DELETE", "/admin/v1/tenants/acme", "", http.StatusConflict)
	a.call("DELETE", "/admin/v1/namespaces/acme/app", "", http.StatusConflict)
	a.call("DELETE", "/admin/v1/topics/acme/app/t1", "", http.StatusNoContent)
	a.call("DELETE", "/admin/v1/topics/acme/app/t2", "", http.StatusNoContent)
	a.call("DELETE", "/admin/v1/namespaces/acme/app", "", http.StatusNoContent)
	a.call("GET", "/admin/v1/namespaces/acme/app", "", http.StatusNotFound)
	a.call("DELETE", "/admin/v1/tenants/acme", "", http.StatusNoContent)
	a.call("GET", "/admin/v1/tenants/acme", "", http.StatusNotFound)
}

func TestPoliciesArePatchedOneAtATimeAndRemovedOverREST(t *testing.T) {
	a := newAPI(t)
	a.call("PUT", "/admin/v1/tenants/acme", "", http.StatusCreated)
	a.call("PUT", "/admin/v1/namespaces/acme/app", "", http.StatusCreated)
	a.call("PUT", "/admin/v1/topics/acme/app/orders", "", http.StatusCreated)
	const nsPol = "/admin/v1/namespaces/acme/app/policies"

	doc := decode[PoliciesDoc](t, a.call("GET", nsPol, "", http.StatusOK))
	if doc.Policies != (Policies{}) || *doc.Effective.RetentionMs != 7*24*3600*1000 || *doc.Effective.BacklogQuotaAction != "producer_request_hold" || !*doc.Effective.AutoTopicCreation {
		t.Fatalf("fresh namespace: %+v; want nothing set and the broker's defaults effective", doc)
	}
	a.call("PUT", nsPol, `{"message_ttl_ms":60000,"backlog_quota_action":"producer_exception"}`, http.StatusOK)
	doc = decode[PoliciesDoc](t, a.call("PATCH", nsPol, `{"publish_rate_msgs":100}`, http.StatusOK))
	if *doc.Policies.MessageTTLMs != 60000 || *doc.Policies.PublishRateMsgs != 100 || *doc.Policies.BacklogQuotaAction != "producer_exception" {
		t.Fatalf("a second patch cleared the first: %+v", doc.Policies)
	}
	doc = decode[PoliciesDoc](t, a.call("PUT", nsPol, `{"message_ttl_ms":null}`, http.StatusOK))
	if doc.Policies.MessageTTLMs != nil || *doc.Effective.MessageTTLMs != 0 || *doc.Policies.PublishRateMsgs != 100 {
		t.Fatalf("null removes one policy only: %+v", doc)
	}
	a.call("PUT", nsPol, `{"backlog_quota_action":"sometimes"}`, http.StatusBadRequest)
	a.call("PUT", nsPol, `[1]`, http.StatusBadRequest)

	const tPol = "/admin/v1/policies/topics/acme/app/orders"
	doc = decode[PoliciesDoc](t, a.call("PUT", tPol, `{"publish_rate_msgs":5,"retention_bytes":1048576}`, http.StatusOK))
	if *doc.Effective.PublishRateMsgs != 5 || *doc.Namespace.PublishRateMsgs != 100 || *doc.Effective.BacklogQuotaAction != "producer_exception" {
		t.Fatalf("topic override over the namespace: %+v", doc)
	}
	a.call("PUT", tPol, `{"max_topics":3}`, http.StatusBadRequest) // a namespace-wide policy
	doc = decode[PoliciesDoc](t, a.call("DELETE", tPol+"?policy=publish_rate_msgs", "", http.StatusOK))
	if doc.Policies.PublishRateMsgs != nil || *doc.Policies.RetentionBytes != 1048576 || *doc.Effective.PublishRateMsgs != 100 {
		t.Fatalf("after removing the topic's rate: %+v", doc)
	}
	doc = decode[PoliciesDoc](t, a.call("DELETE", tPol, "", http.StatusOK))
	if doc.Policies != (Policies{}) {
		t.Fatalf("DELETE without ?policy= leaves %+v", doc.Policies)
	}
	a.call("GET", "/admin/v1/policies/topics/acme/app/nope", "", http.StatusNotFound)
	a.call("DELETE", nsPol+"?policy=colour", "", http.StatusBadRequest)
}

func TestABodyOverTheLimitIsRefusedWhole(t *testing.T) {
	a := newAPI(t)
	big := `{"admin_roles": ["` + strings.Repeat("x", maxBodyBytes) + `"]}`
	a.call("PUT", "/admin/v1/tenants/acme", big, http.StatusRequestEntityTooLarge)
}
