package tests

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// magctlFails runs magctl against srv, expects it to fail, and returns its
// stderr.
func magctlFails(t *testing.T, srv *server, args ...string) string {
	t.Helper()
	args = append(args, "--admin-url", srv.adminURL(), "--service-addr", srv.nativeAddr)
	out, err := exec.Command(filepath.Join(binDir, "magctl"), args...).CombinedOutput()
	if err == nil {
		t.Fatalf("magctl %s succeeded; want a failure:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// TestTenantsNamespacesAndPoliciesWithMagctl drives a standalone through
// magctl: the default namespace exists, a topic needs its namespace,
// policies set on a namespace and overridden on a topic are shown with
// their origin, max_topics refuses one topic too many, a publish rate
// limit slows a producer without failing it, and non-empty namespaces and
// tenants cannot be deleted.
func TestTenantsNamespacesAndPoliciesWithMagctl(t *testing.T) {
	skipIfShort(t)
	srv := startServer(t, t.TempDir())

	if out := magctl(t, srv, "", "namespaces", "list", "public"); !strings.Contains(out, "public/default") {
		t.Fatalf("the default namespace is missing:\n%s", out)
	}
	if out := magctlFails(t, srv, "topics", "create", "acme/iot/telemetry"); !strings.Contains(out, "namespace not found") {
		t.Fatalf("topic in a missing namespace: %s", out)
	}
	magctl(t, srv, "", "tenants", "create", "acme")
	magctl(t, srv, "", "namespaces", "create", "acme/iot", "--retention-time", "7d", "--retention-size", "10GiB", "--max-topics", "2")
	magctl(t, srv, "", "topics", "create", "acme/iot/telemetry")
	magctl(t, srv, "", "topics", "create", "acme/iot/alerts")
	if out := magctlFails(t, srv, "topics", "create", "acme/iot/third"); !strings.Contains(out, "max_topics") {
		t.Fatalf("a third topic with max-topics 2: %s", out)
	}

	magctl(t, srv, "", "namespaces", "set-policy", "acme/iot", "--message-ttl", "1h", "--publish-rate-msgs", "20")
	magctl(t, srv, "", "topics", "set-policy", "acme/iot/alerts", "--retention-time", "30d")
	table := magctl(t, srv, "", "topics", "policies", "acme/iot/alerts")
	for _, row := range [][]string{
		{"retention-time", "30d", "topic"}, {"retention-size", "10", "GiB", "namespace"},
		{"message-ttl", "1h", "namespace"}, {"publish-rate-msgs", "20", "namespace"}, {"backlog-quota-size", "unlimited", "default"},
	} {
		if !tableHasRow(table, row...) {
			t.Errorf("topics policies lacks %v:\n%s", row, table)
		}
	}
	var doc struct {
		Effective struct {
			RetentionMs int64 `json:"retention_ms"`
		} `json:"effective"`
	}
	if err := json.Unmarshal([]byte(magctl(t, srv, "", "topics", "policies", "acme/iot/alerts", "-o", "json")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Effective.RetentionMs != 30*24*3600_000 {
		t.Fatalf("effective retention %d ms, want 30 days", doc.Effective.RetentionMs)
	}

	// 30 messages at 20 a second: the first second's burst goes at once,
	// the rest waits; every message is stored, none fails.
	var lines []string
	for i := range 30 {
		lines = append(lines, "m"+strings.Repeat("x", i))
	}
	start := time.Now()
	magctl(t, srv, strings.Join(lines, "\n")+"\n", "produce", "acme/iot/telemetry")
	t.Logf("30 messages at a limit of 20/s took %v", time.Since(start))
	var st struct {
		Messages int64 `json:"messages"`
	}
	if err := json.Unmarshal([]byte(magctl(t, srv, "", "topics", "stats", "acme/iot/telemetry", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Messages != 30 {
		t.Fatalf("%d messages stored, want 30", st.Messages)
	}

	if out := magctlFails(t, srv, "namespaces", "delete", "acme/iot"); !strings.Contains(out, "not empty") {
		t.Fatalf("deleting a namespace with topics: %s", out)
	}
	if out := magctlFails(t, srv, "tenants", "delete", "acme"); !strings.Contains(out, "not empty") {
		t.Fatalf("deleting a tenant with namespaces: %s", out)
	}
	magctl(t, srv, "", "topics", "delete", "acme/iot/telemetry")
	magctl(t, srv, "", "topics", "delete", "acme/iot/alerts")
	magctl(t, srv, "", "namespaces", "delete", "acme/iot")
	magctl(t, srv, "", "tenants", "delete", "acme")
	if out := magctl(t, srv, "", "tenants", "list", "-o", "json"); strings.Contains(out, `"acme"`) {
		t.Fatalf("tenant still listed after delete:\n%s", out)
	}
}

// tableHasRow reports whether a line of the table has the fields in order.
func tableHasRow(table string, fields ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
