package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

// runMagctlIn runs magctl with stdin.
func runMagctlIn(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun runs magctl and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runMagctl(args...)
	if code != 0 {
		t.Fatalf("magctl %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// mustFail runs magctl and checks it exits 1 saying want.
func mustFail(t *testing.T, want string, args ...string) {
	t.Helper()
	code, stdout, stderr := runMagctl(args...)
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("magctl %s: exit %d, stdout %q, stderr %q; want exit 1 saying %q", strings.Join(args, " "), code, stdout, stderr, want)
	}
}

func TestTokensWithASecretKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "secret.key")
	mustRun(t, "tokens", "create-secret-key", "--output", key)
	info, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != 32 || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file of %d bytes, mode %v; want 32 bytes readable by its owner only", info.Size(), info.Mode().Perm())
	}
	mustFail(t, "file exists", "tokens", "create-secret-key", "--output", key)

	tok := strings.TrimSpace(mustRun(t, "tokens", "create", "--secret-key-file", key, "--subject", "alice", "--expiry-time", "1h", "--audience", "magnetar"))
	if got := mustRun(t, "tokens", "validate", tok, "--secret-key-file", key); got != "alice\n" {
		t.Fatalf("validate printed %q, want the role", got)
	}
	if got := mustRun(t, "tokens", "validate", tok, "--secret-key-file", key, "--audience", "magnetar"); got != "alice\n" {
		t.Fatalf("validate with the audience printed %q", got)
	}
	mustFail(t, "audience (aud)", "tokens", "validate", tok, "--secret-key-file", key, "--audience", "elsewhere")

	var shown struct {
		Header map[string]any `json:"header"`
		Claims map[string]any `json:"claims"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "tokens", "show", tok)), &shown); err != nil {
		t.Fatal(err)
	}
	exp, _ := shown.Claims["exp"].(float64)
	if shown.Header["alg"] != "HS256" || shown.Claims["sub"] != "alice" || shown.Claims["aud"] != "magnetar" ||
		time.Until(time.Unix(int64(exp), 0)) < 59*time.Minute {
		t.Fatalf("show: %+v, want HS256, sub alice, aud magnetar, exp in an hour", shown)
	}

	other := filepath.Join(dir, "other.key")
	mustRun(t, "tokens", "create-secret-key", "--output", other)
	mustFail(t, "signature does not verify", "tokens", "validate", tok, "--secret-key-file", other)

	signing, err := auth.LoadSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := auth.CreateToken(signing, "alice", 0, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, "auth: invalid token: expired", "tokens", "validate", expired, "--secret-key-file", key)
}

func TestTokensBase64SecretKeyAndTokensFromStandardInput(t *testing.T) {
	dir := t.TempDir()
	out := mustRun(t, "tokens", "create-secret-key", "--base64")
	if !strings.HasPrefix(out, auth.Base64KeyPrefix) {
		t.Fatalf("--base64 wrote %q, want %s...", out, auth.Base64KeyPrefix)
	}
	key := filepath.Join(dir, "secret.b64")
	if err := os.WriteFile(key, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := mustRun(t, "tokens", "create", "--secret-key-file", key, "--subject", "bob")
	code, stdout, stderr := runMagctlIn(tok, "tokens", "validate", "-", "--secret-key-file", key)
	if code != 0 || stdout != "bob\n" {
		t.Fatalf("validate - : exit %d, %q, %s", code, stdout, stderr)
	}
	code, stdout, stderr = runMagctlIn("\n"+tok+"\n", "tokens", "show", "-")
	if code != 0 || !strings.Contains(stdout, `"sub": "bob"`) {
		t.Fatalf("show - : exit %d, %q, %s", code, stdout, stderr)
	}
}

func TestTokensWithAKeyPair(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			priv, pub := filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
			mustRun(t, "tokens", "create-key-pair", "--algorithm", alg, "--private-key-file", priv, "--public-key-file", pub)
			tok := mustRun(t, "tokens", "create", "--private-key-file", priv, "--subject", "svc-orders", "--expiry-time", "1y")
			if got := mustRun(t, "tokens", "validate", tok, "--public-key-file", pub); got != "svc-orders\n" {
				t.Fatalf("validate printed %q", got)
			}
			if !strings.Contains(mustRun(t, "tokens", "show", tok), `"alg": "`+alg+`"`) {
				t.Fatalf("show does not name %s", alg)
			}
			mustFail(t, "holds a private key", "tokens", "validate", tok, "--public-key-file", priv)
			mustFail(t, "holds a private key: use --private-key-file", "tokens", "create", "--secret-key-file", priv, "--subject", "x")
			mustFail(t, "holds a public key", "tokens", "create", "--private-key-file", pub, "--subject", "x")
			// The public key cannot sign as a secret (alg confusion).
			mustFail(t, "holds a public key", "tokens", "create", "--secret-key-file", pub, "--subject", "mallory")
			mustFail(t, "file exists", "tokens", "create-key-pair", "--algorithm", alg, "--private-key-file", filepath.Join(dir, "new.pem"), "--public-key-file", pub)
			if _, err := os.Stat(filepath.Join(dir, "new.pem")); !os.IsNotExist(err) {
				t.Fatalf("half a key pair was left behind: %v", err)
			}
		})
	}
}

func TestTokensCommandsRefuseBadArguments(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "secret.key")
	mustRun(t, "tokens", "create-secret-key", "--output", key)
	for _, tt := range []struct {
		want string
		args []string
	}{
		{"--subject is required", []string{"tokens", "create", "--secret-key-file", key}},
		{"set one of --secret-key-file and --private-key-file", []string{"tokens", "create", "--subject", "a"}},
		{"set one of --secret-key-file and --private-key-file", []string{"tokens", "create", "--subject", "a", "--secret-key-file", key, "--private-key-file", key}},
		{"is not a duration", []string{"tokens", "create", "--subject", "a", "--secret-key-file", key, "--expiry-time", "soon"}},
		{"--expiry-time 0", []string{"tokens", "create", "--subject", "a", "--secret-key-file", key, "--expiry-time", "0"}},
		{"no such file", []string{"tokens", "create", "--subject", "a", "--secret-key-file", filepath.Join(dir, "missing")}},
		{"set one of --secret-key-file and --public-key-file", []string{"tokens", "validate", "x.y.z"}},
		{"auth: invalid token: malformed", []string{"tokens", "validate", "x.y.z", "--secret-key-file", key}},
		{"auth: invalid token: malformed", []string{"tokens", "show", "not-a-token"}},
		{"want RS256 or ES256", []string{"tokens", "create-key-pair", "--algorithm", "HS256", "--private-key-file", filepath.Join(dir, "a"), "--public-key-file", filepath.Join(dir, "b")}},
		{"are required", []string{"tokens", "create-key-pair"}},
	} {
		mustFail(t, tt.want, tt.args...)
	}
}

func TestTokensHelpHasExamplesAndNoConnectionFlags(t *testing.T) {
	for _, name := range []string{"create-secret-key", "create-key-pair", "create", "show", "validate"} {
		code, _, stderr := runMagctl("tokens", name, "--help")
		if code != 0 || !strings.Contains(stderr, "Examples:\n  magctl tokens "+name) {
			t.Errorf("tokens %s --help: exit %d:\n%s", name, code, stderr)
		}
		if strings.Contains(stderr, "admin-url") {
			t.Errorf("tokens %s takes the connection flags", name)
		}
	}
	if _, stdout, _ := runMagctl("help"); !strings.Contains(stdout, "tokens validate TOKEN") {
		t.Error("the usage does not list the tokens commands")
	}
}
