package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func saslServer(t *testing.T) *testServer {
	return newTestServer(t, func(c *Config) {
		c.SASLMechanisms = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
		c.SASLUsers = "alice:s3cret,bob:hunter2"
	})
}

// franz-go logs in with each mechanism and then works normally; a wrong
// password, an unknown user or a disabled mechanism is refused with the
// error Kafka gives.
func TestSASLLoginsWithEveryMechanism(t *testing.T) {
	ts := saslServer(t)
	mechs := map[string]func(user, pass string) sasl.Mechanism{
		"PLAIN":         func(u, p string) sasl.Mechanism { return plain.Auth{User: u, Pass: p}.AsMechanism() },
		"SCRAM-SHA-256": func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha256Mechanism() },
		"SCRAM-SHA-512": func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha512Mechanism() },
	}
	for name, mech := range mechs {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			adm := kadm.NewClient(newClient(t, ts, kgo.SASL(mech("alice", "s3cret"))))
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, "sasl-"+name); err != nil {
				t.Fatalf("create topic after logging in: %v", err)
			}
			for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "s3cret"}} {
				cl := newClient(t, ts, kgo.SASL(mech(bad[0], bad[1])), kgo.RequestRetries(0))
				_, err := kadm.NewClient(cl).ListTopics(ctx)
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("login as %s/%s: %v, want SASL_AUTHENTICATION_FAILED", bad[0], bad[1], err)
				}
			}
		})
	}
}

// The handshake lists the enabled mechanisms, on success and on failure;
// a request before logging in closes the connection; after a version 0
// handshake the PLAIN token travels bare and is answered with an empty
// bare token; a failed SaslAuthenticate is answered, then the connection
// closed.
func TestSASLHandshakeRawTokensAndUnauthenticatedRequests(t *testing.T) {
	ts := saslServer(t)
	all := []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

	c := ts.dial(t)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "GSSAPI"
	r := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
	if r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !slices.Equal(r.SupportedMechanisms, all) {
		t.Fatalf("GSSAPI: %+v", r)
	}
	c.send(kmsg.NewPtrMetadataRequest())
	c.expectClosed()

	// Version 0: bare tokens.
	c = ts.dial(t)
	hs.Version, hs.Mechanism = 0, "PLAIN"
	r = c.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
	if r.ErrorCode != 0 || !slices.Equal(r.SupportedMechanisms, all) {
		t.Fatalf("PLAIN v0: %+v", r)
	}
	token := []byte("\x00bob\x00hunter2")
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
	if _, err := c.nc.Write(append(frame, token...)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
		t.Fatalf("bare answer: size %v, err %v; want an empty token", size, err)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	if _, ok := c.roundTrip(meta).(*kmsg.MetadataResponse); !ok {
		t.Fatal("no metadata after the login")
	}

	// Version 1 with a wrong password: answered, then closed.
	c = ts.dial(t)
	hs.Version = 1
	c.roundTrip(hs)
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version, auth.SASLAuthBytes = 2, []byte("\x00bob\x00nope")
	ar := c.roundTrip(auth).(*kmsg.SASLAuthenticateResponse)
	if ar.ErrorCode != kerr.SaslAuthenticationFailed.Code || ar.ErrorMessage == nil {
		t.Fatalf("wrong password: %+v", ar)
	}
	c.expectClosed()
}

// Without SASL configured every mechanism is refused and requests need no
// login.
func TestSASLDisabledRefusesHandshakes(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if r := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(r.SupportedMechanisms) != 0 {
		t.Fatalf("handshake without SASL: %+v", r)
	}
}

func TestSASLConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		mechs, users string
	}{
		{"PLAIN,OAUTHBEARER", "a:b"},
		{"PLAIN", ""},
		{"PLAIN", "a"},
		{"PLAIN", "a:b,a:c"},
	} {
		cfg := DefaultConfig()
		cfg.SASLMechanisms, cfg.SASLUsers = tc.mechs, tc.users
		if _, err := NewServer(cfg, nil, nil); err == nil {
			t.Errorf("mechanisms %q users %q: no error", tc.mechs, tc.users)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "users")
	if err := os.WriteFile(file, []byte("# users\nalice:x\n\ncarol:y:z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pairs, err := parseUsers("bob:b", file)
	if err != nil || len(pairs) != 3 || pairs["carol"] != "y:z" {
		t.Fatalf("users from a flag and a file: %v %v", pairs, err)
	}
}

// FuzzSASLMessages feeds arbitrary client messages to PLAIN and both SCRAM
// sessions: each is refused or accepted, never a panic.
func FuzzSASLMessages(f *testing.F) {
	f.Add("SCRAM-SHA-256", []byte("n,,n=alice,r=abc"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add("SCRAM-SHA-512", []byte("y,a=alice,n=alice,r=x,e=ext"), []byte("c=eSxhPWFsaWNlLA==,r=x,p="))
	f.Add("SCRAM-SHA-256", []byte("n,,n=a=2Cb=3D,r=1"), []byte(",p=,p="))
	f.Add("PLAIN", []byte("\x00alice\x00s3cret"), []byte(nil))
	us := newUsers(map[string]string{"alice": "s3cret"})
	f.Fuzz(func(t *testing.T, mech string, first, second []byte) {
		if mech != mechPlain && scramHashes[mech].name == "" {
			return
		}
		s := newSASLSession(mech, us)
		if _, done, err := s.step(first); err != nil || done {
			return
		}
		s.step(second)
	})
}

// A TLS listener serves franz-go over TLS, and Metadata tells its
// clients the TLS listener's address.
func TestTLSListener(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	cfg := DefaultConfig()
	cfg.TLSListenAddr, cfg.TLSCertFile, cfg.TLSKeyFile = "127.0.0.1:0", certFile, keyFile
	ts := newTestServer(t, func(c *Config) { *c = cfg; c.ListenAddr = "127.0.0.1:0" })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ts.s.ServeTLS(ln) }()
	t.Cleanup(func() {
		ts.s.Close()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "secure"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "secure", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if len(md.Brokers) != 1 || md.Brokers[0].Host != host || itoa(md.Brokers[0].Port) != port {
		t.Fatalf("brokers advertised over TLS: %+v, want %s", md.Brokers, ln.Addr())
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	resp, err := dc.RequestWith(ctx, cl)
	if err != nil || resp.ClusterID != clusterID || len(resp.Brokers) != 1 || itoa(resp.Brokers[0].Port) != port {
		t.Fatalf("describe cluster: %+v %v", resp, err)
	}
	// A plain-text client on the TLS port gets nowhere.
	plainCl := newClient(t, &testServer{addr: ln.Addr().String()}, kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))
	tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(plainCl).ListTopics(tctx); err == nil {
		t.Fatal("a plain-text client talked to the TLS listener")
	}
}

func itoa(i int32) string { return big.NewInt(int64(i)).String() }

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and
// returns their files and a pool trusting the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "magnetar test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// An unknown user gets a salt of its own, the same at every login, like a
// known user: one salt shared by every unknown name told them apart.
func TestUnknownUsersGetSaltsOfTheirOwn(t *testing.T) {
	u := newUsers(map[string]string{"alice": "secret"})
	salt := func(user string) string {
		c, _ := u.credential(user, mechSCRAMSHA256)
		return string(c.salt)
	}
	first, again := salt("bob"), salt("bob")
	if first != again {
		t.Fatal("an unknown user's salt changes between logins")
	}
	if salt("bob") == salt("carol") {
		t.Fatal("two unknown users share a salt")
	}
	if len(salt("bob")) != len(salt("alice")) {
		t.Fatalf("an unknown user's salt has %d bytes, a known one's %d", len(salt("bob")), len(salt("alice")))
	}
}
