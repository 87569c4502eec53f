package main

import (
	"context"
	"flag"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/bookie"
)

const bookieUsage = `Usage: magnetar bookie [flags]

Runs one replica of a bookie shard: a Raft group of 1 or 3 replicas that
stores segment entries and serves them over gRPC (--grpc-addr). Writes
and linearizable reads go to the shard's leader; a follower answers
NotLeader with the leader's address, and the Go client
(bookie.DialShard) follows it.

--peers lists every replica, this one included, as id=raftaddr=grpcaddr,
separated by commas; start every replica with the same list. The
addresses must be reachable by the other replicas and clients (no
0.0.0.0). Without --peers the replica is a shard of one. The replicas are
fixed on the first start (stored in --data-dir); changing --peers later
has no effect.

Examples:
  # a single-replica shard
  magnetar bookie --data-dir /var/lib/magnetar/bookie

  # a 3-replica shard on one machine
  P=b1=127.0.0.1:6671=127.0.0.1:6670,b2=127.0.0.1:6681=127.0.0.1:6680,b3=127.0.0.1:6691=127.0.0.1:6690
  magnetar bookie --node-id b1 --data-dir d1 --raft-addr 127.0.0.1:6671 --grpc-addr 127.0.0.1:6670 --peers $P
  magnetar bookie --node-id b2 --data-dir d2 --raft-addr 127.0.0.1:6681 --grpc-addr 127.0.0.1:6680 --peers $P
  magnetar bookie --node-id b3 --data-dir d3 --raft-addr 127.0.0.1:6691 --grpc-addr 127.0.0.1:6690 --peers $P

  # the same from the environment or a YAML file (keys are flag names)
  MAGNETAR_NODE_ID=b1 MAGNETAR_PEERS=$P magnetar bookie
  magnetar bookie --config bookie.yaml

Settings come from flags, then MAGNETAR_* environment variables (the flag
name upper-cased, '-' as '_'), then the YAML file of --config.

Flags:
`

func runBookie(args []string) error {
	var (
		cfg                bookie.ShardConfig
		grpcAddr, httpAddr string
	)
	fs := flag.NewFlagSet("magnetar bookie", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	fs.StringVar(&grpcAddr, "grpc-addr", ":6670", "listen address of the bookie gRPC service")
	fs.StringVar(&httpAddr, "http-addr", "", "listen address of /healthz, /readyz and /metrics (empty: none)")
	cfg.RegisterFlags("", fs)
	// The shard's directory flag is "dir"; a bookie process calls it
	// --data-dir like the other roles, defaults to the standard Raft port
	// and a data directory under ./data.
	fs.StringVar(&cfg.Dir, "data-dir", "data/bookie", "Directory of this replica's data (Pebble DB with the Raft log, Raft snapshots).")
	f := fs.Lookup("raft-addr")
	f.DefValue = ":6671"
	_ = f.Value.Set(":6671")
	log, err := sf.parse(fs, bookieUsage, args)
	if err != nil || log == nil { // nil, nil: --help
		return err
	}
	cfg.Logger = log
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	lns, err := listenRole(grpcAddr, httpAddr)
	if err != nil {
		return err
	}
	defer lns.Close()

	start := time.Now()
	log.Info("starting bookie replica; waiting for a leader", "node_id", cfg.Raft.ID, "raft", cfg.RaftAddr, "peers", cfg.Peers.String())
	shard, err := bookie.OpenShard(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := shard.Close(); err != nil {
			log.Warn("closing the shard", "err", err)
		}
	}()

	gs := grpc.NewServer(bookie.GRPCServerOptions()...)
	bookie.NewGRPCServer(map[string]bookie.Client{"": shard}, log).Register(gs)
	// On shutdown the shard's Close drains the calls in flight; a call
	// whose reply is lost is an unknown outcome the writer resolves by
	// sealing.
	return lns.serve(ctx, log, gs, bookieHTTP(shard), func(grpcAddr, httpAddr string) {
		st := shard.Status()
		log.Info("magnetar bookie ready", "grpc", grpcAddr, "http", httpAddr, "node_id", st.NodeID,
			"leader", st.LeaderID, "applied_index", st.AppliedIndex, "startup", time.Since(start).Round(time.Millisecond))
	})
}

// bookieHTTP serves /healthz (the process runs), /readyz (a leader is
// known) and /metrics.
func bookieHTTP(shard *bookie.Shard) http.Handler {
	return roleHTTP(func() string { return shard.Status().LeaderID },
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "magnetar_bookie_is_leader", Help: "1 if this bookie replica is its shard's Raft leader, else 0.",
		}, func() float64 {
			if shard.Status().Leader {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "magnetar_bookie_applied_index", Help: "Last Raft index applied on this bookie replica.",
		}, func() float64 { return float64(shard.Status().AppliedIndex) }))
}
