package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake, versions 0-1. With --kafka.sasl-mechanisms set, a client
// must log in before any request but ApiVersions and the SASL ones: it
// names a mechanism here, then sends the mechanism's messages in
// SaslAuthenticate requests (version 1) or, after a version 0 handshake,
// as bare size-prefixed tokens. The response lists the enabled mechanisms,
// on success too. Without SASL configured every mechanism is
// UNSUPPORTED_SASL_MECHANISM. After failed logins from its source, a
// handshake waits for the source's slot (sasl_backoff.go).

// authState is a connection's login progress.
type authState struct {
	session saslSession // after a handshake
	mech    string      // of the handshake
	raw     bool        // version 0 handshake: tokens come bare
	// throttled: the login came while its source's failed-login backoff
	// was full, and is refused unchecked.
	throttled bool
	user      string // once authenticated
	done      bool
}

func (c *conn) handleSASLHandshake(req *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = slices.Clone(c.s.mechanisms)
	switch {
	case c.auth.done || c.auth.session != nil:
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !slices.Contains(c.s.mechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	default:
		c.auth.session, c.auth.mech = c.s.newSASLSession(req.Mechanism), req.Mechanism
		c.auth.raw = req.Version == 0
		c.waitLoginSlot()
	}
	return resp
}

// errUnauthenticated closes a connection that sends a request before it
// logs in.
var errUnauthenticated = errors.New("kafka: request before SASL authentication")

// checkAuthenticated refuses every request but ApiVersions and the SASL
// ones until the connection has logged in, when SASL is enabled.
func (c *conn) checkAuthenticated(q request) error {
	if len(c.s.mechanisms) == 0 || c.auth.done {
		return nil
	}
	switch q.req.(type) {
	case *kmsg.ApiVersionsRequest, *kmsg.SASLHandshakeRequest, *kmsg.SASLAuthenticateRequest:
		return nil
	}
	return fmt.Errorf("%w: %s", errUnauthenticated, kmsg.NameForKey(q.key))
}

// checkKeyBeforeLogin refuses, from its API key alone, a request other
// than the login's while SASL is required and not done, before the request
// is decoded: decoding takes many times a frame's size (a Metadata request
// of empty topic names, 24 times).
func (c *conn) checkKeyBeforeLogin(frame []byte) error {
	if len(c.s.mechanisms) == 0 || c.auth.done || len(frame) < 2 {
		return nil
	}
	switch key := int16(binary.BigEndian.Uint16(frame)); key {
	case int16(kmsg.ApiVersions), int16(kmsg.SASLHandshake), int16(kmsg.SASLAuthenticate):
		return nil
	default:
		return fmt.Errorf("%w: %s", errUnauthenticated, kmsg.NameForKey(key))
	}
}

// rawSASLToken answers one bare token after a version 0 handshake; an
// error (a failed login) closes the connection, as on Kafka, after the
// returned delay.
func (c *conn) rawSASLToken(token []byte) ([]byte, time.Duration, error) {
	answer, done, err := c.saslStep(token)
	if err != nil {
		return nil, c.loginFailed(err), err
	}
	if done {
		c.auth.raw = false
	}
	if answer == nil {
		answer = []byte{} // answered with an empty token
	}
	return answer, 0, nil
}

// errCounted marks the failure of a login already counted (and delayed)
// when it was refused.
var errCounted = errors.New("already counted")

// errAuthThrottled refuses a login, unchecked, from a source whose
// failed-login backoff is full (sasl_backoff.go).
var errAuthThrottled = fmt.Errorf("%w: too many failed logins from this address, try again later", errAuthFailed)

// waitLoginSlot holds a new login until its source's slot, or marks it to
// be refused unchecked when the source's backoff is full.
func (c *conn) waitLoginSlot() {
	at, ok := c.s.backoff.slot(c.source, time.Now())
	if !ok {
		c.auth.throttled = true
		return
	}
	c.pause(time.Until(at))
}

// saslStep feeds a client message to the login in progress.
func (c *conn) saslStep(msg []byte) ([]byte, bool, error) {
	switch {
	case c.auth.throttled:
		return nil, false, errAuthThrottled
	case len(msg) > maxSASLToken:
		return nil, false, fmt.Errorf("%w: SASL message of %d bytes", errAuthFailed, len(msg))
	}
	answer, done, err := c.auth.session.step(msg)
	if r, ok := c.auth.session.(interface{ takeRefusal() error }); ok {
		if refused := r.takeRefusal(); refused != nil {
			// Counted, and its answer delayed, now: a client may hang
			// up instead of acknowledging the refusal.
			c.pause(c.loginFailed(refused))
		}
	}
	if err != nil {
		return nil, false, err
	}
	if done {
		c.auth.done, c.auth.user = true, c.auth.session.user()
		c.log.Debug("SASL authenticated", "user", c.auth.user)
	}
	return answer, done, nil
}

// loginFailed counts and logs a failed login and returns how long to
// delay its answer: the source's backoff, or the longest delay for a login
// refused unchecked.
func (c *conn) loginFailed(err error) time.Duration {
	if errors.Is(err, errCounted) {
		return 0 // counted and delayed when it was refused
	}
	if errors.Is(err, errAuthThrottled) {
		total := c.s.stats.authThrottled.Add(1)
		if suppressed, ok := c.s.logs.auth.allow(); ok {
			c.log.Warn("SASL login refused unchecked: too many failures from its source", "source", c.source,
				"throttled_total", total, "suppressed", suppressed)
		}
		return c.s.cfg.SASLFailureMaxDelay
	}
	total := c.s.stats.authFailures.Add(1)
	delay := c.s.backoff.failed(c.source, time.Now())
	if suppressed, ok := c.s.logs.auth.allow(); ok {
		c.log.Warn("SASL authentication failed", "err", err, "source", c.source, "answer_delay", delay,
			"failures_total", total, "suppressed", suppressed)
	}
	return delay
}
