package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
)

func TestCertificateRole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"nil", nil, ""},
		{"the common name", &x509.Certificate{Subject: pkix.Name{CommonName: "orders-svc", Organization: []string{"acme"}}, DNSNames: []string{"a.example"}}, "orders-svc"},
		{"else the first DNS name", &x509.Certificate{DNSNames: []string{"billing.acme.example", "b.example"}}, "billing.acme.example"},
		{"else nothing", &x509.Certificate{Subject: pkix.Name{Organization: []string{"acme"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CertificateRole(tt.cert); got != tt.want {
				t.Fatalf("CertificateRole = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTLSPrincipalTrustsOnlyVerifiedCertificates runs real handshakes: a
// certificate the server verified names the role; one it only requested
// (unverified, from an unknown CA) names none.
func TestTLSPrincipalTrustsOnlyVerifiedCertificates(t *testing.T) {
	t.Parallel()
	ca := authtest.NewCA(t)
	server := ca.Issue(t, "broker")
	stranger := authtest.NewCA(t).Issue(t, "mallory")
	tests := []struct {
		name       string
		clientAuth tls.ClientAuthType
		client     []tls.Certificate
		want       Principal
		wantOK     bool
	}{
		{"a verified certificate", tls.RequireAndVerifyClientCert, []tls.Certificate{ca.Issue(t, "alice").TLS}, Principal{Role: "alice", Method: MethodTLS}, true},
		{"a verified certificate named by its DNS SAN", tls.VerifyClientCertIfGiven, []tls.Certificate{ca.Issue(t, "", "svc.acme.example").TLS}, Principal{Role: "svc.acme.example", Method: MethodTLS}, true},
		{"no certificate", tls.VerifyClientCertIfGiven, nil, Principal{}, false},
		{"a certificate only requested", tls.RequestClientCert, []tls.Certificate{stranger.TLS}, Principal{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state := handshake(t,
				&tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientAuth: tt.clientAuth, ClientCAs: ca.Pool()},
				&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: tt.client})
			got, ok := TLSPrincipal(&state)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("TLSPrincipal = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if _, ok := TLSPrincipal(nil); ok {
		t.Fatal("TLSPrincipal(nil) named a principal")
	}
}

// handshake connects a TLS client to a TLS server over a pipe and returns
// the server's view of the connection.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) tls.ConnectionState {
	t.Helper()
	a, b := net.Pipe()
	srv, cli := tls.Server(a, serverCfg), tls.Client(b, clientCfg)
	defer srv.Close()
	defer cli.Close()
	done := make(chan error, 1)
	go func() {
		err := cli.HandshakeContext(context.Background())
		if err == nil {
			_, err = io.Copy(io.Discard, cli) // until the server closes
		}
		done <- err
	}()
	if err := srv.HandshakeContext(context.Background()); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	state := srv.ConnectionState()
	srv.Close()
	<-done
	return state
}
