package auth

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Defaults of TokenConfig, used where a field is zero.
const (
	// DefaultClockSkew is how far "exp" and "nbf" may be off the
	// server's clock.
	DefaultClockSkew = 30 * time.Second
	// DefaultMaxTokenBytes bounds a token's length; a longer one is
	// refused before it is decoded. Pulsar's tokens are a few hundred
	// bytes; 16 KiB leaves room for many claims.
	DefaultMaxTokenBytes = 16 << 10
)

// TokenConfig says how tokens are verified; the zero value verifies none
// (Enabled is false).
type TokenConfig struct {
	// SecretKeyFile holds the HS256 secret (HS384 and HS512 tokens are
	// accepted too): its raw bytes, or "base64:" followed by them in
	// standard base64 (see the package doc).
	SecretKeyFile string `yaml:"token-secret-key-file"`
	// PublicKeyFile holds the public key that verifies RS256 or ES256
	// tokens: PEM ("PUBLIC KEY", "RSA PUBLIC KEY" or a "CERTIFICATE"), or
	// the DER that `pulsar tokens create-key-pair` writes.
	PublicKeyFile string `yaml:"token-public-key-file"`
	// Audience, when set, must be one of the token's "aud".
	Audience string `yaml:"token-audience"`
	// Issuer, when set, must equal the token's "iss".
	Issuer string `yaml:"token-issuer"`
	// ClockSkew is the leeway given to "exp" and "nbf". Zero means
	// DefaultClockSkew.
	ClockSkew time.Duration `yaml:"token-clock-skew"`
	// MaxTokenBytes: a longer token is refused before it is decoded.
	// Zero means DefaultMaxTokenBytes.
	MaxTokenBytes int `yaml:"token-max-bytes"`
}

// RegisterFlags registers the fields as flags named prefix+yaml tag, e.g.
// prefix "auth." gives --auth.token-secret-key-file.
func (c *TokenConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.SecretKeyFile, prefix+"token-secret-key-file", "", "file of the secret key verifying HS256 tokens: raw bytes, or 'base64:' and the key in base64 (as 'magctl tokens create-secret-key' writes)")
	fs.StringVar(&c.PublicKeyFile, prefix+"token-public-key-file", "", "file of the public key (PEM, or Pulsar's DER) verifying RS256 or ES256 tokens")
	fs.StringVar(&c.Audience, prefix+"token-audience", "", "when set, tokens must name it in their 'aud' claim")
	fs.StringVar(&c.Issuer, prefix+"token-issuer", "", "when set, tokens' 'iss' claim must equal it")
	fs.DurationVar(&c.ClockSkew, prefix+"token-clock-skew", DefaultClockSkew, "leeway given to a token's 'exp' and 'nbf' for clocks that disagree")
	fs.IntVar(&c.MaxTokenBytes, prefix+"token-max-bytes", DefaultMaxTokenBytes, "longest token accepted, in bytes; a longer one is refused before it is decoded")
}

// Enabled reports whether tokens are verified: a key file is configured.
func (c *TokenConfig) Enabled() bool { return c.SecretKeyFile != "" || c.PublicKeyFile != "" }

// Validate checks the configuration without reading the key files
// (NewVerifier does).
func (c *TokenConfig) Validate() error {
	var errs []error
	if c.SecretKeyFile != "" && c.PublicKeyFile != "" {
		errs = append(errs, errors.New("auth: set one of token-secret-key-file and token-public-key-file, not both"))
	}
	if !c.Enabled() && (c.Audience != "" || c.Issuer != "") {
		errs = append(errs, errors.New("auth: token-audience and token-issuer need a token key file"))
	}
	if c.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("auth: token-clock-skew %v is negative", c.ClockSkew))
	}
	if c.MaxTokenBytes < 0 {
		errs = append(errs, fmt.Errorf("auth: token-max-bytes %d is negative", c.MaxTokenBytes))
	}
	return errors.Join(errs...)
}
