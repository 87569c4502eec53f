package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/broker/admin"
	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

func TestHumanDurationsAndSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"7d", 7 * 24 * 3600_000}, {"2w", 14 * 24 * 3600_000}, {"1.5d", 36 * 3600_000}, {"12h", 12 * 3600_000},
		{"1h30m", 90 * 60_000}, {"250ms", 250}, {"0", 0}, {"-1", -1}, {"infinite", -1},
	} {
		if got, err := parseDurationMs(tc.in); err != nil || got != tc.want {
			t.Errorf("parseDurationMs(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "7", "7x", "-2h", "d"} {
		if _, err := parseDurationMs(bad); err == nil {
			t.Errorf("parseDurationMs(%q) accepted", bad)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"10GiB", 10 << 30}, {"10G", 10 << 30}, {"10GB", 10e9}, {"512MiB", 512 << 20}, {"4096", 4096},
		{"1.5KiB", 1536}, {"2 TiB", 2 << 40}, {"-1", -1}, {"unlimited", -1}, {"0", 0},
	} {
		if got, err := parseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "ten", "10XB", "-5", "1e30GiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
	for ms, want := range map[int64]string{-1: "infinite", 0: "0", 604800000: "1w", 86400000 * 3: "3d", 5400000: "90m", 1500: "1500ms"} {
		if got := formatDurationMs(ms); got != want {
			t.Errorf("formatDurationMs(%d) = %q, want %q", ms, got, want)
		}
	}
	for b, want := range map[int64]string{-1: "unlimited", 10 << 30: "10 GiB", 1536: "1536 B", 1 << 20: "1 MiB", 0: "0 B"} {
		if got := formatSize(b); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", b, got, want)
		}
	}
}

// TestTenantNamespaceAndPolicyCommandsAgainstABroker drives the commands
// against the admin API of an in-process broker.
func TestTenantNamespaceAndPolicyCommandsAgainstABroker(t *testing.T) {
	meta := metadatatest.NewStore()
	b, err := broker.New(broker.DefaultConfig(), meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	admin.Register(mux, b, nil)
	srv := httptest.NewServer(mux)
	defer func() {
		srv.Close()
		b.Close()
		meta.Close()
	}()
	ok := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runMagctl(append(args, "--admin-url", srv.URL)...)
		if code != 0 {
			t.Fatalf("magctl %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}
	fails := func(want string, args ...string) {
		t.Helper()
		code, stdout, stderr := runMagctl(append(args, "--admin-url", srv.URL)...)
		if code == 0 || !strings.Contains(stdout+stderr, want) {
			t.Fatalf("magctl %s: exit %d, output %s%s; want a failure saying %q", strings.Join(args, " "), code, stdout, stderr, want)
		}
	}

	fails("namespace not found", "topics", "create", "acme/iot/telemetry")
	ok("tenants", "create", "acme", "--admin-roles", "ops")
	ok("namespaces", "create", "acme/iot", "--bundles", "8", "--retention-time", "7d", "--retention-size", "10GiB")
	if out := ok("tenants", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "public") {
		t.Fatalf("tenants list:\n%s", out)
	}
	if out := ok("namespaces", "list", "acme"); !strings.Contains(out, "acme/iot") || !strings.Contains(out, "retention-time=1w") {
		t.Fatalf("namespaces list:\n%s", out)
	}
	ok("namespaces", "set-policy", "acme/iot", "--publish-rate-msgs", "1000", "--auto-topic-creation", "false", "--max-topics", "2")
	var info client.PoliciesInfo
	if err := json.Unmarshal([]byte(ok("namespaces", "policies", "acme/iot", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	p := info.Policies
	if *p.RetentionMs != 7*24*3600_000 || *p.RetentionBytes != 10<<30 || *p.PublishRateMsgs != 1000 || *p.AutoTopicCreation || *p.MaxTopics != 2 {
		t.Fatalf("stored policies %+v", p)
	}
	ok("topics", "create", "acme/iot/telemetry")
	ok("topics", "set-policy", "acme/iot/telemetry", "--retention-time", "30d", "--publish-rate-bytes", "1MiB")
	table := ok("topics", "policies", "acme/iot/telemetry")
	for _, row := range [][]string{
		{"retention-time", "30d", "topic"}, {"retention-size", "10 GiB", "namespace"},
		{"publish-rate-bytes", "1 MiB/s", "topic"}, {"publish-rate-msgs", "1000", "namespace"}, {"message-ttl", "0", "default"},
	} {
		if !hasRow(table, row...) {
			t.Errorf("topics policies lacks the row %v:\n%s", row, table)
		}
	}
	table = ok("topics", "remove-policy", "acme/iot/telemetry", "retention-time")
	if !hasRow(table, "retention-time", "1w", "namespace") {
		t.Errorf("after remove-policy, retention is not the namespace's again:\n%s", table)
	}
	table = ok("namespaces", "remove-policy", "acme/iot", "retention-time,retention-size")
	if !hasRow(table, "retention-time", "1w", "default") || !hasRow(table, "retention-size", "unlimited", "default") {
		t.Errorf("after namespaces remove-policy:\n%s", table)
	}
	fails("unknown policy", "namespaces", "remove-policy", "acme/iot", "colour")
	fails("is not a size", "namespaces", "set-policy", "acme/iot", "--retention-size", "lots")
	fails("flag provided but not defined", "topics", "set-policy", "acme/iot/telemetry", "--max-topics", "5")
	fails("no policy given", "namespaces", "set-policy", "acme/iot")
	fails("not empty", "namespaces", "delete", "acme/iot")
	ok("topics", "delete", "acme/iot/telemetry")
	ok("namespaces", "delete", "acme/iot")
	ok("tenants", "delete", "acme")
}

// hasRow reports whether a line of the table has the fields in order.
func hasRow(table string, fields ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
