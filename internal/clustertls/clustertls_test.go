package clustertls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
)

// files writes a CA file and a leaf's certificate and key, and returns
// the Config naming them (with the flags' prefix, as the commands have).
func files(t *testing.T, caPEM []byte, leaf authtest.Leaf) Config {
	t.Helper()
	dir := t.TempDir()
	c := Config{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), prefix: "cluster-tls."}
	for path, data := range map[string][]byte{c.CAFile: caPEM, c.CertFile: leaf.CertPEM, c.KeyFile: leaf.KeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func load(t *testing.T, c Config) *Credentials {
	t.Helper()
	cr, err := c.Load()
	if err != nil || cr == nil {
		t.Fatalf("Load = %v, %v", cr, err)
	}
	return cr
}

// handshake connects a client to a server over loopback TCP, handshakes and
// exchanges a byte each way, as a client that dialled 127.0.0.1. It returns what each side saw: with TLS 1.3
// a client's handshake ends before the server checked its certificate, so
// a refused client learns it on its first read.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	if client.ServerName == "" { // as tls.Dial of 127.0.0.1 sets it
		client = client.Clone()
		client.ServerName = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := tls.Server(sc, server), tls.Client(cc, client)
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	_ = cli.SetDeadline(time.Now().Add(10 * time.Second))
	done := make(chan error, 1)
	go func() {
		defer srv.Close()
		if err := srv.Handshake(); err != nil {
			done <- err
			return
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(srv, b); err != nil {
			done <- err
			return
		}
		_, err := srv.Write(b)
		done <- err
	}()
	clientErr = func() error {
		defer cli.Close()
		if err := cli.Handshake(); err != nil {
			return err
		}
		if _, err := cli.Write([]byte("x")); err != nil {
			return err
		}
		_, err := io.ReadFull(cli, make([]byte, 1))
		return err
	}()
	return <-done, clientErr
}

func TestValidateRefusesPartialSettings(t *testing.T) {
	for _, tt := range []struct {
		name    string
		c       Config
		missing []string // flags the error must name; nil: valid
	}{
		{name: "nothing set is cluster TLS off", c: Config{}},
		{name: "the three files", c: Config{CAFile: "ca", CertFile: "c", KeyFile: "k"}},
		{name: "the three files and a server name", c: Config{CAFile: "ca", CertFile: "c", KeyFile: "k", ServerName: "magnetar.cluster"}},
		{name: "no key", c: Config{CAFile: "ca", CertFile: "c"}, missing: []string{"--cluster-tls.key-file"}},
		{name: "no CA", c: Config{CertFile: "c", KeyFile: "k"}, missing: []string{"--cluster-tls.ca-file"}},
		{name: "only a CA", c: Config{CAFile: "ca"}, missing: []string{"--cluster-tls.cert-file", "--cluster-tls.key-file"}},
		{name: "only a server name", c: Config{ServerName: "magnetar.cluster"}, missing: []string{"--cluster-tls.server-name"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.prefix = "cluster-tls."
			err := tt.c.Validate()
			if tt.missing == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, m := range tt.missing {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("error %q does not name %s", err, m)
				}
			}
			if _, lerr := tt.c.Load(); !errors.Is(lerr, ErrInvalidConfig) {
				t.Fatalf("Load of an invalid config = %v", lerr)
			}
		})
	}
}

func TestFlagsFillTheConfig(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.RegisterFlags("cluster-tls.", fs)
	if err := fs.Parse([]string{"--cluster-tls.ca-file", "ca.pem", "--cluster-tls.cert-file", "c.pem"}); err != nil {
		t.Fatal(err)
	}
	if c.CAFile != "ca.pem" || c.CertFile != "c.pem" || c.Enabled() {
		t.Fatalf("config %+v, enabled %v", c, c.Enabled())
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--cluster-tls.key-file") {
		t.Fatalf("Validate = %v, want it to name --cluster-tls.key-file", err)
	}
}

func TestOffIsNoCredentialsAndNoOptions(t *testing.T) {
	var c Config
	cr, err := c.Load()
	if err != nil || cr != nil {
		t.Fatalf("Load of the zero config = %v, %v", cr, err)
	}
	if len(cr.GRPCServerOptions()) != 0 || len(cr.GRPCDialOptions()) != 0 {
		t.Fatal("nil credentials gave gRPC options")
	}
}

// Two members of the cluster (certificates of its CA) talk both ways; a
// client without a certificate, one of another CA and a server of another
// CA are refused.
func TestMembersTalkAndStrangersAreRefused(t *testing.T) {
	ca := authtest.NewCA(t)
	a := load(t, files(t, ca.CertPEM, ca.Issue(t, "meta-1")))
	b := load(t, files(t, ca.CertPEM, ca.Issue(t, "bookie-1")))
	for _, cfg := range []*tls.Config{a.Server, a.Client} {
		if cfg.MinVersion != tls.VersionTLS12 {
			t.Fatalf("MinVersion %x", cfg.MinVersion)
		}
	}
	if a.Server.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("server ClientAuth %v", a.Server.ClientAuth)
	}
	if serr, cerr := handshake(t, a.Server, b.Client); serr != nil || cerr != nil {
		t.Fatalf("members: server %v, client %v", serr, cerr)
	}
	if serr, cerr := handshake(t, b.Server, a.Client); serr != nil || cerr != nil {
		t.Fatalf("members the other way: server %v, client %v", serr, cerr)
	}

	other := authtest.NewCA(t)
	stranger := load(t, files(t, other.CertPEM, other.Issue(t, "meta-1")))
	noCert := b.Client.Clone()
	noCert.Certificates = nil
	for name, client := range map[string]*tls.Config{"no certificate": noCert, "another CA's certificate": stranger.Client} {
		if client == stranger.Client {
			client = client.Clone()
			client.RootCAs = ca.Pool() // trusts the server; the server must not trust it
		}
		serr, cerr := handshake(t, a.Server, client)
		if serr == nil || cerr == nil {
			t.Fatalf("client with %s: server %v, client %v; want both to fail", name, serr, cerr)
		}
		if ne := net.Error(nil); errors.As(cerr, &ne) && ne.Timeout() {
			t.Fatalf("client with %s: timed out instead of being refused", name)
		}
	}
	if _, cerr := handshake(t, stranger.Server, a.Client); cerr == nil {
		t.Fatal("a member accepted a server of another CA")
	}
}

// With a server name, clients check that name in the server's certificate
// whatever address they dial.
func TestServerNameIsCheckedInsteadOfTheHost(t *testing.T) {
	ca := authtest.NewCA(t)
	named := files(t, ca.CertPEM, ca.Issue(t, "m1", "magnetar.cluster"))
	named.ServerName = "magnetar.cluster"
	a := load(t, named)
	if a.Client.ServerName != "magnetar.cluster" {
		t.Fatalf("client ServerName %q", a.Client.ServerName)
	}
	if serr, cerr := handshake(t, a.Server, a.Client); serr != nil || cerr != nil {
		t.Fatalf("server %v, client %v", serr, cerr)
	}
	unnamed := load(t, files(t, ca.CertPEM, ca.Issue(t, "m2")))
	if _, cerr := handshake(t, unnamed.Server, a.Client); cerr == nil {
		t.Fatal("a server whose certificate lacks the server name was accepted")
	}
	// Load refuses a certificate that lacks its own server name.
	wrong := files(t, ca.CertPEM, ca.Issue(t, "m3"))
	wrong.ServerName = "magnetar.cluster"
	if _, err := wrong.Load(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "server-name") {
		t.Fatalf("Load = %v, want a server-name error", err)
	}
}

func TestLoadRefusesFilesThatCannotWork(t *testing.T) {
	ca, other := authtest.NewCA(t), authtest.NewCA(t)
	good := ca.Issue(t, "m1")
	serverOnly := issue(t, x509.ExtKeyUsageServerAuth)
	for _, tt := range []struct {
		name, want string
		c          func(t *testing.T) Config
	}{
		{"a missing CA file", "no such file", func(t *testing.T) Config {
			c := files(t, ca.CertPEM, good)
			c.CAFile = filepath.Join(t.TempDir(), "none.pem")
			return c
		}},
		{"a CA file without a certificate", "no PEM certificate", func(t *testing.T) Config { return files(t, []byte("not PEM\n"), good) }},
		{"a key that is not the certificate's", "certificate", func(t *testing.T) Config {
			l := good
			l.KeyPEM = ca.Issue(t, "m2").KeyPEM
			return files(t, ca.CertPEM, l)
		}},
		{"a certificate of another CA", "not a certificate of the cluster CA", func(t *testing.T) Config { return files(t, ca.CertPEM, other.Issue(t, "m1")) }},
		{"a certificate for servers only", "clientAuth", func(t *testing.T) Config { return files(t, serverOnly.caPEM, serverOnly.leaf) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c(t)
			_, err := c.Load()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
}

type issued struct {
	caPEM []byte
	leaf  authtest.Leaf
}

// issue makes a CA and a leaf with only the given extended key usage
// (authtest's leaves have both).
func issue(t *testing.T, eku x509.ExtKeyUsage) issued {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	create := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		if parent == nil { // self-signed
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	caKey, leafKey := newKey(), newKey()
	now := time.Now()
	caCert, caPEM := create(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}, nil, &caKey.PublicKey, caKey)
	_, leafPEM := create(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}}, caCert, &leafKey.PublicKey, caKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return issued{caPEM: caPEM, leaf: authtest.Leaf{CertPEM: leafPEM, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}}
}
