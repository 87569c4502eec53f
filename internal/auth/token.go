package auth

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of authentication. A refused token's error wraps ErrInvalidToken
// with a short reason; it never quotes the token.
var (
	// ErrInvalidToken: the token is malformed, not signed by the
	// configured key, expired, or its claims do not match.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrUnauthenticated: the request carries no identity and the
	// listener requires one.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
)

// Principal.Method of the roles this package establishes.
const (
	MethodToken = "token"
	MethodTLS   = "tls"
)

// Verifier verifies tokens. Safe for concurrent use.
type Verifier struct {
	key      any      // nil: no key configured, every token is refused
	algs     []string // the algorithms key verifies
	parser   *jwt.Parser
	keyFunc  jwt.Keyfunc
	maxBytes int
}

// NewVerifier loads the key c names. A configuration that is not Enabled
// gives a Verifier that refuses every token.
func NewVerifier(c TokenConfig) (*Verifier, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{maxBytes: cmp.Or(c.MaxTokenBytes, DefaultMaxTokenBytes)}
	if !c.Enabled() {
		return v, nil
	}
	key, algs, err := loadVerifyingKey(c)
	if err != nil {
		return nil, err
	}
	// Only the algorithms of the key's type: never "none", and never HMAC
	// with a public key as the secret (the algorithm confusion attack).
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithLeeway(cmp.Or(c.ClockSkew, DefaultClockSkew)),
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	v.key, v.algs, v.parser = key, algs, jwt.NewParser(opts...)
	v.keyFunc = func(*jwt.Token) (any, error) { return key, nil }
	return v, nil
}

// Verify checks token's signature and its "exp", "nbf", "aud" and "iss"
// claims, and returns the role it names in "sub" (Method MethodToken).
// Errors wrap ErrInvalidToken.
func (v *Verifier) Verify(token string) (Principal, error) {
	switch {
	case v.key == nil:
		return Principal{}, fmt.Errorf("%w: no token key is configured", ErrInvalidToken)
	case token == "":
		return Principal{}, fmt.Errorf("%w: empty", ErrInvalidToken)
	case len(token) > v.maxBytes:
		return Principal{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, v.maxBytes)
	}
	var claims jwt.RegisteredClaims
	tok, err := v.parser.ParseWithClaims(token, &claims, v.keyFunc)
	if err != nil {
		if tok != nil && tok.Method != nil && !slices.Contains(v.algs, tok.Method.Alg()) {
			// Alg is one of the library's fixed names, not the token's text.
			return Principal{}, fmt.Errorf("%w: algorithm %s is not accepted with the configured key", ErrInvalidToken, tok.Method.Alg())
		}
		return Principal{}, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	if claims.Subject == "" {
		return Principal{}, fmt.Errorf("%w: no subject (sub) claim", ErrInvalidToken)
	}
	return Principal{Role: claims.Subject, Method: MethodToken}, nil
}

// reason names why the jwt library refused a token, in words of our own:
// its messages may quote pieces of the token.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature does not verify"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience (aud) does not include the expected one"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer (iss) is not the expected one"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim (aud or iss) is missing"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unknown or unusable algorithm"
	}
	return "claims do not validate"
}

// CreateToken returns a token for the role subject signed with key: a
// []byte secret (HS256), an *rsa.PrivateKey (RS256) or an
// *ecdsa.PrivateKey (ES256, ES384 or ES512 by its curve). expiresIn > 0
// sets "exp" that far ahead; 0 makes a token that never expires, as
// Pulsar's default. extra claims are added ("aud", "iss", ...); they may
// not set "sub", nor "exp" when expiresIn does.
func CreateToken(key any, subject string, expiresIn time.Duration, extra map[string]any) (string, error) {
	if subject == "" {
		return "", errors.New("auth: a token needs a subject (its role)")
	}
	if expiresIn < 0 {
		return "", fmt.Errorf("auth: token expiry %v is negative", expiresIn)
	}
	method, err := signingMethod(key)
	if err != nil {
		return "", err
	}
	claims := make(jwt.MapClaims, len(extra)+2)
	for k, v := range extra {
		claims[k] = v
	}
	if _, ok := claims["sub"]; ok {
		return "", errors.New("auth: extra claims may not set sub: it is the subject")
	}
	claims["sub"] = subject
	if expiresIn > 0 {
		if _, ok := claims["exp"]; ok {
			return "", errors.New("auth: extra claims may not set exp when expiresIn does")
		}
		claims["exp"] = jwt.NewNumericDate(time.Now().Add(expiresIn))
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: signing a token: %w", err)
	}
	return s, nil
}

// signingMethod is the algorithm CreateToken signs with key.
func signingMethod(key any) (jwt.SigningMethod, error) {
	switch k := key.(type) {
	case []byte:
		if len(k) < MinSecretKeyBytes {
			return nil, fmt.Errorf("auth: secret key of %d bytes: want at least %d", len(k), MinSecretKeyBytes)
		}
		return jwt.SigningMethodHS256, nil
	case *rsa.PrivateKey:
		if _, err := checkSigningKey(k); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PrivateKey:
		alg, err := ecdsaAlg(k.Curve)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		return jwt.GetSigningMethod(alg), nil
	}
	return nil, fmt.Errorf("auth: cannot sign with a %T: want a []byte secret, *rsa.PrivateKey or *ecdsa.PrivateKey", key)
}

// Inspect decodes a token without verifying it and returns its header and
// claims, for display (magctl tokens show). Never authenticate with it.
func Inspect(token string) (header, claims map[string]any, err error) {
	mc := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(token, mc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	return tok.Header, mc, nil
}
