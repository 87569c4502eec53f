package native

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// TestCallsProveTheirRoleWithATokenOrACertificate serves the native
// protocol over TLS with authentication and authorization on: a client
// certificate the server verified names its role, as a token does; a call
// with neither, or with a token signed by another key, is UNAUTHENTICATED;
// and a role is held to its grants.
func TestCallsProveTheirRoleWithATokenOrACertificate(t *testing.T) {
	ca := authtest.NewCA(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	server := ca.Issue(t, "broker", "localhost")
	key := auth.GenerateSecretKey()
	authn, err := auth.NewAuthenticator(auth.ServerConfig{Enabled: true, Token: auth.TokenConfig{SecretKeyFile: write("secret", key)}})
	if err != nil {
		t.Fatal(err)
	}
	files := auth.TLSFiles{CertFile: write("cert.pem", server.CertPEM), KeyFile: write("key.pem", server.KeyPEM),
		ClientCAFile: write("ca.pem", ca.CertPEM)}
	tc, err := files.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}

	cfg := broker.DefaultConfig()
	cfg.Authorization = broker.AuthzConfig{Enabled: true, SuperUserRoles: "root"}
	meta := metadatatest.NewStore()
	b, err := broker.New(cfg, meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := broker.ParseNamespaceName("public/default")
	if err := b.SetNamespacePermission(context.Background(), ns, "alice", broker.ActionProduce); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(AuthOptions(authn), grpc.Creds(credentials.NewTLS(tc)))...)
	NewServer(b, lis.Addr().String(), nil).Register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
		b.Close()
		meta.Close()
	})

	lookup := func(cert *tls.Certificate, token string) error {
		t.Helper()
		ctc := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		if cert != nil {
			ctc.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(ctc)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		_, err = nativepb.NewMagnetarClient(conn).Lookup(ctx, &nativepb.LookupRequest{Topic: "orders", AutoCreate: true})
		return err
	}
	alice, bob := ca.Issue(t, "alice"), ca.Issue(t, "bob")
	bobToken, err := auth.CreateToken(key, "bob", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	aliceToken, err := auth.CreateToken(key, "alice", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.CreateToken(auth.GenerateSecretKey(), "alice", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what  string
		cert  *tls.Certificate
		token string
		want  codes.Code
	}{
		{"alice's certificate", &alice.TLS, "", codes.OK},
		{"alice's token", nil, aliceToken, codes.OK},
		{"bob's certificate (no grant)", &bob.TLS, "", codes.PermissionDenied},
		{"bob's token over alice's certificate: the token counts", &alice.TLS, bobToken, codes.PermissionDenied},
		{"neither", nil, "", codes.Unauthenticated},
		{"a forged token", nil, forged, codes.Unauthenticated},
	} {
		if got := status.Code(lookup(c.cert, c.token)); got != c.want {
			t.Errorf("%s: %v, want %v", c.what, got, c.want)
		}
	}
}
