package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/internal/connlimit"
	"github.com/magnetar-mq/magnetar/internal/errmap"
)

// nodeID is the Kafka node ID of a broker without bundle ownership, which
// leads every partition; with ownership each broker has its own
// (owners.go).
const nodeID = 0

// clusterID is what Metadata reports as the cluster ID.
const clusterID = "magnetar"

// drainTimeout bounds how long Close waits for pending responses before
// it closes connections regardless.
const drainTimeout = 5 * time.Second

// Server serves the Kafka protocol for one broker.
type Server struct {
	cfg Config
	b   *broker.Broker
	log *slog.Logger
	co  *coordinator

	// SASL: the enabled mechanisms (none: no authentication), users, and
	// the verifier of OAUTHBEARER tokens (nil unless enabled).
	mechanisms []string
	users      *users
	tokens     *auth.Verifier
	tlsConfig  *tls.Config // of ServeTLS; nil unless configured

	stop  chan struct{} // closed by Close: stop reading, finish what is pending
	conns sync.WaitGroup

	// Limits (limits.go): the request budget, the failed-login backoff,
	// and what they refused.
	budget  *requestBudget
	backoff *authBackoff
	stats   counters
	logs    logLimiters

	mu struct {
		sync.Mutex
		closed        bool
		advertised    string // of plain-text listeners
		tlsAdvertised string // of TLS listeners
		listeners     []net.Listener
		conns         map[*conn]struct{}
		open          int            // connections admitted and not yet ended
		perIP         map[string]int // of open, by remote IP
	}
}

// NewServer returns the Kafka protocol server of b.
func NewServer(cfg Config, b *broker.Broker, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mechs, err := enabledMechanisms(cfg.SASLMechanisms)
	if err != nil {
		return nil, err
	}
	var us *users
	if usesPasswords(mechs) {
		pairs, err := parseUsers(cfg.SASLUsers, cfg.SASLUsersFile)
		if err != nil {
			return nil, err
		}
		if len(pairs) == 0 {
			return nil, errors.New("kafka: sasl-mechanisms is set but no users are configured")
		}
		us = newUsers(pairs)
	}
	tokens, err := oauthBearerVerifier(cfg, mechs)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if cfg.TLSCertFile != "" {
		if tc, err = serverTLSConfig(cfg); err != nil {
			return nil, err
		}
	}
	// Kafka topics live in one namespace: make sure it exists, as the
	// broker does for its own default namespace.
	if ns, err := broker.ParseNamespaceName(cfg.DefaultNamespace); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := b.EnsureNamespace(ctx, ns); err != nil {
			log.Warn("creating the Kafka namespace", "component", "kafka", "namespace", cfg.DefaultNamespace, "err", err)
		}
		cancel()
	}
	s := &Server{cfg: cfg, b: b, log: log.With("component", "kafka"), stop: make(chan struct{}),
		mechanisms: mechs, users: us, tokens: tokens, tlsConfig: tc,
		budget:  newRequestBudget(int64(cfg.QueuedMaxRequestBytes)),
		backoff: newAuthBackoff(cfg.SASLFailureDelay, cfg.SASLFailureMaxDelay)}
	s.mu.advertised, s.mu.tlsAdvertised = cfg.AdvertisedAddr, cfg.TLSAdvertisedAddr
	s.mu.conns = make(map[*conn]struct{})
	s.mu.perIP = make(map[string]int)
	s.co = newCoordinator(cfg) // last: nothing after it can fail and leak its goroutine
	return s, nil
}

// serverTLSConfig loads the TLS listener's certificate and, for mutual
// TLS, the client CAs: with them, a client must present a certificate
// they signed.
func serverTLSConfig(cfg Config) (*tls.Config, error) {
	files := auth.TLSFiles{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile,
		ClientCAFile: cfg.TLSClientCAFile, RequireClientCert: cfg.TLSClientCAFile != ""}
	tc, err := files.ServerTLS()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return tc, nil
}

// Serve accepts connections on ln until Close, then returns nil. Unless
// Config.AdvertisedAddr is set, Metadata advertises ln's address.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS is Serve for the TLS listener: it speaks TLS on ln with the
// configured certificate, and Metadata advertises Config.TLSAdvertisedAddr
// or ln's address to its clients.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.tlsConfig == nil {
		ln.Close()
		return errors.New("kafka: ServeTLS without tls-cert-file and tls-key-file")
	}
	return s.serve(tls.NewListener(ln, s.tlsConfig), true)
}

func (s *Server) serve(ln net.Listener, isTLS bool) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.mu.listeners = append(s.mu.listeners, ln)
	adv := &s.mu.advertised
	if isTLS {
		adv = &s.mu.tlsAdvertised
	}
	if *adv == "" {
		*adv = advertisedFor(ln.Addr())
	}
	s.mu.Unlock()
	for {
		nc, err := s.accept(ln)
		if nc == nil {
			return err
		}
		ip := connlimit.Source(nc)
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		if over := s.admitLocked(ip); over != "" {
			s.mu.Unlock()
			s.refuse(nc, ip, over)
			continue
		}
		s.conns.Add(1) // under mu, so Close's Wait sees every connection
		s.mu.Unlock()
		go func() {
			defer s.conns.Done()
			defer s.release(ip)
			s.serveConn(nc, isTLS)
		}()
	}
}

// serveConn serves one connection until the client closes it, it breaks
// the protocol, or the server closes. It closes nc.
func (s *Server) serveConn(nc net.Conn, isTLS bool) {
	c := newConn(s, nc)
	c.tls = isTLS
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.mu.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.mu.conns, c)
		s.mu.Unlock()
	}()
	c.serve()
}

// Close stops accepting, stops reading requests, gives pending responses
// (produce acknowledgements in particular) a few seconds to be written and
// then closes every connection. It waits for every goroutine it started.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	lns := s.mu.listeners
	conns := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	close(s.stop)
	var errs []error
	for _, ln := range lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, c := range conns {
		c.stopReading()
	}
	t := time.AfterFunc(drainTimeout, func() {
		for _, c := range conns {
			c.abort()
		}
	})
	s.conns.Wait()
	t.Stop()
	s.co.close()
	return errors.Join(errs...)
}

// advertised is the host:port Metadata tells the connection's client to
// use: the address of the kind of listener it came in on.
func (c *conn) advertised() (string, int32) {
	s := c.s
	s.mu.Lock()
	addr := s.mu.advertised
	if c.tls {
		addr = s.mu.tlsAdvertised
	}
	s.mu.Unlock()
	if addr == "" {
		addr = "127.0.0.1:9092"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 9092
	}
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

func advertisedFor(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// topicName maps a Kafka topic name into the configured namespace. Kafka
// names have no '/', so full names are refused.
func (s *Server) topicName(name string) (broker.TopicName, error) {
	if name == "" {
		return broker.TopicName{}, fmt.Errorf("%w: empty Kafka topic name", broker.ErrInvalidTopicName)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			return broker.TopicName{}, fmt.Errorf("%w: %q: Kafka topic names have no '/'", broker.ErrInvalidTopicName, name)
		}
	}
	return broker.ParseTopicName(name, s.cfg.DefaultNamespace)
}

// requestContext bounds an admin request by its timeout field when it has
// one, else by a default.
func requestContext(ctx context.Context, timeoutMillis int32) (context.Context, context.CancelFunc) {
	d := 30 * time.Second
	if timeoutMillis > 0 && time.Duration(timeoutMillis)*time.Millisecond < d {
		d = time.Duration(timeoutMillis) * time.Millisecond
	}
	return context.WithTimeout(ctx, d)
}

// kafkaCodeError is an error answered with a Kafka code of its own, for
// refusals that are the protocol's rather than the broker's.
type kafkaCodeError int16

func (e kafkaCodeError) Error() string {
	if ke, ok := kerr.ErrorForCode(int16(e)).(*kerr.Error); ok {
		return ke.Message
	}
	return fmt.Sprintf("kafka error code %d", int16(e))
}

// kafkaCode is the Kafka error code answering err (0 for nil).
func kafkaCode(err error) int16 {
	var code kafkaCodeError
	if errors.As(err, &code) {
		return int16(code)
	}
	return errmap.KafkaCode(err)
}
