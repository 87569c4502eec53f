package main

import (
	"bytes"
	"strings"
	"testing"
)

func runMagctl(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndHelp(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"no arguments prints usage and fails", nil, 2, "Usage: magctl"},
		{"help prints usage", []string{"help"}, 0, "Commands:"},
		{"command help has examples", []string{"topics", "create", "--help"}, 0, "Examples:"},
		{"consume help has examples", []string{"consume", "-h"}, 0, "magctl consume orders -s audit -n 10"},
		{"unknown command", []string{"topics", "frobnicate"}, 2, `unknown command "topics frobnicate"`},
		{"missing argument", []string{"topics", "create"}, 2, "want 1 argument(s) (TOPIC), got 0"},
		{"unknown flag", []string{"topics", "list", "--nope"}, 2, "flag provided but not defined: -nope"},
		{"bad initial position", []string{"consume", "t", "-s", "x", "--initial-position", "middle", "--service-addr", "127.0.0.1:1"}, 1, "want earliest or latest"},
		{"consume needs a subscription", []string{"consume", "t"}, 1, "-s SUBSCRIPTION is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMagctl(tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tt.code, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.contains) {
				t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", tt.contains, stdout, stderr)
			}
		})
	}
}

func TestFlagsMayFollowOrPrecedePositionalArguments(t *testing.T) {
	c, rest := findCommand([]string{"topics", "create", "-p", "3", "orders", "--admin-url=http://x"})
	if c == nil || c.name != "topics create" {
		t.Fatalf("findCommand matched %v", c)
	}
	e := &env{}
	fs := newFlagSetFor(c, e)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 1 || pos[0] != "orders" {
		t.Fatalf("positional = %q, want [orders]", pos)
	}
	if e.adminURL != "http://x" {
		t.Fatalf("admin-url = %q", e.adminURL)
	}
	if got := fs.Lookup("p").Value.String(); got != "3" {
		t.Fatalf("-p = %s, want 3", got)
	}
}

func TestEnvironmentSetsConnectionDefaults(t *testing.T) {
	t.Setenv("MAGNETAR_ADMIN_URL", "http://from-env:1")
	c, rest := findCommand([]string{"topics", "list"})
	e := &env{}
	if _, err := parseInterspersed(newFlagSetFor(c, e), rest); err != nil {
		t.Fatal(err)
	}
	if e.adminURL != "http://from-env:1" {
		t.Fatalf("admin-url = %q, want the environment's", e.adminURL)
	}
}
