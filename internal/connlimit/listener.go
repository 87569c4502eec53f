package connlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener wraps a net.Listener with the caps. Accept returns only
// connections within them; Refused counts those it closed.
type Listener struct {
	net.Listener
	max, perIP int

	refused atomic.Int64
	mu      struct {
		sync.Mutex
		open int
		byIP map[string]int
	}
}

// Wrap caps ln at max open connections, perIP of them from one source
// (Source; 0: no cap).
func Wrap(ln net.Listener, max, perIP int) *Listener {
	l := &Listener{Listener: ln, max: max, perIP: perIP}
	l.mu.byIP = make(map[string]int)
	return l
}

// Refused is the number of connections closed for a cap.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// Accept waits for the next connection within the caps.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := Source(c)
		if l.admit(ip) {
			return &conn{Conn: c, l: l, ip: ip}, nil
		}
		l.refused.Add(1)
		_ = c.Close()
	}
}

func (l *Listener) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.max > 0 && l.mu.open >= l.max) || (l.perIP > 0 && l.mu.byIP[ip] >= l.perIP) {
		return false
	}
	l.mu.open++
	l.mu.byIP[ip]++
	return true
}

func (l *Listener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.open--
	if l.mu.byIP[ip]--; l.mu.byIP[ip] <= 0 {
		delete(l.mu.byIP, ip)
	}
}

// Source is the key of a connection's source for per-source limits: its
// IPv4 address, or its IPv6 /64 (a host usually has a whole /64, so a key
// per IPv6 address would let one host take any number of places).
func Source(c net.Conn) string {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			return host
		}
		return c.RemoteAddr().String()
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return a.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// conn gives its place back when closed (once).
type conn struct {
	net.Conn
	l    *Listener
	ip   string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
