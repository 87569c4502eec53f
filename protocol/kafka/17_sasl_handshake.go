package kafka

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake, versions 0-1. With --kafka.sasl-mechanisms set, a client
// must log in before any request but ApiVersions and the SASL ones: it
// names a mechanism here, then sends the mechanism's messages in
// SaslAuthenticate requests (version 1) or, after a version 0 handshake,
// as bare size-prefixed tokens. The response lists the enabled mechanisms,
// on success too. Without SASL configured every mechanism is
// UNSUPPORTED_SASL_MECHANISM.

// authState is a connection's login progress.
type authState struct {
	session saslSession // after a handshake
	raw     bool        // version 0 handshake: tokens come bare
	user    string      // once authenticated
	done    bool
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
		c.auth.session = newSASLSession(req.Mechanism, c.s.users)
		c.auth.raw = req.Version == 0
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

// rawSASLToken answers one bare token after a version 0 handshake; an
// error (a failed login) closes the connection, as on Kafka.
func (c *conn) rawSASLToken(token []byte) ([]byte, error) {
	answer, done, err := c.saslStep(token)
	if err != nil {
		return nil, err
	}
	if done {
		c.auth.raw = false
	}
	if answer == nil {
		answer = []byte{} // answered with an empty token
	}
	return answer, nil
}

// saslStep feeds a client message to the login in progress.
func (c *conn) saslStep(msg []byte) ([]byte, bool, error) {
	if len(msg) > maxSASLToken {
		return nil, false, fmt.Errorf("%w: SASL message of %d bytes", errAuthFailed, len(msg))
	}
	answer, done, err := c.auth.session.step(msg)
	if err != nil {
		c.log.Info("SASL authentication failed", "err", err)
		return nil, false, err
	}
	if done {
		c.auth.done, c.auth.user = true, c.auth.session.user()
		c.log.Debug("SASL authenticated", "user", c.auth.user)
	}
	return answer, done, nil
}
