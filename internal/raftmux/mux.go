package raftmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Errors of a Mux.
var (
	// ErrClosed is returned by Accept on a closed Layer or Mux.
	ErrClosed = errors.New("raftmux: closed")
	// ErrBadHeader means a connection did not start with a valid header.
	ErrBadHeader = errors.New("raftmux: bad connection header")
)

const (
	magic         = "MGRM"
	version       = 1
	headerTimeout = 5 * time.Second // for an accepted connection to handshake and send its header
)

// appendHeader appends the header of a connection for group name.
func appendHeader(dst []byte, name string) ([]byte, error) {
	if len(name) == 0 || len(name) > 255 {
		return nil, fmt.Errorf("raftmux: group name must be 1-255 bytes, got %d", len(name))
	}
	dst = append(dst, magic...)
	dst = append(dst, version, byte(len(name)))
	return append(dst, name...), nil
}

// readHeader reads a connection's header and returns the group it names.
func readHeader(r io.Reader) (string, error) {
	var h [6]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if string(h[:4]) != magic || h[4] != version || h[5] == 0 {
		return "", fmt.Errorf("%w: % x", ErrBadHeader, h)
	}
	name := make([]byte, h[5])
	if _, err := io.ReadFull(r, name); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	return string(name), nil
}

// Mux accepts connections on one listener and routes them to Layers.
type Mux struct {
	ln        net.Listener
	advertise net.Addr
	log       *slog.Logger
	wg        sync.WaitGroup
	// serverTLS and clientTLS, both nil or both set: TLS on every
	// connection (WithTLS).
	serverTLS, clientTLS *tls.Config

	mu struct {
		sync.Mutex
		layers map[string]*Layer
		closed bool
	}
}

// Option configures a Mux.
type Option func(*Mux)

// WithTLS makes every connection of the Mux TLS. An accepted connection
// must complete a handshake under server (which should require and
// verify a client certificate) within the header timeout, or it is
// closed; Layers dial with client. Every Mux of the group must have it.
func WithTLS(server, client *tls.Config) Option {
	return func(m *Mux) { m.serverTLS, m.clientTLS = server, client }
}

// Listen listens on bindAddr; advertise (host:port) is the address the
// other nodes dial, and what every Layer reports as its Addr.
func Listen(bindAddr, advertise string, log *slog.Logger, opts ...Option) (*Mux, error) {
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("raftmux: advertise address %q: %w", advertise, err)
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		return nil, fmt.Errorf("raftmux: advertise address %q is not a concrete IP:port", advertise)
	}
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("raftmux: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mux{ln: ln, advertise: adv, log: log.With("component", "raftmux")}
	for _, o := range opts {
		o(m)
	}
	if (m.serverTLS == nil) != (m.clientTLS == nil) {
		_ = ln.Close()
		return nil, errors.New("raftmux: TLS needs both a server and a client config")
	}
	if m.serverTLS != nil {
		m.ln = tls.NewListener(ln, m.serverTLS)
	}
	m.mu.layers = map[string]*Layer{}
	m.wg.Go(m.acceptLoop)
	return m, nil
}

// Addr is the listener's address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Layer returns the stream layer of group name, creating it. Its Close
// detaches it from the Mux.
func (m *Mux) Layer(name string) (*Layer, error) {
	header, err := appendHeader(nil, name)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return nil, ErrClosed
	}
	if _, ok := m.mu.layers[name]; ok {
		return nil, fmt.Errorf("raftmux: group %q already has a layer", name)
	}
	l := &Layer{m: m, name: name, header: header, conns: make(chan net.Conn), closed: make(chan struct{})}
	m.mu.layers[name] = l
	return l, nil
}

// Close stops accepting, closes every Layer and waits for the Mux's
// goroutines.
func (m *Mux) Close() error {
	m.mu.Lock()
	m.mu.closed = true
	layers := m.mu.layers
	m.mu.layers = map[string]*Layer{}
	m.mu.Unlock()
	err := m.ln.Close()
	for _, l := range layers {
		l.closeOnce.Do(func() { close(l.closed) })
	}
	m.wg.Wait()
	return err
}

func (m *Mux) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.mu.Lock()
			closed := m.mu.closed
			m.mu.Unlock()
			if !closed {
				m.log.Error("accepting raft connections stopped", "err", err)
			}
			return
		}
		m.wg.Go(func() { m.route(c) })
	}
}

// route completes c's TLS handshake (with TLS), reads its header and
// hands c to its group's Layer.
func (m *Mux) route(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(headerTimeout))
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			m.log.Warn("refusing a raft connection: TLS handshake failed", "remote", c.RemoteAddr(), "err", err)
			_ = c.Close()
			return
		}
	}
	name, err := readHeader(c)
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		m.log.Warn("dropping a raft connection", "remote", c.RemoteAddr(), "err", err)
		_ = c.Close()
		return
	}
	m.mu.Lock()
	l := m.mu.layers[name]
	m.mu.Unlock()
	if l == nil {
		m.log.Warn("dropping a raft connection for a group not hosted here", "remote", c.RemoteAddr(), "group", name)
		_ = c.Close()
		return
	}
	select {
	case l.conns <- c:
	case <-l.closed:
		_ = c.Close()
	}
}

// Layer is one group's raft.StreamLayer over a Mux.
type Layer struct {
	m         *Mux
	name      string
	header    []byte
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*Layer)(nil)

// Accept waits for the next connection for this group.
func (l *Layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, ErrClosed
	}
}

// Close detaches the layer: later connections for its group are dropped.
func (l *Layer) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.m.mu.Lock()
		if l.m.mu.layers[l.name] == l {
			delete(l.m.mu.layers, l.name)
		}
		l.m.mu.Unlock()
	})
	return nil
}

// Addr is the Mux's advertised address.
func (l *Layer) Addr() net.Addr { return l.m.advertise }

// Dial connects to the Mux at address (over TLS if the Mux has it) and
// names this group.
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.m.dial(string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(l.header); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// dial connects to address within timeout, handshake included with TLS.
func (m *Mux) dial(address string, timeout time.Duration) (net.Conn, error) {
	if m.clientTLS == nil {
		return net.DialTimeout("tcp", address, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{Config: m.clientTLS}
	return d.DialContext(ctx, "tcp", address)
}
