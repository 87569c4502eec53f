package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/magnetar-mq/magnetar/client"
)

// connection is how commands reach brokers: the token and TLS settings
// the connection flags name, read once before the command runs.
type connection struct {
	token string      // "": none
	tls   *tls.Config // nil: plaintext
}

// connect reads the token file and the TLS files the flags name, so that
// a wrong path fails before the command does anything.
func (g *globals) connect() error {
	var err error
	if g.conn.token, err = g.readToken(); err != nil {
		return err
	}
	g.conn.tls, err = g.tlsConfig()
	return err
}

func (g *globals) readToken() (string, error) {
	switch {
	case g.token != "" && g.tokenFile != "":
		return "", errors.New("set --token or --token-file, not both")
	case g.tokenFile == "":
		return strings.TrimSpace(g.token), nil
	}
	data, err := os.ReadFile(g.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", g.tokenFile)
	}
	return tok, nil
}

// tlsConfig is the TLS the flags ask for, nil when none does.
func (g *globals) tlsConfig() (*tls.Config, error) {
	if !g.useTLS && !g.tlsInsecure && g.tlsCAFile == "" && g.tlsCertFile == "" && g.tlsKeyFile == "" && g.tlsServerName == "" {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         g.tlsServerName,
		InsecureSkipVerify: g.tlsInsecure,
	}
	if g.tlsCAFile != "" {
		data, err := os.ReadFile(g.tlsCAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("--tls-ca-file %s holds no PEM certificate", g.tlsCAFile)
		}
	}
	if (g.tlsCertFile == "") != (g.tlsKeyFile == "") {
		return nil, errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if g.tlsCertFile != "" {
		cert, err := tls.LoadX509KeyPair(g.tlsCertFile, g.tlsKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert-file, --tls-key-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// admin returns an admin client with the connection's credentials.
func (g *globals) admin() *client.Admin {
	return client.NewAdminWithOptions(g.adminURL, client.AdminOptions{Token: g.conn.token, TLS: g.conn.tls})
}

// clientOptions are the native client's options with the connection's
// credentials.
func (g *globals) clientOptions() client.Options {
	return client.Options{Address: g.serviceAddr, Token: g.conn.token, TLS: g.conn.tls}
}
