package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// The subscription commands and topics internal-stats. This file's init
// runs after commands.go's (file-name order), which sets commands.
func init() {
	var output, from, at, toTime, olderThan string
	var partition int
	var offset, toOffset, count int64
	outputFlag := func(fs *flag.FlagSet) { fs.StringVar(&output, "o", "table", "output: table or json") }
	partitionFlag := func(fs *flag.FlagSet) {
		fs.IntVar(&partition, "partition", -1, "only this partition (default: every partition of the topic)")
	}
	admin := func(e *env) *client.Admin { return e.admin() }
	positions := func(e *env, verb string, args []string, ps []client.CursorPosition) error {
		if output == "json" {
			return writeJSON(e.stdout, ps)
		}
		fmt.Fprintf(e.stdout, "%s %s on %s\n", verb, args[1], args[0])
		return writeCursorPositions(e.stdout, ps)
	}
	commands = append(commands,
		&command{
			name: "subscriptions list", args: "TOPIC", nargs: 1,
			help: "Lists the subscriptions of every partition of a topic: cursor, backlog, type and\n" +
				"consumers of the attached consumers.",
			examples: "  magctl subscriptions list orders\n  magctl subscriptions list acme/iot/telemetry -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				subs, err := admin(e).ListSubscriptions(ctx, args[0])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, subs)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SUBSCRIPTION\tPARTITION\tNEXT\tBACKLOG\tTYPE\tCONSUMERS\tUNACKED\tDELAYED")
				for _, s := range subs {
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%d\n", s.Name, s.Partition, s.NextOffset, s.Backlog, orDash(s.Type), s.Consumers, s.Unacked, s.Delayed)
				}
				return w.Flush()
			},
		},
		&command{
			name: "subscriptions create", args: "TOPIC SUBSCRIPTION", nargs: 2,
			help: "Creates a durable subscription on every partition (or one), so messages are kept\n" +
				"for it before any consumer attaches. --from says where it starts: latest (default),\n" +
				"earliest, offset (--offset N) or time (--at: RFC 3339, or a duration ago such as 1h).",
			examples: "  magctl subscriptions create orders audit --from earliest\n" +
				"  magctl subscriptions create orders replay --from time --at 2h\n" +
				"  magctl subscriptions create orders p0 --from offset --offset 1000 --partition 0\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&from, "from", "latest", "where it starts: latest, earliest, offset or time")
				fs.Int64Var(&offset, "offset", 0, "the offset, with --from offset")
				fs.StringVar(&at, "at", "", "the time, with --from time: RFC 3339 or a duration ago (1h, 2d)")
				partitionFlag(fs)
				outputFlag(fs)
			},
			run: func(ctx context.Context, e *env, args []string) error {
				start := client.SubscriptionStart{From: from, Offset: offset}
				switch from {
				case "latest", "earliest", "offset":
				case "time":
					t, err := parseTime(at, time.Now())
					if err != nil {
						return fmt.Errorf("--at: %w", err)
					}
					start.Time = t
				default:
					return fmt.Errorf("--from %q: want latest, earliest, offset or time", from)
				}
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				ps, err := admin(e).CreateSubscription(ctx, args[0], args[1], int32(partition), start)
				if err != nil {
					return err
				}
				return positions(e, "created", args, ps)
			},
		},
		&command{
			name: "subscriptions delete", args: "TOPIC SUBSCRIPTION", nargs: 2,
			help: "Deletes a subscription and its cursor from every partition (or one). Attached\n" +
				"consumers are disconnected; what only it kept may be deleted by retention.",
			examples: "  magctl subscriptions delete orders audit\n",
			flags:    partitionFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				if err := admin(e).DeleteSubscription(ctx, args[0], args[1], int32(partition)); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted %s on %s\n", args[1], args[0])
				return nil
			},
		},
		&command{
			name: "subscriptions reset", args: "TOPIC SUBSCRIPTION", nargs: 2,
			help: "Moves a subscription to an offset (--to-offset) or to the first message published at\n" +
				"or after a time (--to-time): everything before counts as acknowledged, everything\n" +
				"from it on as not. Attached consumers are disconnected and resubscribe from there.",
			examples: "  magctl subscriptions reset orders audit --to-offset 0\n" +
				"  magctl subscriptions reset orders audit --to-time 2024-05-01T10:00:00Z\n" +
				"  magctl subscriptions reset orders audit --to-time 30m --partition 2\n",
			flags: func(fs *flag.FlagSet) {
				fs.Int64Var(&toOffset, "to-offset", -1, "the offset to move to")
				fs.StringVar(&toTime, "to-time", "", "the time to move to: RFC 3339 or a duration ago (30m, 1d)")
				partitionFlag(fs)
				outputFlag(fs)
			},
			run: func(ctx context.Context, e *env, args []string) error {
				if (toOffset >= 0) == (toTime != "") {
					return errors.New("give either --to-offset or --to-time")
				}
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				var ps []client.CursorPosition
				var err error
				if toTime != "" {
					t, perr := parseTime(toTime, time.Now())
					if perr != nil {
						return fmt.Errorf("--to-time: %w", perr)
					}
					ps, err = admin(e).ResetSubscriptionToTime(ctx, args[0], args[1], int32(partition), t)
				} else {
					ps, err = admin(e).ResetSubscription(ctx, args[0], args[1], int32(partition), toOffset)
				}
				if err != nil {
					return err
				}
				return positions(e, "reset", args, ps)
			},
		},
		&command{
			name: "subscriptions skip", args: "TOPIC SUBSCRIPTION", nargs: 2,
			help: "Acknowledges the next --count unacknowledged messages of a subscription, on each\n" +
				"partition (or one), in offset order.",
			examples: "  magctl subscriptions skip orders audit --count 100\n",
			flags: func(fs *flag.FlagSet) {
				fs.Int64Var(&count, "count", 0, "how many messages to skip on each partition")
				partitionFlag(fs)
				outputFlag(fs)
			},
			run: func(ctx context.Context, e *env, args []string) error {
				if count <= 0 {
					return errors.New("--count must be positive")
				}
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				ps, err := admin(e).SkipMessages(ctx, args[0], args[1], int32(partition), count)
				if err != nil {
					return err
				}
				return positions(e, "skipped on", args, ps)
			},
		},
		&command{
			name: "subscriptions expire", args: "TOPIC SUBSCRIPTION", nargs: 2,
			help: "Acknowledges every message of a subscription published more than --older-than ago\n" +
				"(what a message TTL does continuously).",
			examples: "  magctl subscriptions expire orders audit --older-than 1h\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&olderThan, "older-than", "", "age of the messages to acknowledge (30m, 1h, 2d)")
				partitionFlag(fs)
				outputFlag(fs)
			},
			run: func(ctx context.Context, e *env, args []string) error {
				ms, err := parseDurationMs(olderThan)
				if err != nil || ms < 0 {
					return fmt.Errorf("--older-than %q: want a duration such as 1h", olderThan)
				}
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				ps, err := admin(e).ExpireMessages(ctx, args[0], args[1], int32(partition), time.Duration(ms)*time.Millisecond)
				if err != nil {
					return err
				}
				return positions(e, "expired on", args, ps)
			},
		},
		&command{
			name: "topics internal-stats", args: "TOPIC", nargs: 1,
			help: "Shows each partition's segments (id, state, offsets, bytes, shard, epoch, times) and\n" +
				"each subscription's cursor (next offset, individually acked ranges, redelivery\n" +
				"counters, pending and delayed messages, type, consumers).",
			examples: "  magctl topics internal-stats orders\n  magctl topics internal-stats orders -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				st, err := admin(e).InternalStats(ctx, args[0])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, st)
				}
				return writeInternalStats(e.stdout, st)
			},
		},
	)
}

// parseTime parses RFC 3339, or a duration (30m, 2d) meaning that long
// before now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	ms, err := parseDurationMs(s)
	if err != nil || ms < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago (30m, 2d)", s)
	}
	return now.Add(-time.Duration(ms) * time.Millisecond), nil
}

func writeCursorPositions(out io.Writer, ps []client.CursorPosition) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARTITION\tNEXT")
	for _, p := range ps {
		fmt.Fprintf(w, "%d\t%d\n", p.Partition, p.NextOffset)
	}
	return w.Flush()
}

func formatUnixMs(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func writeInternalStats(out io.Writer, st client.TopicInternalStats) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for i, p := range st.Partitions {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "PARTITION %d\tepoch %d\toffsets [%d, %d)\n", p.Partition, p.Epoch, p.StartOffset, p.EndOffset)
		fmt.Fprintln(w, "SEGMENT\tSTATE\tSTART\tEND\tBYTES\tSHARD\tEPOCH\tCREATED\tSEALED\tLAST APPEND")
		for _, s := range p.Segments {
			fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", s.ID, s.State, s.StartOffset, s.EndOffset, formatSize(s.Bytes),
				orDash(s.Shard), s.Epoch, formatUnixMs(s.CreatedUnixMs), formatUnixMs(s.SealedUnixMs), formatUnixMs(s.LastAppendUnixMs))
		}
		if len(p.Cursors) == 0 {
			continue
		}
		fmt.Fprintln(w, "CURSOR\tNEXT\tBACKLOG\tBACKLOG BYTES\tACKED\tACKED RANGES\tFIRST RANGES\tREDELIVERIES\tPENDING\tDELAYED\tTYPE\tCONSUMERS")
		for _, c := range p.Cursors {
			name := c.Name
			if !c.Durable {
				name += " (non-durable)"
			}
			ranges := make([]string, len(c.FirstAckedRanges))
			for j, r := range c.FirstAckedRanges {
				ranges[j] = fmt.Sprintf("[%d,%d)", r.Start, r.End)
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%d\n", name, c.NextOffset, c.Backlog, formatSize(c.BacklogBytes), c.Acked, c.AckedRanges,
				orDash(strings.Join(ranges, " ")), c.Redeliveries, c.Pending, c.Delayed, orDash(c.Type), c.Consumers)
		}
	}
	return w.Flush()
}
