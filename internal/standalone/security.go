package standalone

import (
	"crypto/tls"
	"errors"
	"flag"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/broker/admin"
	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/protocol/native"
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
	// authorization on, to superusers only.
	PProf bool `yaml:"pprof"`
	// Native and HTTP cap the connections of the native and admin
	// listeners.
	Native native.Limits `yaml:"native"`
	HTTP   HTTPLimits    `yaml:"http"`
}

// HTTPLimits bound the admin listener's clients.
type HTTPLimits struct {
	MaxConnections      int           `yaml:"max-connections"`
	MaxConnectionsPerIP int           `yaml:"max-connections-per-ip"`
	ReadTimeout         time.Duration `yaml:"read-timeout"`
	IdleTimeout         time.Duration `yaml:"idle-timeout"`
}

// RegisterFlags registers the limits under prefix (e.g. "http.").
func (l *HTTPLimits) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.IntVar(&l.MaxConnections, prefix+"max-connections", 1000, "most open connections to the admin listener; more are closed at once")
	fs.IntVar(&l.MaxConnectionsPerIP, prefix+"max-connections-per-ip", 100, "most open admin connections from one IP address; more are closed at once")
	fs.DurationVar(&l.ReadTimeout, prefix+"read-timeout", 30*time.Second, "time to read an admin request, headers and body")
	fs.DurationVar(&l.IdleTimeout, prefix+"idle-timeout", 2*time.Minute, "close an idle keep-alive admin connection after this long")
}

// Validate reports limits that cannot work.
func (l *HTTPLimits) Validate() error {
	if l.MaxConnections <= 0 || l.MaxConnectionsPerIP <= 0 || l.ReadTimeout <= 0 || l.IdleTimeout <= 0 {
		return errors.New("http: max-connections, max-connections-per-ip, read-timeout and idle-timeout must be positive")
	}
	return nil
}

// maxHeaderBytes bounds an admin request's headers.
const maxHeaderBytes = 64 << 10

// server returns the admin HTTP server with the limits' timeouts.
func (l *HTTPLimits) server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: l.ReadTimeout,
		IdleTimeout: l.IdleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

// RegisterFlags registers the flags (auth.*, authorization.*, tls.*,
// pprof); authz is the broker's authorization config, whose flags are the
// server's too.
func (c *SecurityConfig) RegisterFlags(fs *flag.FlagSet, authz *broker.AuthzConfig) {
	c.Auth.RegisterFlags("auth.", fs)
	authz.RegisterFlags("authorization.", fs)
	c.TLS.RegisterFlags("tls.", "the native and admin listeners", fs)
	fs.BoolVar(&c.PProf, "pprof", false, "serve /debug/pprof on the admin listener (with authorization on: superusers only)")
	c.Native.RegisterFlags("native.", fs)
	c.HTTP.RegisterFlags("http.", fs)
}

// Validate reports settings that cannot work together.
// kafkaSASL says whether Kafka clients must log in; kafkaOpen whether a
// Kafka listener takes clients without proving a role.
func (c *SecurityConfig) Validate(authz broker.AuthzConfig, kafkaSASL, kafkaOpen bool) error {
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if err := c.Native.Validate(); err != nil {
		return err
	}
	if err := c.HTTP.Validate(); err != nil {
		return err
	}
	if err := c.Auth.Validate(c.TLS.ClientCAFile != ""); err != nil {
		return err
	}
	if authz.Enabled && !c.Auth.Enabled && !kafkaSASL {
		return errors.New("authorization.enabled needs authentication (auth.enabled, or Kafka SASL): every request would be anonymous and refused")
	}
	if c.Auth.Enabled && kafkaOpen {
		return errors.New("auth.enabled: the Kafka listener takes anonymous clients; set kafka.sasl-mechanisms (or kafka.tls-client-ca-file for the TLS listener alone), or turn the listener off with --kafka.listen-addr=''")
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
// metrics are the authentication metrics of the native and admin
// listeners.
func (sec security) metrics() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "magnetar_auth_failures_total",
		Help: "Native and admin requests refused for missing or invalid credentials.",
	}, func() float64 { return float64(sec.authn.Failures()) })
}

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
		if err := b.AuthorizeCluster(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		dbg.ServeHTTP(w, r)
	})
	mux.Handle("/debug/pprof/", admin.Authenticated(sec.authn, superusers))
}
