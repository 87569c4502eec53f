package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseTimeTakesRFC3339OrADurationAgo(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"30m", now.Add(-30 * time.Minute)},
		{"2d", now.Add(-48 * time.Hour)},
	} {
		got, err := parseTime(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-1"} {
		if _, err := parseTime(bad, now); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}

// The subscription commands check their flags before calling the broker.
func TestSubscriptionCommandsCheckTheirFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		contains string
	}{
		{[]string{"subscriptions", "reset", "t", "s"}, "either --to-offset or --to-time"},
		{[]string{"subscriptions", "reset", "t", "s", "--to-offset", "3", "--to-time", "1h"}, "either --to-offset or --to-time"},
		{[]string{"subscriptions", "skip", "t", "s"}, "--count must be positive"},
		{[]string{"subscriptions", "expire", "t", "s", "--older-than", "soon"}, "want a duration"},
		{[]string{"subscriptions", "create", "t", "s", "--from", "middle"}, "want latest, earliest, offset or time"},
		{[]string{"subscriptions", "create", "t", "s", "--from", "time", "--at", "whenever"}, "--at"},
		{[]string{"subscriptions", "reset", "--help"}, "magctl subscriptions reset orders audit --to-offset 0"},
		{[]string{"topics", "internal-stats", "-h"}, "magctl topics internal-stats orders"},
	} {
		_, stdout, stderr := runMagctl(append(tc.args, "--admin-url", "http://127.0.0.1:1")...)
		if !strings.Contains(stdout+stderr, tc.contains) {
			t.Errorf("magctl %s: output lacks %q:\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), tc.contains, stdout, stderr)
		}
	}
}
