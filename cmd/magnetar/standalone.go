package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/magnetar-mq/magnetar/internal/config"
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
		cfg                          standalone.Config
		configFile, logLevel, logFmt string
	)
	fs := flag.NewFlagSet("magnetar standalone", flag.ContinueOnError)
	fs.StringVar(&configFile, "config", "", "YAML configuration file")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logFmt, "log-format", "text", "log format: text or json")
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), standaloneUsage)
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args, "config", os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(logLevel, logFmt)
	if err != nil {
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

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: want text or json, got %q", format)
	}
}
