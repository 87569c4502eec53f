package kafka

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// The accept loop's backoff, net/http's: after a temporary accept error
// (out of file descriptors, EMFILE/ENFILE, or of buffers; a connection
// reset before it was accepted) the loop waits 5ms, doubling to 1s while
// the errors last, and keeps serving; any other error stops the listener.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// nextAcceptDelay is the wait after a temporary accept error that followed
// a wait of d (0: the first error).
func nextAcceptDelay(d time.Duration) time.Duration {
	if d == 0 {
		return acceptBackoffMin
	}
	return min(2*d, acceptBackoffMax)
}

// temporaryAcceptErrors are the accept errors backed off from.
var temporaryAcceptErrors = []error{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN,
}

// temporaryAcceptError reports an accept error that does not mean the
// listener is broken.
func temporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, t := range temporaryAcceptErrors {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// accept returns ln's next connection, backing off from temporary errors;
// nil and no error once the server is closing.
func (s *Server) accept(ln net.Listener) (net.Conn, error) {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err == nil {
			return nc, nil
		}
		select {
		case <-s.stop:
			return nil, nil
		default:
		}
		if !temporaryAcceptError(err) {
			return nil, fmt.Errorf("kafka: accept: %w", err)
		}
		delay = nextAcceptDelay(delay)
		total := s.stats.acceptErrors.Add(1)
		if suppressed, ok := s.logs.accept.allow(); ok {
			s.log.Warn("accepting a connection failed; retrying", "err", err, "retry_in", delay,
				"accept_errors_total", total, "suppressed", suppressed)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return nil, nil
		}
	}
}
