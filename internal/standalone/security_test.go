package standalone

import (
	"strings"
	"testing"
)

// TestSecuritySettingsThatLeaveAListenerOpenAreRefused: with
// authentication on, a Kafka listener that takes anonymous clients would
// be a way around it; with authorization on and no authentication, every
// request would be refused.
func TestSecuritySettingsThatLeaveAListenerOpenAreRefused(t *testing.T) {
	for _, c := range []struct {
		what string
		set  func(*Config)
		want string // "" : valid
	}{
		{"the defaults", func(*Config) {}, ""},
		{"auth on, Kafka open", func(c *Config) {
			c.Security.Auth.Enabled, c.Security.Auth.Token.SecretKeyFile = true, "key"
		}, "Kafka listener takes anonymous clients"},
		{"auth on, Kafka off", func(c *Config) {
			c.Security.Auth.Enabled, c.Security.Auth.Token.SecretKeyFile = true, "key"
			c.Kafka.ListenAddr = ""
		}, ""},
		{"auth on, Kafka SASL", func(c *Config) {
			c.Security.Auth.Enabled, c.Security.Auth.Token.SecretKeyFile = true, "key"
			c.Kafka.SASLMechanisms, c.Kafka.SASLUsers = "PLAIN", "a:b"
		}, ""},
		{"authorization without authentication", func(c *Config) {
			c.Broker.Authorization.Enabled, c.Broker.Authorization.SuperUserRoles = true, "admin"
		}, "needs authentication"},
		{"auth on without a way in", func(c *Config) {
			c.Security.Auth.Enabled = true
			c.Kafka.ListenAddr = ""
		}, "needs a token key"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.what, err, c.want)
		}
	}
}
