package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/errmap"
)

// nodeID is this broker's Kafka node ID. Every partition is led by it for
// now; with bundle ownership each broker will advertise its own.
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

	stop  chan struct{} // closed by Close: stop reading, finish what is pending
	conns sync.WaitGroup

	mu struct {
		sync.Mutex
		closed     bool
		advertised string
		listeners  []net.Listener
		conns      map[*conn]struct{}
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
	s := &Server{cfg: cfg, b: b, log: log.With("component", "kafka"), stop: make(chan struct{}), co: newCoordinator(cfg)}
	s.mu.advertised = cfg.AdvertisedAddr
	s.mu.conns = make(map[*conn]struct{})
	return s, nil
}

// Serve accepts connections on ln until Close, then returns nil. Unless
// Config.AdvertisedAddr is set, Metadata advertises ln's address.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.mu.listeners = append(s.mu.listeners, ln)
	if s.mu.advertised == "" {
		s.mu.advertised = advertisedFor(ln.Addr())
	}
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("kafka: accept: %w", err)
		}
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.conns.Add(1) // under mu, so Close's Wait sees every connection
		s.mu.Unlock()
		go func() {
			defer s.conns.Done()
			s.ServeConn(nc)
		}()
	}
}

// ServeConn serves one connection until the client closes it, it breaks
// the protocol, or the server closes. It closes nc.
func (s *Server) ServeConn(nc net.Conn) {
	c := newConn(s, nc)
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

// advertised is the host:port Metadata tells clients to use.
func (s *Server) advertised() (string, int32) {
	s.mu.Lock()
	addr := s.mu.advertised
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
