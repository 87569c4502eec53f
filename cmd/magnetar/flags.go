package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/magnetar-mq/magnetar/internal/config"
)

// serverFlags are the flags every server command takes besides its own:
// the YAML file and the logging settings.
type serverFlags struct {
	configFile, logLevel, logFormat string
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.configFile, "config", "", "YAML configuration file")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
}

// parse shows usage (then the flags) as the command's help, fills fs from
// args, MAGNETAR_* variables and --config, and returns the logger the
// settings ask for. It returns a nil logger and no error when --help was
// asked.
func (f *serverFlags) parse(fs *flag.FlagSet, usage string, args []string) (*slog.Logger, error) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args, "config", os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	return newLogger(f.logLevel, f.logFormat)
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
