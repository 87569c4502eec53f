package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// ServerConfig is how a server's native and admin listeners authenticate
// requests (the Kafka listener has its own SASL settings and takes the
// same tokens over OAUTHBEARER).
type ServerConfig struct {
	// Enabled requires every request to prove a role: a bearer token, or
	// a client certificate the TLS listener verified. Off, every request
	// is anonymous and tokens are not looked at.
	Enabled bool `yaml:"enabled"`
	// Token says how bearer tokens are verified.
	Token TokenConfig `yaml:",inline"`
}

// RegisterFlags registers the fields under prefix (e.g. "auth.").
func (c *ServerConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, prefix+"enabled", false, "require a role on the native and admin listeners: a bearer token (JWT) or a verified client certificate")
	c.Token.RegisterFlags(prefix, fs)
}

// Validate reports a configuration that cannot work; tlsClientCerts says
// whether a listener verifies client certificates (another way in).
func (c *ServerConfig) Validate(tlsClientCerts bool) error {
	if err := c.Token.Validate(); err != nil {
		return err
	}
	if c.Enabled && !c.Token.Enabled() && !tlsClientCerts {
		return errors.New("auth: enabled needs a token key (token-secret-key-file or token-public-key-file) or TLS client certificates (tls.client-ca-file)")
	}
	return nil
}

// Authenticator turns what a request presents into its principal. It is
// safe for concurrent use.
type Authenticator struct {
	required bool
	tokens   *Verifier // nil: tokens are not accepted
	failures atomic.Int64
}

// Failures counts the requests refused for their credentials.
func (a *Authenticator) Failures() int64 { return a.failures.Load() }

// NewAuthenticator loads the token key, if any.
func NewAuthenticator(c ServerConfig) (*Authenticator, error) {
	a := &Authenticator{required: c.Enabled}
	if c.Enabled && c.Token.Enabled() {
		v, err := NewVerifier(c.Token)
		if err != nil {
			return nil, err
		}
		a.tokens = v
	}
	return a, nil
}

// Required reports whether requests must prove a role.
func (a *Authenticator) Required() bool { return a != nil && a.required }

// Authenticate returns the principal of a request that sent authorization
// (the value of its Authorization header or metadata; "" if none) over a
// connection whose TLS state is cs (nil: plaintext). A token, when sent,
// must be valid, even over a connection with a client certificate; without
// one a verified client certificate names the role. Without either the
// request is anonymous, which is an error (ErrUnauthenticated) when
// authentication is required. Errors never quote what was sent.
func (a *Authenticator) Authenticate(authorization string, cs *tls.ConnectionState) (Principal, error) {
	if !a.Required() {
		return Principal{}, nil
	}
	p, err := a.authenticate(authorization, cs)
	if err != nil {
		a.failures.Add(1)
	}
	return p, err
}

func (a *Authenticator) authenticate(authorization string, cs *tls.ConnectionState) (Principal, error) {
	if authorization != "" {
		scheme, token, ok := strings.Cut(authorization, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, fmt.Errorf("%w: want an authorization of the form 'Bearer <token>'", ErrUnauthenticated)
		}
		if a.tokens == nil {
			return Principal{}, fmt.Errorf("%w: this server takes no tokens", ErrUnauthenticated)
		}
		return a.tokens.Verify(strings.TrimSpace(token))
	}
	if p, ok := TLSPrincipal(cs); ok {
		return p, nil
	}
	return Principal{}, fmt.Errorf("%w: send a bearer token or a client certificate", ErrUnauthenticated)
}

// TLSFiles are a listener's TLS settings.
type TLSFiles struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and
	// key; empty: the listener speaks plaintext.
	CertFile string `yaml:"cert-file"`
	KeyFile  string `yaml:"key-file"`
	// ClientCAFile, when set, verifies client certificates against these
	// PEM CAs: a verified certificate's common name is a role.
	ClientCAFile string `yaml:"client-ca-file"`
	// RequireClientCert refuses connections without a verified client
	// certificate (mutual TLS); otherwise one is optional and a token
	// proves the role instead.
	RequireClientCert bool `yaml:"require-client-cert"`
}

// RegisterFlags registers the fields under prefix (e.g. "tls.").
func (c *TLSFiles) RegisterFlags(prefix, what string, fs *flag.FlagSet) {
	fs.StringVar(&c.CertFile, prefix+"cert-file", "", "PEM certificate (chain) of "+what+" (empty: plaintext)")
	fs.StringVar(&c.KeyFile, prefix+"key-file", "", "PEM private key of "+what)
	fs.StringVar(&c.ClientCAFile, prefix+"client-ca-file", "", "PEM CA certificates verifying client certificates of "+what+"; a verified certificate's common name is a role")
	fs.BoolVar(&c.RequireClientCert, prefix+"require-client-cert", false, "refuse clients of "+what+" without a verified certificate (mutual TLS)")
}

// Enabled reports whether the listener speaks TLS.
func (c *TLSFiles) Enabled() bool { return c.CertFile != "" }

// Validate reports settings that cannot work.
func (c *TLSFiles) Validate() error {
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("tls: cert-file and key-file go together")
	case !c.Enabled() && (c.ClientCAFile != "" || c.RequireClientCert):
		return errors.New("tls: client-ca-file and require-client-cert need cert-file and key-file")
	case c.RequireClientCert && c.ClientCAFile == "":
		return errors.New("tls: require-client-cert needs client-ca-file")
	}
	return nil
}

// ServerTLS loads the settings into a server tls.Config (nil when TLS is
// off).
func (c *TLSFiles) ServerTLS() (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CAs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CAs: no PEM certificate in %s", c.ClientCAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}
