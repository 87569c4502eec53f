package main

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/magnetar-mq/magnetar/internal/standalone"
)

const standaloneUsage = `Usage: magnetar standalone [flags]

Runs every role (metadata service, one bookie shard, broker) in one process,
for development and tests. State lives under --data-dir; the process can be
killed at any moment and restarted on the same directory without losing an
acknowledged message. SIGINT or SIGTERM shuts it down cleanly.

Kafka clients connect to --kafka.listen-addr (default :9092; empty turns
the listener off): Kafka topic "orders" is topic orders of
--kafka.default-namespace (public/default), the same topic native clients
see. See docs/kafka.md for the API versions served.

Examples:
  magnetar standalone
  magnetar standalone --data-dir /var/lib/magnetar --native-addr :6650 --http-addr :8080 --kafka.listen-addr :9092
  magnetar standalone --kafka.advertised-addr kafka.example.com:9092 --kafka.default-partitions 3
  MAGNETAR_KAFKA_LISTEN_ADDR=:19092 magnetar standalone
  MAGNETAR_DATA_DIR=/tmp/mq magnetar standalone
  magnetar standalone --config magnetar.yaml

Settings come from flags, then MAGNETAR_* environment variables (the flag
name upper-cased, '.' and '-' as '_'), then the YAML file of --config (keys
are flag names; nested maps join with '.').

On a small disk (under about 1 GiB) lower the free space reserves and the
bookie's preallocated log segments, e.g. on 64 MiB:
  magnetar standalone --bookie.wal-segment-size 4194304 --bookie.min-free-bytes 8388608 \
    --bookie.memtable-size 4194304 --meta.memtable-size 4194304 --meta.min-free-bytes 8388608

Flags:
`

const brokerUsage = `Usage: magnetar broker --meta-addrs host:port,... [flags]

Runs a broker: it serves topics (native protocol on --native-addr, Kafka
protocol on --kafka.listen-addr, admin REST API and metrics on --http-addr) over a metadata cluster (magnetar
meta) and the bookie shards registered there (magnetar bookie
--meta-addrs). A broker keeps no state of its own: each new segment goes
to the least-loaded shard, and a broker that takes a partition over seals
the previous owner's open segment first, so no acknowledged message is
lost when one stops or dies.

Examples:
  magnetar broker --meta-addrs 10.0.0.1:6660,10.0.0.2:6660,10.0.0.3:6660
  magnetar broker --meta-addrs 127.0.0.1:6660 --native-addr :6650 --http-addr :8080 --broker.segment-max-bytes 268435456
  MAGNETAR_META_ADDRS=127.0.0.1:6660 magnetar broker
  # mutual TLS to the metadata service and the bookies (docs/operations.md)
  magnetar broker --meta-addrs 10.0.0.1:6660 --cluster-tls.ca-file ca.pem --cluster-tls.cert-file broker.pem --cluster-tls.key-file broker.key

Settings come from flags, then MAGNETAR_* environment variables (the flag
name upper-cased, '.' and '-' as '_'), then the YAML file of --config (keys
are flag names; nested maps join with '.').

Flags:
`

func runStandalone(args []string) error {
	return runServer("standalone", standaloneUsage, args)
}

func runBroker(args []string) error {
	return runServer("broker", brokerUsage, args)
}

// runServer runs `magnetar standalone` or `magnetar broker`: the same
// server, with its metadata service and bookie in process or remote.
func runServer(role, usage string, args []string) error {
	var cfg standalone.Config
	fs := flag.NewFlagSet("magnetar "+role, flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	cfg.RegisterFlags(fs)
	if role == "broker" {
		fs.StringVar(&cfg.MetaAddrs, "meta-addrs", "", "metadata service gRPC addresses, host:port,... (required)")
		cfg.BookieClient.RegisterFlags("bookie-client.", fs)
		cfg.ClusterTLS.RegisterFlags("cluster-tls.", fs)
	} else {
		// The disk settings of the roles a standalone runs in process.
		cfg.Meta.RegisterDiskFlags("meta.", fs)
		cfg.Bookie.RegisterDiskFlags("bookie.", fs)
	}
	log, err := sf.parse(fs, usage, args)
	if err != nil || log == nil { // nil, nil: --help
		return err
	}
	if role == "broker" && cfg.MetaAddrs == "" {
		return fmt.Errorf("--meta-addrs (or MAGNETAR_META_ADDRS) is required: the addresses of the metadata service")
	}
	if err := cfg.ClusterTLS.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	srv, err := standalone.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("magnetar "+role+" ready", "native", srv.NativeAddr(), "http", srv.HTTPAddr(), "kafka", srv.KafkaAddr(), "kafka_tls", srv.KafkaTLSAddr(),
		"data_dir", cfg.DataDir, "startup", time.Since(start).Round(time.Millisecond))
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		err = nil
	case err = <-srv.Failed():
	}
	if cerr := srv.Close(); cerr != nil {
		log.Warn("shutdown", "err", cerr)
	}
	return err
}
