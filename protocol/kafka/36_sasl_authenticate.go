package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate, versions 0-2 (2 is flexible): one message of the
// mechanism chosen by a version 1 SaslHandshake. A failed login is
// answered with SASL_AUTHENTICATION_FAILED and the connection closed,
// after a delay that grows with the failures from the client's source
// (sasl_backoff.go). Sessions do not expire (no re-authentication, KIP-368).

func (c *conn) handleSASLAuthenticate(req *kmsg.SASLAuthenticateRequest) result {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.auth.session == nil || c.auth.raw || c.auth.done {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a version 1 SaslHandshake, or after the login"
		resp.ErrorMessage = &msg
		return result{resp: resp, thenClose: true}
	}
	answer, _, err := c.saslStep(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		return result{resp: resp, thenClose: true, delay: c.loginFailed(err)}
	}
	resp.SASLAuthBytes = answer
	return result{resp: resp}
}
