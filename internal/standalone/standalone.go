package standalone

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/registry"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/broker/admin"
	"github.com/magnetar-mq/magnetar/internal/clustertls"
	"github.com/magnetar-mq/magnetar/internal/connlimit"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/protocol/kafka"
	"github.com/magnetar-mq/magnetar/protocol/native"
)

// Config configures a standalone server.
type Config struct {
	DataDir    string `yaml:"data-dir"`
	NativeAddr string `yaml:"native-addr"`
	HTTPAddr   string `yaml:"http-addr"`
	// AdvertisedAddr is the native address clients are told to use; by
	// default 127.0.0.1 and the native port.
	AdvertisedAddr string `yaml:"advertised-addr"`
	// MetaAddrs, when set, makes the server a broker alone (magnetar
	// broker): it uses the metadata service at these gRPC addresses
	// (comma-separated) and the bookie shards registered there, and keeps
	// nothing under DataDir.
	MetaAddrs string `yaml:"meta-addrs"`
	// Meta and Bookie configure the metadata service and the bookie shard
	// run in process (without MetaAddrs); Dir and Logger are set by Start.
	// `magnetar standalone` sets only their disk settings
	// (RegisterDiskFlags): free space reserves, memtables, log segments.
	Meta   metadata.Config    `yaml:"meta"`
	Bookie bookie.ShardConfig `yaml:"bookie"`
	// BookieClient sets the deadlines and keepalive of the calls to the
	// bookie shards (with MetaAddrs; `magnetar broker` registers its
	// flags, and its zero value means the defaults).
	BookieClient bookie.ClientConfig `yaml:"bookie-client"`
	Broker       broker.Config       `yaml:"broker"`
	Kafka        kafka.Config        `yaml:"kafka"`
	// Security: authentication, TLS and pprof of the native and admin
	// listeners (security.go); authorization is Broker.Authorization.
	Security SecurityConfig `yaml:",inline"`

	// ClusterTLS is the mutual TLS to the metadata service and the bookies
	// (with MetaAddrs; `magnetar broker` registers its flags).
	ClusterTLS clustertls.Config `yaml:"cluster-tls"`
}

// RegisterFlags registers the server's flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for all state")
	fs.StringVar(&c.NativeAddr, "native-addr", ":6650", "listen address of the native gRPC protocol")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "listen address of the admin REST API, /metrics, /healthz and /readyz")
	fs.StringVar(&c.AdvertisedAddr, "advertised-addr", "", "native address clients are told to use (default: 127.0.0.1 and the native port)")
	c.Broker.RegisterFlags("broker.", fs)
	c.Kafka.RegisterFlags("kafka.", fs)
	c.Security.RegisterFlags(fs, &c.Broker.Authorization)
}

// DefaultConfig returns the defaults RegisterFlags sets.
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("standalone: data-dir must not be empty")
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	kafkaSASL := c.Kafka.SASLMechanisms != ""
	kafkaOpen := !kafkaSASL && (c.Kafka.ListenAddr != "" || (c.Kafka.TLSListenAddr != "" && c.Kafka.TLSClientCAFile == ""))
	if err := c.Security.Validate(c.Broker.Authorization, kafkaSASL, kafkaOpen); err != nil {
		return err
	}
	if err := c.BookieClient.Validate(); err != nil {
		return err
	}
	if c.MetaAddrs == "" {
		meta, shard := c.inProcess(nil)
		meta.EnsureDefaults()
		if err := meta.Validate(); err != nil {
			return err
		}
		shard.EnsureDefaults()
		if err := shard.Validate(); err != nil {
			return err
		}
	}
	return c.Broker.Validate()
}

// inProcess returns the configs of the metadata service and the bookie
// shard a standalone runs, under DataDir.
func (c *Config) inProcess(log *slog.Logger) (metadata.Config, bookie.ShardConfig) {
	meta, shard := c.Meta, c.Bookie
	meta.Dir, meta.Logger = filepath.Join(c.DataDir, "meta"), log
	shard.Dir, shard.Logger = filepath.Join(c.DataDir, "bookie"), log
	return meta, shard
}

// standaloneID is the bookie ID and shard ID of the standalone's one shard.
const standaloneID = "standalone"

// Server is a running standalone server.
type Server struct {
	log      *slog.Logger
	nativeLn net.Listener
	httpLn   net.Listener
	httpSrv  *http.Server
	grpcSrv  *grpc.Server
	native   *native.Server
	broker   *broker.Broker
	ready    atomic.Bool
	serving  sync.WaitGroup // the Serve goroutines
	failed   chan error     // serving errors; capacity for every server
	closers  []func() error

	kafkaLn, kafkaTLSLn net.Listener  // nil when disabled (kafka.go)
	kafkaSrv            *kafka.Server // nil when both are disabled
}

// Start opens every role under cfg.DataDir and serves until Close. It
// returns once the server is ready.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MetaAddrs == "" && cfg.Broker.ID == "" {
		cfg.Broker.ID = standaloneBrokerID
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, failed: make(chan error, 4)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	sec, err := newSecurity(cfg.Security)
	if err != nil {
		return nil, err
	}
	// Listen first: a port in use should fail before any state is opened.
	if s.nativeLn, err = net.Listen("tcp", cfg.NativeAddr); err != nil {
		return nil, fmt.Errorf("native listener: %w", err)
	}
	s.closers = append(s.closers, ignoreClosed(s.nativeLn.Close))
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	s.closers = append(s.closers, ignoreClosed(s.httpLn.Close))
	if err := s.listenKafka(cfg); err != nil {
		return nil, err
	}
	advertised := cfg.AdvertisedAddr
	if advertised == "" {
		_, port, _ := net.SplitHostPort(s.nativeLn.Addr().String())
		advertised = net.JoinHostPort("127.0.0.1", port)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), sec.metrics())
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})

	meta, shards, err := s.openStores(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if s.broker, err = broker.New(cfg.Broker, meta, shards, log, reg); err != nil {
		return nil, err
	}
	sec.registerAdmin(mux, s.broker, cfg.Security, func(api *http.ServeMux) { admin.Register(api, s.broker, log) })
	// Register before serving: a broker that serves before it takes part
	// in ownership would serve partitions other brokers own.
	if err := s.startOwnership(ctx, cfg, advertised); err != nil {
		return nil, err
	}

	// Caps first, then TLS: a connection over a cap costs no handshake.
	s.httpLn = connlimit.Wrap(s.httpLn, cfg.Security.HTTP.MaxConnections, cfg.Security.HTTP.MaxConnectionsPerIP)
	if sec.tls != nil {
		s.httpLn = tls.NewListener(s.httpLn, sec.tls)
	}
	s.httpSrv = cfg.Security.HTTP.server(mux)
	s.serving.Go(func() { s.serve("http", func() error { return s.httpSrv.Serve(s.httpLn) }) })
	grpcOpts := native.GRPCServerOptions(cfg.Broker.MaxMessageBytes, cfg.Security.Native)
	if sec.tls != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(sec.tls)))
	}
	if sec.authn.Required() {
		grpcOpts = append(grpcOpts, native.AuthOptions(sec.authn)...)
	}
	s.grpcSrv = grpc.NewServer(grpcOpts...)
	s.native = native.NewServer(s.broker, advertised, log)
	s.native.Register(s.grpcSrv)
	nativeLn := cfg.Security.Native.Listener(s.nativeLn)
	s.serving.Go(func() { s.serve("native", func() error { return s.grpcSrv.Serve(nativeLn) }) })
	if err := s.serveKafka(cfg, reg); err != nil {
		return nil, err
	}
	s.ready.Store(true)
	return s, nil
}

// openStores opens the metadata service and the segment store: in
// process (a metadata service and one bookie shard under cfg.DataDir), or
// remote (cfg.MetaAddrs and the shards registered there).
func (s *Server) openStores(ctx context.Context, cfg Config, log *slog.Logger) (metadata.Store, bookie.Router, error) {
	if cfg.MetaAddrs != "" {
		creds, err := cfg.ClusterTLS.Load()
		if err != nil {
			return nil, nil, err
		}
		meta, err := metadata.Dial(ctx, strings.Split(cfg.MetaAddrs, ","), metadata.WithGRPCDialOptions(creds.GRPCDialOptions()...))
		if err != nil {
			return nil, nil, fmt.Errorf("metadata service: %w", err)
		}
		s.closers = append(s.closers, meta.Close)
		conns := bookie.NewConnsConfig(cfg.BookieClient, creds.GRPCDialOptions()...)
		s.closers = append(s.closers, conns.Close)
		return meta, registry.NewDirectory(catalog.New(meta), conns, 0, log), nil
	}
	metaCfg, shardCfg := cfg.inProcess(log)
	meta, err := metadata.Open(ctx, metaCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata service: %w", err)
	}
	s.closers = append(s.closers, meta.Close)
	shard, err := bookie.OpenShard(ctx, shardCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("bookie: %w", err)
	}
	s.closers = append(s.closers, shard.Close)
	// The one shard is registered like a bookie process's, so the admin
	// API lists it; its segments are recorded on shard "standalone".
	registrar, err := registry.Start(ctx, catalog.New(meta), registry.Config{BookieID: standaloneID},
		[]registry.HostedShard{{ID: standaloneID, Members: map[string]string{standaloneID: ""}, Replica: shard}}, log)
	if err != nil {
		return nil, nil, err
	}
	s.closers = append(s.closers, registrar.Close)
	return meta, bookie.OneShard(standaloneID, shard), nil
}

func (s *Server) serve(what string, fn func() error) {
	if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
		s.failed <- fmt.Errorf("%s server: %w", what, err)
	}
}

// NativeAddr is the address the native protocol listens on.
func (s *Server) NativeAddr() string { return s.nativeLn.Addr().String() }

// HTTPAddr is the address of the admin API and metrics.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// Failed delivers the error of a server that stopped serving on its own.
func (s *Server) Failed() <-chan error { return s.failed }

// Close shuts down in reverse order: stop taking requests, close the broker
// (in-flight appends finish, cursors are persisted, consumer streams end),
// give open streams a few seconds, then close the segment store and the
// metadata service.
func (s *Server) Close() error {
	s.ready.Store(false)
	var errs []error
	waitKafka := s.closeKafka()
	if s.broker != nil {
		// Deregister first: until the broker is closed, requests are
		// redirected and lookups elsewhere stop naming it, so clients move
		// on instead of finding its listeners gone.
		s.broker.Drain()
	}
	if s.grpcSrv != nil {
		done := make(chan struct{})
		go func() {
			s.grpcSrv.GracefulStop()
			close(done)
		}()
		errs = append(errs, s.broker.Close())
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.grpcSrv.Stop()
			<-done
		}
		s.native.Wait()
	} else if s.broker != nil {
		errs = append(errs, s.broker.Close())
	}
	errs = append(errs, waitKafka())
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.httpSrv.Shutdown(ctx))
		cancel()
	}
	s.serving.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// ignoreClosed drops the error of closing an already closed listener.
func ignoreClosed(fn func() error) func() error {
	return func() error {
		if err := fn(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}
