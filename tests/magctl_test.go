package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// magctl runs the magctl binary against srv and returns its stdout.
func magctl(t *testing.T, srv *server, stdin string, args ...string) string {
	t.Helper()
	args = append(args, "--admin-url", srv.adminURL(), "--service-addr", srv.nativeAddr)
	cmd := exec.Command(filepath.Join(binDir, "magctl"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("magctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestMagctlRoundTrip creates a topic, produces 10 messages from stdin,
// consumes them, and sees the count and the drained backlog in stats.
func TestMagctlRoundTrip(t *testing.T) {
	skipIfShort(t)
	srv := startServer(t, t.TempDir())

	magctl(t, srv, "", "tenants", "create", "acme")
	magctl(t, srv, "", "namespaces", "create", "acme/app")
	magctl(t, srv, "", "topics", "create", "acme/app/events", "-p", "2")
	if out := magctl(t, srv, "", "topics", "list"); !strings.Contains(out, "acme/app/events") {
		t.Fatalf("topics list does not show the topic:\n%s", out)
	}

	var lines []string
	for i := 1; i <= 10; i++ {
		lines = append(lines, "msg-"+strconv.Itoa(i))
	}
	magctl(t, srv, strings.Join(lines, "\n")+"\n", "produce", "acme/app/events")

	out := magctl(t, srv, "", "consume", "acme/app/events", "-s", "cli", "-n", "10")
	got := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(got)
	want := append([]string(nil), lines...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("consumed %q, want the 10 produced values %q", got, want)
	}

	var st struct {
		Messages      int64 `json:"messages"`
		Subscriptions []struct {
			Name    string `json:"name"`
			Backlog int64  `json:"backlog"`
		} `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(magctl(t, srv, "", "topics", "stats", "acme/app/events", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Messages != 10 {
		t.Errorf("stats: %d messages, want 10", st.Messages)
	}
	var backlog int64
	for _, s := range st.Subscriptions {
		if s.Name != "cli" {
			t.Errorf("unexpected subscription %q", s.Name)
		}
		backlog += s.Backlog
	}
	if len(st.Subscriptions) != 2 || backlog != 0 {
		t.Errorf("stats: subscriptions %+v; want cli on both partitions with no backlog", st.Subscriptions)
	}
	if table := magctl(t, srv, "", "topics", "stats", "acme/app/events"); !strings.Contains(table, "Messages:") {
		t.Errorf("table stats lack the message count:\n%s", table)
	}

	magctl(t, srv, "", "topics", "delete", "acme/app/events")
	if out := magctl(t, srv, "", "topics", "list"); strings.Contains(out, "acme/app/events") {
		t.Fatalf("topic still listed after delete:\n%s", out)
	}
}

// TestHealthReadinessAndMetrics checks the operator endpoints: liveness,
// readiness, and Prometheus metrics that count what was produced.
func TestHealthReadinessAndMetrics(t *testing.T) {
	skipIfShort(t)
	srv := startServer(t, t.TempDir())
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.adminURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
	magctl(t, srv, "a\nb\nc\n", "produce", "metered")
	resp, err := http.Get(srv.adminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^magnetar_broker_messages_in_total 3$`).Match(body) {
		t.Errorf("/metrics does not count the 3 produced messages:\n%s", grepLines(string(body), "magnetar_"))
	}
	if !strings.Contains(string(body), "magnetar_broker_append_seconds_bucket") {
		t.Error("/metrics lacks the append latency histogram")
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
