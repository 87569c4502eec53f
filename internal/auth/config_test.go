package auth

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestTokenConfigFlagsAndValidation(t *testing.T) {
	t.Parallel()
	var c TokenConfig
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.RegisterFlags("auth.", fs)
	if c.Enabled() {
		t.Fatal("the defaults enable token verification")
	}
	if c.ClockSkew != DefaultClockSkew || c.MaxTokenBytes != DefaultMaxTokenBytes {
		t.Fatalf("defaults %v, %d", c.ClockSkew, c.MaxTokenBytes)
	}
	err := fs.Parse([]string{"--auth.token-public-key-file=/k.pem", "--auth.token-audience=magnetar",
		"--auth.token-issuer=iss", "--auth.token-clock-skew=1m", "--auth.token-max-bytes=4096"})
	if err != nil {
		t.Fatal(err)
	}
	want := TokenConfig{PublicKeyFile: "/k.pem", Audience: "magnetar", Issuer: "iss", ClockSkew: time.Minute, MaxTokenBytes: 4096}
	if c != want {
		t.Fatalf("parsed %+v, want %+v", c, want)
	}
	if !c.Enabled() || c.Validate() != nil {
		t.Fatalf("Enabled %v, Validate %v", c.Enabled(), c.Validate())
	}

	for _, tt := range []struct {
		name string
		cfg  TokenConfig
		want string
	}{
		{"both key files", TokenConfig{SecretKeyFile: "a", PublicKeyFile: "b"}, "not both"},
		{"an audience without a key", TokenConfig{Audience: "a"}, "need a token key file"},
		{"a negative skew", TokenConfig{SecretKeyFile: "a", ClockSkew: -1}, "token-clock-skew"},
		{"a negative length", TokenConfig{SecretKeyFile: "a", MaxTokenBytes: -1}, "token-max-bytes"},
	} {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := (&TokenConfig{}).Validate(); err != nil {
		t.Fatalf("the zero config: %v", err)
	}
}
