package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// magctl's commands keep their flags in package variables: tests that run
// commands do not run in parallel.

// seen is what a request to a recording server carried.
type seen struct {
	authorization string
	certRole      string
}

// recorder keeps what requests carried.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) add(authorization string, cs *tls.ConnectionState) {
	s := seen{authorization: authorization}
	if p, ok := auth.TLSPrincipal(cs); ok {
		s.certRole = p.Role
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// startAdminRecorder serves an admin API that answers every request with
// an empty list, over TLS with client certificates when tlsCfg is set.
func startAdminRecorder(t *testing.T, tlsCfg *tls.Config) (*recorder, string) {
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r.Header.Get("Authorization"), r.TLS)
		fmt.Fprint(w, "[]")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	if tlsCfg != nil {
		srv.TLS = tlsCfg
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

// lookupRecorder is a native broker that records each lookup's
// credentials and refuses it.
type lookupRecorder struct {
	nativepb.UnimplementedMagnetarServer
	recorder
}

func (l *lookupRecorder) Lookup(ctx context.Context, _ *nativepb.LookupRequest) (*nativepb.LookupResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var cs *tls.ConnectionState
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			cs = &ti.State
		}
	}
	l.add(strings.Join(md.Get("authorization"), ","), cs)
	return nil, status.Error(codes.PermissionDenied, "recorded")
}

func startLookupRecorder(t *testing.T, tlsCfg *tls.Config) (*lookupRecorder, string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)))
	l := &lookupRecorder{}
	nativepb.RegisterMagnetarServer(srv, l)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return l, lis.Addr().String()
}

func TestTokenFlagsReachTheAdminAPI(t *testing.T) {
	rec, url := startAdminRecorder(t, nil)
	tokenFile := filepath.Join(t.TempDir(), "alice.jwt")
	if err := os.WriteFile(tokenFile, []byte("from.file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "topics", "list", "--admin-url", url)
	mustRun(t, "topics", "list", "--admin-url", url, "--token", "from.flag")
	mustRun(t, "topics", "list", "--admin-url", url, "--token-file", tokenFile)
	t.Setenv("MAGNETAR_TOKEN", "from.env")
	mustRun(t, "tenants", "list", "--admin-url", url)
	mustRun(t, "topics", "list", "--admin-url", url, "--token", "flag.wins")
	want := []seen{{}, {authorization: "Bearer from.flag"}, {authorization: "Bearer from.file"}, {authorization: "Bearer from.env"}, {authorization: "Bearer flag.wins"}}
	if got := rec.all(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests carried %v, want %v", got, want)
	}
	mustFail(t, "set --token or --token-file, not both", "topics", "list", "--admin-url", url, "--token-file", tokenFile)
}

// TestTLSFlagsReachTheAdminAPIAndTheNativePort: with --tls-* flags the
// admin client and the native client verify the server against the CA and
// present the client certificate, with the token.
func TestTLSFlagsReachTheAdminAPIAndTheNativePort(t *testing.T) {
	ca := authtest.NewCA(t)
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, "broker").TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := ca.Issue(t, "ops")
	caFile, certFile, keyFile := write("ca.pem", ca.CertPEM), write("ops.pem", leaf.CertPEM), write("ops.key", leaf.KeyPEM)
	tlsFlags := []string{"--tls-ca-file", caFile, "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--token", "tok"}

	admin, url := startAdminRecorder(t, serverTLS)
	mustRun(t, append([]string{"topics", "list", "--admin-url", url}, tlsFlags...)...)
	mustFail(t, "certificate", "topics", "list", "--admin-url", url, "--tls-ca-file", caFile) // no client certificate
	mustFail(t, "certificate", "topics", "list", "--admin-url", url, "--tls-cert-file", certFile, "--tls-key-file", keyFile)
	if got := admin.all(); len(got) != 1 || got[0] != (seen{authorization: "Bearer tok", certRole: "ops"}) {
		t.Fatalf("admin requests %v, want one from ops with its token", got)
	}

	native, addr := startLookupRecorder(t, serverTLS)
	mustFail(t, "recorded", append([]string{"produce", "orders", "-m", "x", "--service-addr", addr}, tlsFlags...)...)
	mustFail(t, "recorded", append([]string{"consume", "orders", "-s", "s", "-n", "1", "--service-addr", addr}, tlsFlags...)...)
	mustFail(t, "Unavailable", "produce", "orders", "-m", "x", "--service-addr", addr, "--timeout", "2s") // plaintext
	want := seen{authorization: "Bearer tok", certRole: "ops"}
	if got := native.all(); len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("lookups %v, want two from ops with its token", got)
	}
}

func TestBadTLSFlagsFailBeforeTheCommandRuns(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		want string
		args []string
	}{
		{"--tls-ca-file: open", []string{"--tls-ca-file", filepath.Join(dir, "missing.pem")}},
		{"holds no PEM certificate", []string{"--tls-ca-file", notPEM}},
		{"--tls-cert-file and --tls-key-file go together", []string{"--tls-cert-file", notPEM}},
		{"--tls-cert-file, --tls-key-file:", []string{"--tls-cert-file", notPEM, "--tls-key-file", notPEM}},
		{"--token-file: open", []string{"--token-file", filepath.Join(dir, "missing.jwt")}},
	} {
		// The admin URL is unreachable: only the flags can fail.
		mustFail(t, tt.want, append([]string{"topics", "list", "--admin-url", "http://127.0.0.1:1"}, tt.args...)...)
	}
}
