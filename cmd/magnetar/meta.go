package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/internal/clustertls"
	"github.com/magnetar-mq/magnetar/internal/raftmux"
	"github.com/magnetar-mq/magnetar/metadata"
)

const metaUsage = `Usage: magnetar meta [flags]

Runs one node of the metadata service: a Raft group of 1, 3 or 5 nodes
that stores Magnetar's metadata and serves it over gRPC (--grpc-addr).
Clients may connect to any node: followers name the leader, and the Go
client (metadata.Dial) follows it.

--peers lists every voter, this node included, as id=raftaddr=grpcaddr,
separated by commas; start every node with the same list. The addresses
must be reachable by the other nodes and clients (no 0.0.0.0). Without
--peers the node is a cluster of one. The voters are fixed on the first
start (stored in --data-dir); changing --peers later has no effect.

Examples:
  # a single node
  magnetar meta --data-dir /var/lib/magnetar/meta

  # a 3-node cluster on one machine
  P=m1=127.0.0.1:6661=127.0.0.1:6660,m2=127.0.0.1:6671=127.0.0.1:6670,m3=127.0.0.1:6681=127.0.0.1:6680
  magnetar meta --node-id m1 --data-dir d1 --raft-addr 127.0.0.1:6661 --grpc-addr 127.0.0.1:6660 --peers $P
  magnetar meta --node-id m2 --data-dir d2 --raft-addr 127.0.0.1:6671 --grpc-addr 127.0.0.1:6670 --peers $P
  magnetar meta --node-id m3 --data-dir d3 --raft-addr 127.0.0.1:6681 --grpc-addr 127.0.0.1:6680 --peers $P

  # the same from the environment or a YAML file (keys are flag names)
  MAGNETAR_NODE_ID=m1 MAGNETAR_PEERS=$P magnetar meta
  magnetar meta --config meta.yaml

  # mutual TLS on the gRPC and Raft ports (docs/operations.md, Cluster TLS)
  magnetar meta --node-id m1 ... --cluster-tls.ca-file ca.pem --cluster-tls.cert-file m1.pem --cluster-tls.key-file m1.key

Settings come from flags, then MAGNETAR_* environment variables (the flag
name upper-cased, '-' as '_'), then the YAML file of --config.

Flags:
`

func runMeta(args []string) error {
	var (
		cfg                metadata.Config
		ctls               clustertls.Config
		grpcAddr, httpAddr string
	)
	fs := flag.NewFlagSet("magnetar meta", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	fs.StringVar(&grpcAddr, "grpc-addr", ":6660", "listen address of the gRPC API")
	fs.StringVar(&httpAddr, "http-addr", "", "listen address of /healthz, /readyz and /metrics (empty: none)")
	cfg.RegisterFlags("", fs)
	ctls.RegisterFlags("cluster-tls.", fs)
	// A meta process talks to its peers: default to the standard Raft port
	// and a data directory under ./data.
	for name, def := range map[string]string{"raft-addr": ":6661", "data-dir": "data/meta"} {
		f := fs.Lookup(name)
		f.DefValue = def
		_ = f.Value.Set(def)
	}
	log, err := sf.parse(fs, metaUsage, args)
	if err != nil || log == nil { // nil, nil: --help
		return err
	}
	cfg.Logger = log
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	creds, err := ctls.Load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	lns, err := listenRole(grpcAddr, httpAddr)
	if err != nil {
		return err
	}
	defer lns.Close()
	if creds != nil && cfg.RaftAddr != "" {
		mux, err := listenRaftTLS(cfg, creds, log)
		if err != nil {
			return err
		}
		defer mux.Close() // after the service's Close, which closes its layer
		if cfg.RaftStreamLayer, err = mux.Layer("meta"); err != nil {
			return err
		}
	}

	start := time.Now()
	log.Info("starting metadata node; waiting for a leader", "node_id", cfg.NodeID, "raft", cfg.RaftAddr, "peers", cfg.Peers.String())
	svc, err := metadata.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := svc.Close(); err != nil {
			log.Warn("closing the metadata service", "err", err)
		}
	}()

	gs := grpc.NewServer(append(metadata.GRPCServerOptions(), creds.GRPCServerOptions()...)...)
	metadata.NewGRPCServer(svc).Register(gs)
	return lns.serve(ctx, log, gs, metaHTTP(svc), func(grpcAddr, httpAddr string) {
		st := svc.Status()
		log.Info("magnetar meta ready", "grpc", grpcAddr, "http", httpAddr, "node_id", st.NodeID,
			"leader", st.LeaderID, "revision", st.Revision, "startup", time.Since(start).Round(time.Millisecond))
	})
}

// listenRaftTLS listens for Raft on cfg.RaftAddr with cluster TLS. A
// TLS Raft port takes connections through a raftmux.Mux (one group,
// "meta"), like a bookie's, whose Layer Raft uses instead of its plain
// TCP transport; the Mux advertises this node's --peers entry, else
// --raft-addr with 127.0.0.1 for an empty or unspecified host.
func listenRaftTLS(cfg metadata.Config, creds *clustertls.Credentials, log *slog.Logger) (*raftmux.Mux, error) {
	adv := cfg.RaftAddr
	if me, ok := cfg.Peers.Lookup(cfg.NodeID); ok {
		adv = me.RaftAddr
	} else if host, port, err := net.SplitHostPort(adv); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		adv = net.JoinHostPort("127.0.0.1", port)
	}
	mux, err := raftmux.Listen(cfg.RaftAddr, adv, log, raftmux.WithTLS(creds.Server, creds.Client))
	if err != nil {
		return nil, fmt.Errorf("raft listener: %w", err)
	}
	return mux, nil
}

// metaHTTP serves /healthz (the process runs), /readyz (a leader is known)
// and /metrics.
func metaHTTP(svc *metadata.Service) http.Handler {
	return roleHTTP(func() string { return svc.Status().LeaderID },
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "magnetar_meta_is_leader", Help: "1 if this metadata node is the Raft leader, else 0.",
		}, func() float64 {
			if svc.Status().Leader {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "magnetar_meta_revision", Help: "Last metadata revision applied on this node.",
		}, func() float64 { return float64(svc.Status().Revision) }))
}
