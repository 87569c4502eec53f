package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Durations and sizes on the command line are in human units; the admin
// API takes milliseconds and bytes.

var unlimitedWords = map[string]bool{"-1": true, "unlimited": true, "infinite": true, "forever": true, "none": true}

// parseDurationMs parses a duration such as 30s, 12h, 7d, 2w or 1h30m
// (Go's units plus d and w) into milliseconds; -1, infinite, forever or
// unlimited are -1.
func parseDurationMs(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if unlimitedWords[s] {
		return -1, nil
	}
	for unit, d := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, unit); ok {
			if v, err := strconv.ParseFloat(n, 64); err == nil && v >= 0 {
				return int64(v * float64(d/time.Millisecond)), nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 12h, 7d, 2w; -1 for no limit)", s)
	}
	return d.Milliseconds(), nil
}

// formatDurationMs shows milliseconds in the largest unit that divides them.
func formatDurationMs(ms int64) string {
	if ms < 0 {
		return "infinite"
	}
	if ms == 0 {
		return "0"
	}
	for _, u := range []struct {
		ms   int64
		name string
	}{{7 * 24 * 3600_000, "w"}, {24 * 3600_000, "d"}, {3600_000, "h"}, {60_000, "m"}, {1000, "s"}} {
		if ms%u.ms == 0 {
			return strconv.FormatInt(ms/u.ms, 10) + u.name
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// parseSize parses a size such as 512MiB, 10GiB, 10G (binary, like
// 10GiB), 10GB (decimal) or 4096 (bytes) into bytes; -1 or unlimited are
// -1.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if unlimitedWords[s] {
		return -1, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult, ok := sizeUnits[unit]
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || v < 0 || v*mult > math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size (e.g. 4096, 512MiB, 10GiB; -1 for no limit)", s)
	}
	return int64(v * mult), nil
}

// formatSize shows bytes in the largest binary unit that divides them.
func formatSize(b int64) string {
	if b < 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if b >= u.n && b%u.n == 0 {
			return strconv.FormatInt(b/u.n, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(b, 10) + " B"
}
