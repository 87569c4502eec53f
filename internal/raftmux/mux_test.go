package raftmux

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
)

func listen(t *testing.T, opts ...Option) *Mux {
	t.Helper()
	m, err := Listen("127.0.0.1:0", "127.0.0.1:1", nil, opts...) // advertise fixed below
	if err != nil {
		t.Fatal(err)
	}
	m.advertise = m.Addr()
	t.Cleanup(func() { m.Close() })
	return m
}

func layer(t *testing.T, m *Mux, name string) *Layer {
	t.Helper()
	l, err := m.Layer(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A connection dialed by group x's layer reaches group x's layer on the
// other side, bytes intact; other groups do not see it.
func TestConnectionsReachTheirGroup(t *testing.T) {
	a, b := listen(t), listen(t)
	ax := layer(t, a, "shard-x")
	bx, by := layer(t, b, "shard-x"), layer(t, b, "shard-y")

	c, err := ax.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := bx.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if by.Addr().String() != b.Addr().String() {
		t.Fatalf("layer address %v, want the mux's %v", by.Addr(), b.Addr())
	}
	select {
	case c := <-by.conns:
		t.Fatalf("group y got a connection for x from %v", c.RemoteAddr())
	default:
	}
}

// Connections for a group not hosted here, or without a valid header, are
// closed.
func TestUnknownGroupsAndBadHeadersAreDropped(t *testing.T) {
	a, b := listen(t), listen(t)
	layer(t, b, "shard-x")
	az := layer(t, a, "shard-z")
	c, err := az.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	assertClosedByPeer(t, c)

	raw, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	assertClosedByPeer(t, raw)
}

func assertClosedByPeer(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if err == nil {
		t.Fatalf("read %d bytes from a connection the mux should drop", n)
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection was not closed")
	}
}

// A closed layer's Accept returns ErrClosed, and its group name can be
// taken again.
func TestClosedLayer(t *testing.T) {
	m := listen(t)
	l := layer(t, m, "g")
	if _, err := m.Layer("g"); err == nil {
		t.Fatal("a second layer for one group was allowed")
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	layer(t, m, "g")
}

// member returns the TLS option of a member of ca's cluster: client
// certificates required and verified, servers verified. cert nil: a
// client without a certificate.
func member(ca *authtest.CA, cert *authtest.Leaf) Option {
	return WithTLS(tlsConfigs(ca, cert))
}

func tlsConfigs(ca *authtest.CA, cert *authtest.Leaf) (server, client *tls.Config) {
	server = &tls.Config{MinVersion: tls.VersionTLS12, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	client = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool()}
	if cert != nil {
		server.Certificates = []tls.Certificate{cert.TLS}
		client.Certificates = []tls.Certificate{cert.TLS}
	}
	return server, client
}

// With TLS, members (certificates of the cluster CA) reach their groups
// as without; a plaintext mux, a client without a certificate and one with
// another CA's certificate are refused before their header is read.
func TestTLSAdmitsMembersOnly(t *testing.T) {
	ca := authtest.NewCA(t)
	l1, l2 := ca.Issue(t, "b1"), ca.Issue(t, "b2")
	a, b := listen(t, member(ca, &l1)), listen(t, member(ca, &l2))
	ax, bx := layer(t, a, "shard-x"), layer(t, b, "shard-x")

	c, err := ax.Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := bx.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, ok := got.(*tls.Conn); !ok {
		t.Fatalf("accepted a %T, want a TLS connection", got)
	}

	other := authtest.NewCA(t)
	foreign := other.Issue(t, "b1")
	fs, fc := tlsConfigs(other, &foreign)
	fc.RootCAs = ca.Pool() // trusts b's certificate: only b can refuse
	strangers := map[string]*Mux{
		"plaintext":                listen(t),
		"no client certificate":    listen(t, member(ca, nil)),
		"another CA's certificate": listen(t, WithTLS(fs, fc)),
	}
	for name, m := range strangers {
		t.Run(name, func(t *testing.T) {
			sx := layer(t, m, "shard-x")
			c, err := sx.Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second)
			if err != nil {
				return // refused in the handshake
			}
			assertClosedByPeer(t, c) // TLS 1.3: refused after the client's handshake ends
		})
	}
	select {
	case c := <-bx.conns:
		t.Fatalf("a stranger's connection from %v reached the group", c.RemoteAddr())
	default:
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, name := range []string{"a", "shard-0001", string(bytes.Repeat([]byte("x"), 255))} {
		h, err := appendHeader(nil, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readHeader(bytes.NewReader(h))
		if err != nil || got != name {
			t.Fatalf("%q: got %q, %v", name, got, err)
		}
	}
	for _, name := range []string{"", string(bytes.Repeat([]byte("x"), 256))} {
		if _, err := appendHeader(nil, name); err == nil {
			t.Fatalf("name of %d bytes accepted", len(name))
		}
	}
}

func FuzzReadHeader(f *testing.F) {
	h, _ := appendHeader(nil, "shard-1")
	f.Add(h)
	f.Add([]byte("MGRM\x01\x00"))
	f.Add([]byte("MGRM\x02\x01a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := readHeader(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v does not wrap ErrBadHeader", err)
			}
			return
		}
		again, err := appendHeader(nil, name)
		if err != nil || !bytes.HasPrefix(b, again) {
			t.Fatalf("header %x decoded to %q, which encodes to %x (%v)", b, name, again, err)
		}
	})
}
