package standalone

import (
	"crypto/tls"
	"errors"
	"flag"
	"net/http"
	"net/http/pprof"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/broker/admin"
	"github.com/magnetar-mq/magnetar/internal/auth"
)

// Security settings of a server's native and admin listeners
// (docs/security.md): authentication, authorization, TLS, and pprof.

// SecurityConfig holds them.
type SecurityConfig struct {
	// Auth: how requests prove a role (tokens, client certificates).
	Auth auth.ServerConfig `yaml:"auth"`
	// TLS of the native and admin listeners.
	TLS auth.TLSFiles `yaml:"tls"`
	// PProf serves /debug/pprof on the admin listener; with
	// authentication on, to superusers only.
	PProf bool `yaml:"pprof"`
}

// RegisterFlags registers the flags (auth.*, authorization.*, tls.*,
// pprof); authz is the broker's authorization config, whose flags are the
// server's too.
func (c *SecurityConfig) RegisterFlags(fs *flag.FlagSet, authz *broker.AuthzConfig) {
	c.Auth.RegisterFlags("auth.", fs)
	authz.RegisterFlags("authorization.", fs)
	c.TLS.RegisterFlags("tls.", "the native and admin listeners", fs)
	fs.BoolVar(&c.PProf, "pprof", false, "serve /debug/pprof on the admin listener (with authentication on: superusers only)")
}

// Validate reports settings that cannot work together.
func (c *SecurityConfig) Validate(authz broker.AuthzConfig, kafkaSASL bool) error {
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if err := c.Auth.Validate(c.TLS.ClientCAFile != ""); err != nil {
		return err
	}
	if authz.Enabled && !c.Auth.Enabled && !kafkaSASL {
		return errors.New("authorization.enabled needs authentication (auth.enabled, or Kafka SASL): every request would be anonymous and refused")
	}
	return nil
}

// security is what Start builds from SecurityConfig.
type security struct {
	authn *auth.Authenticator
	tls   *tls.Config // nil: plaintext
}

func newSecurity(c SecurityConfig) (security, error) {
	a, err := auth.NewAuthenticator(c.Auth)
	if err != nil {
		return security{}, err
	}
	tc, err := c.TLS.ServerTLS()
	if err != nil {
		return security{}, err
	}
	return security{authn: a, tls: tc}, nil
}

// registerAdmin adds the admin API, and pprof if asked for, to mux, behind
// authentication (/metrics, /healthz and /readyz stay open: probes and
// scrapers carry no token).
func (sec security) registerAdmin(mux *http.ServeMux, b *broker.Broker, c SecurityConfig, register func(*http.ServeMux)) {
	api := http.NewServeMux()
	register(api)
	mux.Handle("/admin/", admin.Authenticated(sec.authn, api))
	if !c.PProf {
		return
	}
	dbg := http.NewServeMux()
	dbg.HandleFunc("GET /debug/pprof/", pprof.Index)
	dbg.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	dbg.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	superusers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := b.AuthorizeCluster(r.Context()); sec.authn.Required() && err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		dbg.ServeHTTP(w, r)
	})
	mux.Handle("/debug/pprof/", admin.Authenticated(sec.authn, superusers))
}
