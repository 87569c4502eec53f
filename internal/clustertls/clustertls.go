package clustertls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ErrInvalidConfig is wrapped by every Validate and Load error.
var ErrInvalidConfig = errors.New("clustertls: invalid config")

// Config is a process's cluster TLS settings. The zero value is cluster
// TLS off.
type Config struct {
	// CAFile is the PEM certificate of the cluster CA (or several, while
	// the CA is rotated): peers' certificates must chain to it.
	CAFile string `yaml:"ca-file"`
	// CertFile and KeyFile are this process's PEM certificate (chain) and
	// private key, signed by the cluster CA for serverAuth and clientAuth.
	CertFile string `yaml:"cert-file"`
	KeyFile  string `yaml:"key-file"`
	// ServerName, if set, is the name clients check in every server's
	// certificate instead of the host they dial.
	ServerName string `yaml:"server-name"`

	prefix string // of the flags, for errors
}

// RegisterFlags registers the fields under prefix (e.g. "cluster-tls.").
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	c.prefix = prefix
	fs.StringVar(&c.CAFile, prefix+"ca-file", "", "PEM certificate of the cluster CA: internal servers (metadata, bookie gRPC and Raft) require client certificates it signed, and internal clients verify servers with it (cluster TLS is on when ca-file, cert-file and key-file are all set; the CA must be dedicated to the cluster: every certificate it signed is a member)")
	fs.StringVar(&c.CertFile, prefix+"cert-file", "", "PEM certificate (chain) of this process, signed by the cluster CA for both serverAuth and clientAuth")
	fs.StringVar(&c.KeyFile, prefix+"key-file", "", "PEM private key of --"+prefix+"cert-file")
	fs.StringVar(&c.ServerName, prefix+"server-name", "", "name checked in every internal server's certificate instead of the host dialled (empty: the host of the address)")
}

// Enabled reports whether cluster TLS is on: the three files are set.
func (c *Config) Enabled() bool {
	return c.CAFile != "" && c.CertFile != "" && c.KeyFile != ""
}

// Validate reports a partial setting: the three files go together, and
// the server name needs them.
func (c *Config) Validate() error {
	var missing []string
	for _, f := range []struct{ name, value string }{{"ca-file", c.CAFile}, {"cert-file", c.CertFile}, {"key-file", c.KeyFile}} {
		if f.value == "" {
			missing = append(missing, "--"+c.prefix+f.name)
		}
	}
	switch {
	case len(missing) == 0, len(missing) == 3 && c.ServerName == "":
		return nil
	case len(missing) == 3:
		return fmt.Errorf("%w: --%sserver-name is set but cluster TLS is off: set --%sca-file, --%scert-file and --%skey-file too", ErrInvalidConfig, c.prefix, c.prefix, c.prefix, c.prefix)
	default:
		return fmt.Errorf("%w: cluster TLS needs --%sca-file, --%scert-file and --%skey-file together; missing %s", ErrInvalidConfig, c.prefix, c.prefix, c.prefix, strings.Join(missing, ", "))
	}
}

// Credentials are the loaded cluster TLS of a process. A nil
// *Credentials is cluster TLS off: its gRPC options are none.
type Credentials struct {
	// Server is the tls.Config of every internal listener: it requires a
	// client certificate the cluster CA signed.
	Server *tls.Config
	// Client is the tls.Config of every internal connection: it presents
	// this process's certificate and verifies the server's against the
	// cluster CA.
	Client *tls.Config
}

// Load validates c and reads its files; it returns nil when cluster TLS is
// off. The certificate must be valid now and one the CA signed for
// serverAuth and clientAuth (and name ServerName, if set), else the peers
// would refuse it on every connection: Load says so at start instead.
func (c *Config) Load() (*Credentials, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, nil
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: CA: %w", ErrInvalidConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: CA: no PEM certificate in %s", ErrInvalidConfig, c.CAFile)
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", ErrInvalidConfig, err)
	}
	if err := c.check(cert, pool); err != nil {
		return nil, err
	}
	return &Credentials{
		Server: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
		},
		Client: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ServerName:   c.ServerName,
		},
	}, nil
}

// check verifies the process's own certificate as its peers will.
func (c *Config) check(cert tls.Certificate, pool *x509.CertPool) error {
	leaf := cert.Leaf // set by LoadX509KeyPair, unless GODEBUG x509keypairleaf=0
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("%w: certificate %s: %w", ErrInvalidConfig, c.CertFile, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("%w: certificate chain of %s: %w", ErrInvalidConfig, c.CertFile, err)
		}
		inter.AddCert(ic)
	}
	now := time.Now()
	for _, use := range []struct {
		name string
		eku  x509.ExtKeyUsage
	}{{"serverAuth", x509.ExtKeyUsageServerAuth}, {"clientAuth", x509.ExtKeyUsageClientAuth}} {
		opts := x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{use.eku}}
		if _, err := leaf.Verify(opts); err != nil {
			return fmt.Errorf("%w: %s is not a certificate of the cluster CA in %s valid for %s: %w", ErrInvalidConfig, c.CertFile, c.CAFile, use.name, err)
		}
	}
	if c.ServerName != "" {
		if err := leaf.VerifyHostname(c.ServerName); err != nil {
			return fmt.Errorf("%w: --%sserver-name: %w", ErrInvalidConfig, c.prefix, err)
		}
	}
	return nil
}

// GRPCServerOptions are the options of an internal gRPC server: TLS with
// client certificates required. None when cr is nil.
func (cr *Credentials) GRPCServerOptions() []grpc.ServerOption {
	if cr == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cr.Server))}
}

// GRPCDialOptions are the options of a connection to an internal gRPC
// server: TLS with this process's certificate. None when cr is nil.
func (cr *Credentials) GRPCDialOptions() []grpc.DialOption {
	if cr == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cr.Client))}
}
