package connlimit

import (
	"io"
	"net"
	"testing"
	"time"
)

// accepted serves ln in the background, handing out what it accepts.
func accepted(t *testing.T, ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ch
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedByServer reports whether the server closed c (a read ends with
// EOF) rather than keeping it open.
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF
}

func TestConnectionsOverTheCapsAreClosedAndTheirPlacesComeBack(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, 0, 2)
	got := accepted(t, ln)
	addr := raw.Addr().String()

	a, b := dial(t, addr), dial(t, addr)
	first, second := <-got, <-got
	over := dial(t, addr)
	if !closedByServer(t, over) {
		t.Fatal("a third connection from one address was kept open with max 2 per address")
	}
	if ln.Refused() != 1 {
		t.Fatalf("Refused = %d, want 1", ln.Refused())
	}
	_ = first.Close()
	_ = a.Close()
	c := dial(t, addr)
	third := <-got // its place came back
	for _, s := range []net.Conn{second, third} {
		_ = s.Close()
	}
	_ = b.Close()
	_ = c.Close()
}

func TestTheGlobalCapCountsEveryAddress(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, 1, 0)
	got := accepted(t, ln)
	dial(t, raw.Addr().String())
	held := <-got
	defer held.Close()
	if over := dial(t, raw.Addr().String()); !closedByServer(t, over) {
		t.Fatal("a second connection was kept open with max 1")
	}
}

func TestASourceIsAnIPv4AddressOrAnIPv6Slash64(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"192.0.2.7:5000", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:6000", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:5000", "192.0.2.7"},
	} {
		a, err := net.ResolveTCPAddr("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := Source(fakeConn{remote: a}); got != c.want {
			t.Errorf("Source(%s) = %s, want %s", c.addr, got, c.want)
		}
	}
}

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (f fakeConn) RemoteAddr() net.Addr { return f.remote }
