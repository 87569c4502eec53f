package kafka

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

// OAUTHBEARER (RFC 7628, as Kafka uses it: KIP-255): the client's one
// message carries a bearer token, the same JWTs the native and admin
// listeners take, verified with Config.OAuthBearer's key; the token's
// "sub" is the role. A refused token is answered, as the RFC says, with
// the error {"status":"invalid_token"}, to which the client answers a
// single 0x01; the login then fails (SASL_AUTHENTICATION_FAILED) and the
// connection closes. Extensions are accepted and ignored; an authorization
// identity, if sent, must be the token's role.

const mechOAuthBearer = "OAUTHBEARER"

// oauthBearerError is the server's challenge after a refused token.
const oauthBearerError = `{"status":"invalid_token"}`

// newSASLSession starts a login with one of the enabled mechanisms.
func (s *Server) newSASLSession(mech string) saslSession {
	if mech == mechOAuthBearer {
		return &oauthBearerSession{tokens: s.tokens}
	}
	return newSASLSession(mech, s.users)
}

// oauthBearerVerifier loads the key of OAUTHBEARER tokens when the
// mechanism is enabled; nil otherwise.
func oauthBearerVerifier(cfg Config, mechs []string) (*auth.Verifier, error) {
	if !slices.Contains(mechs, mechOAuthBearer) {
		return nil, nil
	}
	v, err := auth.NewVerifier(cfg.OAuthBearer)
	if err != nil {
		return nil, fmt.Errorf("kafka: sasl-oauthbearer: %w", err)
	}
	return v, nil
}

// usesPasswords reports whether mechs include one that logs in with a
// configured user's password.
func usesPasswords(mechs []string) bool {
	for _, m := range mechs {
		if m != mechOAuthBearer {
			return true
		}
	}
	return false
}

type oauthBearerSession struct {
	tokens *auth.Verifier
	role   string
	// refused is why the token was refused, once it was: the client's
	// next message only acknowledges the error.
	refused error
	// counted: the refusal was counted as a failed login when it was
	// answered (takeRefusal), since many clients hang up then rather than
	// acknowledge it.
	counted bool
	done    bool
}

// takeRefusal returns, once, why the token was just refused.
func (s *oauthBearerSession) takeRefusal() error {
	if s.refused == nil || s.counted {
		return nil
	}
	s.counted = true
	return s.refused
}

func (s *oauthBearerSession) user() string { return s.role }

func (s *oauthBearerSession) step(msg []byte) ([]byte, bool, error) {
	switch {
	case s.refused != nil:
		return nil, false, fmt.Errorf("%w: OAUTHBEARER: %w: %v", errAuthFailed, errCounted, s.refused)
	case s.done:
		return nil, false, fmt.Errorf("%w: unexpected message after the exchange", errAuthFailed)
	case s.tokens == nil:
		return nil, false, fmt.Errorf("%w: OAUTHBEARER: no token key is configured", errAuthFailed)
	}
	token, authzid, err := parseOAuthBearer(msg)
	if err != nil {
		return nil, false, err
	}
	p, err := s.tokens.Verify(token)
	if err == nil && authzid != "" && authzid != p.Role {
		err = fmt.Errorf("%w: the authorization identity is not the token's subject", auth.ErrInvalidToken)
	}
	if err != nil {
		s.refused = err
		return []byte(oauthBearerError), false, nil
	}
	s.role, s.done = p.Role, true
	return nil, true, nil
}

// parseOAuthBearer parses a client's initial response (RFC 7628 3.1):
//
//	gs2-header 0x01 *(key "=" value 0x01) 0x01
//
// where gs2-header is "n,," or "n,a=<authzid>," (no channel binding; "y"
// is accepted too) and the key "auth" holds "Bearer <token>". It returns
// the token and the authorization identity ("" if none). Errors never
// quote the message.
func parseOAuthBearer(msg []byte) (token, authzid string, err error) {
	malformed := func(what string) (string, string, error) {
		return "", "", fmt.Errorf("%w: OAUTHBEARER: %s", errAuthFailed, what)
	}
	flag, rest, ok := bytes.Cut(msg, []byte(","))
	if !ok || (string(flag) != "n" && string(flag) != "y") {
		return malformed("want a gs2 header without channel binding")
	}
	authz, rest, ok := bytes.Cut(rest, []byte(","))
	if !ok || (len(authz) > 0 && !bytes.HasPrefix(authz, []byte("a="))) {
		return malformed("malformed gs2 header")
	}
	if len(authz) > 0 {
		if authzid, err = scramName(string(authz[2:])); err != nil || authzid == "" {
			return malformed("malformed authorization identity")
		}
	}
	if len(rest) < 3 || rest[0] != 1 || !bytes.HasSuffix(rest, []byte{1, 1}) {
		return malformed("want key=value pairs between 0x01 separators")
	}
	for kv := range bytes.SplitSeq(rest[1:len(rest)-2], []byte{1}) {
		key, value, ok := bytes.Cut(kv, []byte("="))
		if !ok || !validKey(key) || !validValue(value) {
			return malformed("malformed key=value pair")
		}
		if string(key) != "auth" {
			continue // an extension: none is used
		}
		if token != "" {
			return malformed("auth given twice")
		}
		scheme, t, ok := strings.Cut(string(value), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || t == "" {
			return malformed("want auth=Bearer <token>")
		}
		token = t
	}
	if token == "" {
		return malformed("no auth=Bearer <token>")
	}
	return token, authzid, nil
}

// validKey: 1*ALPHA.
func validKey(b []byte) bool {
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return len(b) > 0
}

// validValue: *(VCHAR / SP / HTAB / CR / LF).
func validValue(b []byte) bool {
	for _, c := range b {
		if (c < 0x21 || c > 0x7e) && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
