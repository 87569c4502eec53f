package tests

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/auth"
)

// securedServer starts a standalone that requires tokens signed with a
// fresh secret key and checks permissions, with "admin" its superuser. It
// returns the server and a function that signs a token for a role.
func securedServer(t *testing.T) (*server, func(role string) string) {
	t.Helper()
	key := auth.GenerateSecretKey()
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, t.TempDir(), "--auth.enabled", "--auth.token-secret-key-file", keyFile,
		"--authorization.enabled", "--authorization.superuser-roles", "admin", "--kafka.listen-addr", "")
	return srv, func(role string) string {
		tok, err := auth.CreateToken(key, role, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

func nativeAs(t *testing.T, srv *server, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Address: srv.nativeAddr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func adminAs(srv *server, token string) *client.Admin {
	return client.NewAdminWithOptions(srv.adminURL(), client.AdminOptions{Token: token})
}

func grpcCode(err error) codes.Code { return status.Code(err) }

func apiStatus(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// TestTenantsAreIsolatedByTokensAndPermissions drives a secured standalone
// as four roles would: a superuser sets up two tenants; acme's admin
// grants an application produce on its namespace; the application
// produces there but may not consume, nor touch the other tenant; a
// stranger without a token, or with a token signed by another key, gets
// nothing; and every message acknowledged is still there at the end.
func TestTenantsAreIsolatedByTokensAndPermissions(t *testing.T) {
	skipIfShort(t)
	srv, token := securedServer(t)
	ctx := testContext(t, 2*time.Minute)

	// Anonymous and forged requests are refused on both listeners.
	req, _ := http.NewRequest(http.MethodDelete, srv.adminURL()+"/admin/v1/tenants/public", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous DELETE of a tenant: HTTP %d, want 401", resp.StatusCode)
	}
	forged, err := auth.CreateToken(auth.GenerateSecretKey(), "admin", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adminAs(srv, forged).ListTenants(ctx); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("a token signed by another key on the admin API: %v, want 401", err)
	}
	for what, tok := range map[string]string{"no token": "", "a forged token": forged} {
		_, err := nativeAs(t, srv, tok).CreateProducer(ctx, client.ProducerOptions{Topic: "public/default/x"})
		if grpcCode(err) != codes.Unauthenticated {
			t.Fatalf("native producer with %s: %v, want UNAUTHENTICATED", what, err)
		}
	}

	// Each refusal is counted.
	mresp, err := http.Get(srv.adminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	n := -1
	if m := regexp.MustCompile(`(?m)^magnetar_auth_failures_total (\d+)`).FindSubmatch(metrics); m != nil {
		n, _ = strconv.Atoi(string(m[1]))
	}
	if n < 4 {
		t.Fatalf("/metrics counts %d auth failures, want at least 4 (1 admin, 1 forged admin, 2 native):\n%s", n, grepLines(string(metrics), "magnetar_auth"))
	}

	// The superuser sets up two tenants; acme's admin role grants "app".
	root := adminAs(srv, token("admin"))
	if _, err := root.CreateTenant(ctx, "acme", []string{"acme-admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateTenant(ctx, "globex", []string{"globex-admin"}); err != nil {
		t.Fatal(err)
	}
	acmeAdmin := adminAs(srv, token("acme-admin"))
	if _, err := acmeAdmin.CreateTenant(ctx, "evil", nil); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("a tenant admin creating a tenant: %v, want 403", err)
	}
	for _, ns := range []struct {
		a    *client.Admin
		name string
	}{{acmeAdmin, "acme/iot"}, {adminAs(srv, token("globex-admin")), "globex/iot"}} {
		if _, err := ns.a.CreateNamespace(ctx, ns.name, client.NamespaceOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ns.a.CreateTopic(ctx, ns.name+"/orders", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := acmeAdmin.CreateNamespace(ctx, "globex/stolen", client.NamespaceOptions{}); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("acme's admin creating a namespace of globex: %v, want 403", err)
	}
	if err := acmeAdmin.GrantNamespacePermission(ctx, "acme/iot", "app", []string{"produce"}); err != nil {
		t.Fatal(err)
	}

	// The application produces to acme, and nothing else.
	app := nativeAs(t, srv, token("app"))
	p, err := app.CreateProducer(ctx, client.ProducerOptions{Topic: "acme/iot/orders"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := p.Send(ctx, &client.Message{Value: []byte{byte('0' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.Subscribe(ctx, client.ConsumerOptions{Topic: "acme/iot/orders", Subscription: "s"}); grpcCode(err) != codes.PermissionDenied {
		t.Fatalf("app consuming with produce only: %v, want PERMISSION_DENIED", err)
	}
	if _, err := app.CreateProducer(ctx, client.ProducerOptions{Topic: "globex/iot/orders"}); grpcCode(err) != codes.PermissionDenied {
		t.Fatalf("app producing to the other tenant: %v, want PERMISSION_DENIED", err)
	}
	if err := adminAs(srv, token("app")).DeleteTopic(ctx, "acme/iot/orders"); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("app deleting a topic it may only produce to: %v, want 403", err)
	}

	// acme's admin sees its own tenant only, and may not touch globex.
	topics, err := acmeAdmin.ListTopics(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range topics {
		names = append(names, tp.Name)
	}
	if !slices.Contains(names, "persistent://acme/iot/orders") && !slices.Contains(names, "acme/iot/orders") || slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "globex") }) {
		t.Fatalf("acme's admin lists %v: want acme's topic and none of globex's", names)
	}
	if err := acmeAdmin.DeleteTopic(ctx, "globex/iot/orders"); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("acme's admin deleting globex's topic: %v, want 403", err)
	}
	if _, err := nativeAs(t, srv, token("acme-admin")).Subscribe(ctx, client.ConsumerOptions{Topic: "globex/iot/orders", Subscription: "s"}); grpcCode(err) != codes.PermissionDenied {
		t.Fatalf("acme's admin consuming globex's topic: %v, want PERMISSION_DENIED", err)
	}

	// magctl takes the token from MAGNETAR_TOKEN.
	cmd := exec.Command(filepath.Join(binDir, "magctl"), "namespaces", "permissions", "acme/iot", "--admin-url", srv.adminURL())
	cmd.Env = append(os.Environ(), "MAGNETAR_TOKEN="+token("acme-admin"))
	out, err := cmd.CombinedOutput()
	if err != nil || !tableHasRow(string(out), "app", "produce") {
		t.Fatalf("magctl namespaces permissions: %v\n%s", err, out)
	}

	// Every message acknowledged is there, for a role allowed to read.
	cons, err := nativeAs(t, srv, token("acme-admin")).Subscribe(ctx, client.ConsumerOptions{
		Topic: "acme/iot/orders", Subscription: "audit", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		m, err := receiveWithin(ctx, cons, 10*time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.Value) != string(rune('0'+i)) {
			t.Fatalf("message %d = %q", i, m.Value)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
}

func receiveWithin(ctx context.Context, c *client.Consumer, d time.Duration) (*client.ConsumerMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return c.Receive(ctx)
}
