package kafka

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Limits against hostile or broken clients, each set in Config and listed
// in docs/kafka.md: connection caps (admitLocked), idle and read deadlines
// (conn.readWithin), a frame cap before login and a server-wide budget of
// request bytes (requestBudget), failed-login backoff (sasl_backoff.go) and
// the accept loop's backoff (accept.go). What they refuse is counted in
// Server.stats and logged at most once per logEvery per kind, since a
// client can repeat it at will.

// Errors that end a connection for a limit.
var (
	// errIdle: no request for connections-max-idle.
	errIdle = errors.New("kafka: connection idle")
	// errReadTimeout: a frame, or the TLS handshake, did not arrive within
	// request-read-timeout.
	errReadTimeout = errors.New("kafka: request not received in time")
	// errFrameBeforeLogin: a frame over sasl-max-receive-size before login.
	errFrameBeforeLogin = errors.New("kafka: request too large before SASL authentication")
	// errStopped: the server is closing; what was read is answered.
	errStopped = errors.New("kafka: server closing")
)

// counters count what the limits did, for the logs and tests.
type counters struct {
	acceptErrors     atomic.Int64 // temporary accept failures (EMFILE...) backed off from
	refusedConns     atomic.Int64 // connections over max-connections or max-connections-per-ip
	idleClosed       atomic.Int64 // connections closed after connections-max-idle
	readTimeouts     atomic.Int64 // frames or TLS handshakes slower than request-read-timeout
	framesBeforeAuth atomic.Int64 // frames over sasl-max-receive-size before login
	authFailures     atomic.Int64 // failed SASL logins
	authThrottled    atomic.Int64 // SASL logins refused unchecked: their source's backoff was full
}

// logEvery is how often a rate-limited log line may repeat.
const logEvery = 10 * time.Second

// logLimiter lets one log line through per logEvery and counts the others.
type logLimiter struct {
	mu struct {
		sync.Mutex
		next       time.Time
		suppressed int
	}
}

// allow reports whether to log now, and how many lines were suppressed
// since the last one let through.
func (l *logLimiter) allow() (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Before(l.mu.next) {
		l.mu.suppressed++
		return 0, false
	}
	suppressed, l.mu.suppressed, l.mu.next = l.mu.suppressed, 0, now.Add(logEvery)
	return suppressed, true
}

// logLimiters are the server's rate-limited log lines, one per kind.
type logLimiters struct {
	accept, refused, closed, auth logLimiter
}

// admitLocked counts a new connection from ip, unless it is over
// max-connections or max-connections-per-ip: then it returns which.
func (s *Server) admitLocked(ip string) (over string) {
	switch {
	case s.mu.open >= s.cfg.MaxConnections:
		return "max-connections"
	case s.mu.perIP[ip] >= s.cfg.MaxConnectionsPerIP:
		return "max-connections-per-ip"
	}
	s.mu.open++
	s.mu.perIP[ip]++
	return ""
}

// release uncounts a connection admitted from ip.
func (s *Server) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.open--
	if s.mu.perIP[ip]--; s.mu.perIP[ip] == 0 {
		delete(s.mu.perIP, ip)
	}
}

// refuse closes a connection over a connection cap.
func (s *Server) refuse(nc net.Conn, ip, over string) {
	nc.Close()
	total := s.stats.refusedConns.Add(1)
	if suppressed, ok := s.logs.refused.allow(); ok {
		s.log.Warn("refusing connection", "remote", ip, "limit", over,
			"max_connections", s.cfg.MaxConnections, "max_connections_per_ip", s.cfg.MaxConnectionsPerIP,
			"refused_total", total, "suppressed", suppressed)
	}
}

// requestBudget bounds the bytes of requests read and not yet handled,
// over all connections (queued-max-request-bytes). A connection reserves a
// frame's size before it reads the frame (and so before it allocates it),
// waiting without reading while the budget is spent, which pushes back on
// its client through TCP; the reservation is released once the request is
// handled. Config.Validate makes the budget at least max-request-bytes, so
// any frame allowed can be read.
type requestBudget struct {
	sem      *semaphore.Weighted
	limit    int64
	reserved atomic.Int64 // bytes reserved now
	peak     atomic.Int64 // the most bytes ever reserved
	waits    atomic.Int64 // reservations that found no room and waited
}

func newRequestBudget(limit int64) *requestBudget {
	return &requestBudget{sem: semaphore.NewWeighted(limit), limit: limit}
}

// acquire waits for room for n bytes (or until ctx ends) and returns the
// weight to release.
func (b *requestBudget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.limit)
	if !b.sem.TryAcquire(n) {
		b.waits.Add(1)
		if err := b.sem.Acquire(ctx, n); err != nil {
			return 0, err
		}
	}
	cur := b.reserved.Add(n)
	for {
		p := b.peak.Load()
		if cur <= p || b.peak.CompareAndSwap(p, cur) {
			return n, nil
		}
	}
}

func (b *requestBudget) release(n int64) {
	b.reserved.Add(-n)
	b.sem.Release(n)
}

// maxQuoted is how much of a client-supplied string an error or a log
// line quotes.
const maxQuoted = 128

// clip returns s cut to at most n bytes (marked with "..."), copied so
// that it does not keep a large input alive.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.Clone(s[:n]) + "..."
}
