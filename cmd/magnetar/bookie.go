package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/registry"
	"github.com/magnetar-mq/magnetar/internal/clustertls"
	"github.com/magnetar-mq/magnetar/internal/raftmux"
	"github.com/magnetar-mq/magnetar/internal/raftnode"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

const bookieUsage = `Usage: magnetar bookie [flags]

Runs a bookie: a storage process hosting replicas of one or more shards.
Each shard is a Raft group of 1 or 3 replicas (on different bookies) that
stores segment entries; all of a process's shards share its gRPC port
(--grpc-addr) and its Raft port (--raft-addr). Writes and linearizable
reads go to a shard's leader; a follower answers NotLeader with the
leader's address, and the Go client follows it.

--peers is the address book of the bookies: id=raftaddr=grpcaddr for
each, this one included, separated by commas; give every bookie the same
list. The addresses must be reachable by the other bookies and clients
(no 0.0.0.0). --shards lists the shards, as id or id:member+member+...;
a shard without members is replicated on every bookie of --peers, and a
bookie hosts the shards it is a member of. Each shard keeps its data in
--data-dir/<id>. Without --peers every shard is a single replica. The
members are fixed on a shard's first start; changing them later has no
effect.

With --meta-addrs the bookie records its shards in the metadata service
and keeps a registration there (its shards' leadership and usage), from
which brokers find the shards and place new segments on the least-loaded
one; 'magctl bookies list' and 'magctl shards list' show them.

Examples:
  # one bookie, one single-replica shard
  magnetar bookie --data-dir /var/lib/magnetar/bookie

  # three bookies on one machine, two 3-replica shards, registered
  P=b1=127.0.0.1:6671=127.0.0.1:6670,b2=127.0.0.1:6681=127.0.0.1:6680,b3=127.0.0.1:6691=127.0.0.1:6690
  magnetar bookie --node-id b1 --data-dir d1 --raft-addr 127.0.0.1:6671 --grpc-addr 127.0.0.1:6670 --peers $P --shards s1,s2 --meta-addrs 127.0.0.1:6660
  magnetar bookie --node-id b2 --data-dir d2 --raft-addr 127.0.0.1:6681 --grpc-addr 127.0.0.1:6680 --peers $P --shards s1,s2 --meta-addrs 127.0.0.1:6660
  magnetar bookie --node-id b3 --data-dir d3 --raft-addr 127.0.0.1:6691 --grpc-addr 127.0.0.1:6690 --peers $P --shards s1,s2 --meta-addrs 127.0.0.1:6660

  # the same from the environment or a YAML file (keys are flag names)
  MAGNETAR_NODE_ID=b1 MAGNETAR_PEERS=$P MAGNETAR_SHARDS=s1,s2 magnetar bookie
  magnetar bookie --config bookie.yaml

  # mutual TLS on the gRPC and Raft ports and to the metadata service
  # (docs/operations.md, Cluster TLS)
  magnetar bookie --node-id b1 ... --cluster-tls.ca-file ca.pem --cluster-tls.cert-file b1.pem --cluster-tls.key-file b1.key

Settings come from flags, then MAGNETAR_* environment variables (the flag
name upper-cased, '-' as '_'), then the YAML file of --config.

Flags:
`

// bookieFlags are the process's settings besides the shard template.
type bookieFlags struct {
	dataDir, grpcAddr, grpcAdvertise, httpAddr, metaAddrs string
	shards                                                shardSpecs
	clusterTLS                                            clustertls.Config
}

func runBookie(args []string) error {
	var (
		cfg bookie.ShardConfig // the template of every hosted shard
		bf  bookieFlags
	)
	fs := flag.NewFlagSet("magnetar bookie", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	fs.StringVar(&bf.grpcAddr, "grpc-addr", ":6670", "listen address of the bookie gRPC service (every shard)")
	fs.StringVar(&bf.grpcAdvertise, "grpc-advertise-addr", "", "gRPC address brokers reach this bookie at (default: its --peers entry, else --grpc-addr with 127.0.0.1 for an empty host)")
	fs.StringVar(&bf.httpAddr, "http-addr", "", "listen address of /healthz, /readyz and /metrics (empty: none)")
	fs.StringVar(&bf.metaAddrs, "meta-addrs", "", "metadata service gRPC addresses, host:port,...; empty: do not register")
	bf.shards = shardSpecs{{ID: "s1"}}
	fs.Var(&bf.shards, "shards", "shards to host, id or id:member+member+..., separated by commas; a shard without members is on every bookie of --peers")
	// The shard template's flags, but --dir: each shard's directory is
	// under --data-dir.
	tmplFlags := flag.NewFlagSet("", flag.ContinueOnError)
	cfg.RegisterFlags("", tmplFlags)
	tmplFlags.VisitAll(func(f *flag.Flag) {
		if f.Name != "dir" {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	// A bookie process calls its directory --data-dir like the other
	// roles; each shard gets a subdirectory. The Raft port is shared by
	// every shard.
	fs.StringVar(&bf.dataDir, "data-dir", "data/bookie", "Directory of this bookie's data: one subdirectory per shard (Raft log, state, snapshots).")
	bf.clusterTLS.RegisterFlags("cluster-tls.", fs)
	f := fs.Lookup("raft-addr")
	f.DefValue = ":6671"
	_ = f.Value.Set(":6671")
	f.Usage = "TCP address Raft listens on, shared by every shard (used with --peers)."
	log, err := sf.parse(fs, bookieUsage, args)
	if err != nil || log == nil { // nil, nil: --help
		return err
	}
	cfg.Logger = log
	self := cfg.NodeID
	if self == "" {
		self = cfg.Raft.ID
		if self == "" {
			self = raftnode.DefaultID
		}
	}
	hosted, err := bf.shards.resolve(self, cfg.Peers)
	if err != nil {
		return fmt.Errorf("%w: %w", bookie.ErrInvalidConfig, err)
	}
	creds, err := bf.clusterTLS.Load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	lns, err := listenRole(bf.grpcAddr, bf.httpAddr)
	if err != nil {
		return err
	}
	defer lns.Close()
	var mux *raftmux.Mux
	if len(cfg.Peers) > 0 {
		me, ok := cfg.Peers.Lookup(self)
		if !ok {
			return fmt.Errorf("%w: --node-id %q is not in --peers", bookie.ErrInvalidConfig, self)
		}
		adv := cfg.RaftAdvertiseAddr
		if adv == "" {
			adv = me.RaftAddr
		}
		var opts []raftmux.Option
		if creds != nil {
			opts = append(opts, raftmux.WithTLS(creds.Server, creds.Client))
		}
		if mux, err = raftmux.Listen(cfg.RaftAddr, adv, log, opts...); err != nil {
			return err
		}
		defer mux.Close()
	}

	start := time.Now()
	log.Info("starting bookie; waiting for a leader of every shard", "node_id", self, "raft", cfg.RaftAddr, "shards", bf.shards.String())
	shards, err := openShards(ctx, cfg, bf.dataDir, hosted, mux)
	defer func() {
		for id, s := range shards {
			if err := s.Close(); err != nil {
				log.Warn("closing the shard", "shard", id, "err", err)
			}
		}
	}()
	if err != nil {
		return err
	}

	if bf.metaAddrs != "" {
		r, closeMeta, err := registerBookie(ctx, bf, cfg, self, hosted, shards, creds, log)
		if err != nil {
			return err
		}
		defer closeMeta()
		defer func() {
			if err := r.Close(); err != nil {
				log.Warn("closing the registration", "err", err)
			}
		}()
	}

	gs := grpc.NewServer(append(bookie.GRPCServerOptions(), creds.GRPCServerOptions()...)...)
	clients := make(map[string]bookie.Client, len(shards))
	for id, s := range shards {
		clients[id] = s
	}
	bookie.NewGRPCServer(clients, log).Register(gs)
	// On shutdown the shards' Close drains the calls in flight; a call
	// whose reply is lost is an unknown outcome the writer resolves by
	// sealing.
	return lns.serve(ctx, log, gs, bookieHTTP(shards), func(grpcAddr, httpAddr string) {
		log.Info("magnetar bookie ready", "grpc", grpcAddr, "http", httpAddr, "node_id", self,
			"shards", len(shards), "startup", time.Since(start).Round(time.Millisecond))
	})
}

// openShards opens the hosted shards' replicas at once (each waits for its
// group's majority). On error it returns what it opened, for closing.
func openShards(ctx context.Context, tmpl bookie.ShardConfig, dataDir string, hosted []hostedShard, mux *raftmux.Mux) (map[string]*bookie.Shard, error) {
	out := make(map[string]*bookie.Shard, len(hosted))
	cfgs := make([]bookie.ShardConfig, len(hosted))
	for i, h := range hosted {
		c := tmpl
		c.Dir = filepath.Join(dataDir, h.ID)
		if tmpl.Raft.Dir != "" {
			c.Raft.Dir = filepath.Join(tmpl.Raft.Dir, h.ID)
		}
		c.Peers = h.Peers
		c.Logger = tmpl.Logger.With("shard", h.ID)
		// The block cache is per shard: split the process's.
		c.CacheSize = max(tmpl.CacheSize/int64(len(hosted)), 8<<20)
		if mux == nil {
			c.RaftAddr = "" // a single replica needs no network
		} else {
			layer, err := mux.Layer(h.ID)
			if err != nil {
				return out, err
			}
			c.Raft.StreamLayer = layer
		}
		c.EnsureDefaults()
		if err := c.Validate(); err != nil {
			return out, fmt.Errorf("shard %s: %w", h.ID, err)
		}
		cfgs[i] = c
	}
	opened := make([]*bookie.Shard, len(hosted))
	g, gctx := errgroup.WithContext(ctx)
	for i, c := range cfgs {
		g.Go(func() error {
			s, err := bookie.OpenShard(gctx, c)
			if err != nil {
				return fmt.Errorf("shard %s: %w", hosted[i].ID, err)
			}
			opened[i] = s
			return nil
		})
	}
	err := g.Wait()
	for i, s := range opened {
		if s != nil {
			out[hosted[i].ID] = s
		}
	}
	return out, err
}

// registerBookie records the shards and starts the bookie's registration
// in the metadata service (over cluster TLS with creds, if not nil).
func registerBookie(ctx context.Context, bf bookieFlags, cfg bookie.ShardConfig, self string, hosted []hostedShard, shards map[string]*bookie.Shard, creds *clustertls.Credentials, log *slog.Logger) (*registry.Registrar, func(), error) {
	me, _ := cfg.Peers.Lookup(self) // zero without --peers
	grpcAdv := bf.grpcAdvertise
	if grpcAdv == "" {
		grpcAdv = me.ClientAddr
	}
	if grpcAdv == "" {
		grpcAdv = bf.grpcAddr
		if host, port, err := net.SplitHostPort(bf.grpcAddr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			grpcAdv = net.JoinHostPort("127.0.0.1", port)
		}
	}
	meta, err := metadata.Dial(ctx, strings.Split(bf.metaAddrs, ","), metadata.WithGRPCDialOptions(creds.GRPCDialOptions()...))
	if err != nil {
		return nil, nil, fmt.Errorf("metadata service: %w", err)
	}
	var hs []registry.HostedShard
	for _, h := range hosted {
		members := map[string]string{self: grpcAdv}
		if len(h.Peers) > 0 {
			members = map[string]string{}
			for _, p := range h.Peers {
				members[p.ID] = p.ClientAddr
			}
		}
		hs = append(hs, registry.HostedShard{ID: h.ID, Members: members, Replica: shards[h.ID]})
	}
	r, err := registry.Start(ctx, catalog.New(meta), registry.Config{BookieID: self, GRPCAddr: grpcAdv, RaftAddr: me.RaftAddr, Version: version}, hs, log)
	if err != nil {
		_ = meta.Close()
		if errors.Is(err, registry.ErrMembership) {
			return nil, nil, fmt.Errorf("%w (another group of bookies uses the same shard id: give this one other --shards ids)", err)
		}
		return nil, nil, err
	}
	return r, func() { _ = meta.Close() }, nil
}

// bookieHTTP serves /healthz (the process runs), /readyz (every shard has
// a leader) and /metrics.
func bookieHTTP(shards map[string]*bookie.Shard) http.Handler {
	var gauges []prometheus.Collector
	for id, s := range shards {
		labels := prometheus.Labels{"shard": id}
		gauges = append(gauges,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "magnetar_bookie_is_leader", Help: "1 if this bookie's replica leads the shard, else 0.", ConstLabels: labels,
			}, func() float64 {
				if s.Status().Leader {
					return 1
				}
				return 0
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "magnetar_bookie_applied_index", Help: "Last Raft index applied on this bookie's replica of the shard.", ConstLabels: labels,
			}, func() float64 { return float64(s.Status().AppliedIndex) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "magnetar_bookie_log_bytes", Help: "Size of the Raft log's segment files of this bookie's replica of the shard, which hold the entries of live segments.", ConstLabels: labels,
			}, func() float64 { return float64(s.Status().LogBytes) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "magnetar_bookie_log_compacted_bytes_total", Help: "Entry bytes copied from the Raft log into the state so that the log could be truncated (entries kept longer than --max-held-log-bytes of log).", ConstLabels: labels,
			}, func() float64 { return float64(s.Status().LogCompactedBytes) }))
	}
	return roleHTTP(func() string {
		for _, s := range shards {
			if s.Status().LeaderID == "" {
				return ""
			}
		}
		return "every shard"
	}, gauges...)
}
