package main

import (
	"context"
	"flag"
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

Examples:
  magnetar standalone
  magnetar standalone --data-dir /var/lib/magnetar --native-addr :6650 --http-addr :8080
  MAGNETAR_DATA_DIR=/tmp/mq magnetar standalone
  magnetar standalone --config magnetar.yaml

Settings come from flags, then MAGNETAR_* environment variables (the flag
name upper-cased, '.' and '-' as '_'), then the YAML file of --config (keys
are flag names; nested maps join with '.').

Flags:
`

func runStandalone(args []string) error {
	var (
		cfg standalone.Config
	)
	fs := flag.NewFlagSet("magnetar standalone", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	cfg.RegisterFlags(fs)
	log, err := sf.parse(fs, standaloneUsage, args)
	if err != nil || log == nil { // nil, nil: --help
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	srv, err := standalone.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("magnetar standalone ready", "native", srv.NativeAddr(), "http", srv.HTTPAddr(),
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
