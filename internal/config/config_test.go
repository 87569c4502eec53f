package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type settings struct {
	dir      string
	size     int
	interval time.Duration
	config   string
}

func newFlagSet(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.StringVar(&s.config, "config", "", "")
	fs.StringVar(&s.dir, "data-dir", "./data", "")
	fs.IntVar(&s.size, "broker.max-message-bytes", 100, "")
	fs.DurationVar(&s.interval, "broker.flush-interval", time.Second, "")
	return fs
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "magnetar.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFlagsBeatEnvironmentBeatsFileBeatsDefaults(t *testing.T) {
	path := writeYAML(t, "data-dir: /from/file\nbroker:\n  max-message-bytes: 7\n  flush-interval: 3s\n")
	var s settings
	fs := newFlagSet(&s)
	err := Parse(fs, []string{"--config", path, "--data-dir", "/from/flag"}, "config",
		env(map[string]string{"MAGNETAR_DATA_DIR": "/from/env", "MAGNETAR_BROKER_MAX_MESSAGE_BYTES": "9"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.dir != "/from/flag" {
		t.Errorf("data-dir = %q, want the flag's value", s.dir)
	}
	if s.size != 9 {
		t.Errorf("max-message-bytes = %d, want the environment's 9", s.size)
	}
	if s.interval != 3*time.Second {
		t.Errorf("flush-interval = %v, want the file's 3s", s.interval)
	}
}

func TestDefaultsStayWhenNothingIsGiven(t *testing.T) {
	var s settings
	if err := Parse(newFlagSet(&s), nil, "config", env(nil)); err != nil {
		t.Fatal(err)
	}
	if s.dir != "./data" || s.size != 100 || s.interval != time.Second {
		t.Errorf("got %+v, want the defaults", s)
	}
}

func TestConfigFileFromEnvironment(t *testing.T) {
	path := writeYAML(t, "data-dir: /from/file\n")
	var s settings
	if err := Parse(newFlagSet(&s), nil, "config", env(map[string]string{"MAGNETAR_CONFIG": path})); err != nil {
		t.Fatal(err)
	}
	if s.dir != "/from/file" {
		t.Errorf("data-dir = %q, want the file's value", s.dir)
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
	}{
		{name: "unknown setting in the file", yaml: "no-such-setting: 1\n"},
		{name: "bad value in the file", yaml: "broker:\n  max-message-bytes: lots\n"},
		{name: "a list in the file", yaml: "data-dir: [a, b]\n"},
		{name: "not YAML", yaml: "data-dir: [\n"},
		{name: "bad value in the environment", yaml: "{}\n", env: map[string]string{"MAGNETAR_BROKER_FLUSH_INTERVAL": "soon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			err := Parse(newFlagSet(&s), []string{"--config", writeYAML(t, tt.yaml)}, "config", env(tt.env))
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("broker.max-message-bytes"); got != "MAGNETAR_BROKER_MAX_MESSAGE_BYTES" {
		t.Errorf("EnvName = %q", got)
	}
}
