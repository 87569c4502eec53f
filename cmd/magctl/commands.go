package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/magnetar-mq/magnetar/client"
)

func init() {
	var partitions int
	var namespace, output, message, key, subscription, initial string
	var count int
	commands = append(commands, []*command{
		{
			name: "topics create", args: "TOPIC", nargs: 1,
			help:     "Creates a topic. A topic is a metadata row: creating many costs nothing until they are used.",
			examples: "  magctl topics create orders\n  magctl topics create acme/payments/orders -p 8\n",
			flags:    func(fs *flag.FlagSet) { fs.IntVar(&partitions, "p", 1, "number of partitions") },
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				t, err := e.admin().CreateTopic(ctx, args[0], int32(partitions))
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "created %s with %d partition(s)\n", t.Name, t.Partitions)
				return nil
			},
		},
		{
			name: "topics list", args: "", nargs: 0,
			help:     "Lists topics, of one namespace with -n.",
			examples: "  magctl topics list\n  magctl topics list -n public/default\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&namespace, "n", "", "only this namespace (tenant/namespace)")
				fs.StringVar(&output, "o", "table", "output: table or json")
			},
			run: func(ctx context.Context, e *env, _ []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				ts, err := e.admin().ListTopics(ctx, namespace)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, ts)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TOPIC\tPARTITIONS")
				for _, t := range ts {
					fmt.Fprintf(w, "%s\t%d\n", t.Name, t.Partitions)
				}
				return w.Flush()
			},
		},
		{
			name: "topics delete", args: "TOPIC", nargs: 1,
			help:     "Deletes a topic with all its messages and subscriptions. There is no undo.",
			examples: "  magctl topics delete orders\n",
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				if err := e.admin().DeleteTopic(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted %s\n", args[0])
				return nil
			},
		},
		{
			name: "topics stats", args: "TOPIC", nargs: 1,
			help:     "Shows a topic's partitions (offsets, segments, bytes) and subscriptions (position, backlog).",
			examples: "  magctl topics stats orders\n  magctl topics stats orders -o json\n",
			flags:    func(fs *flag.FlagSet) { fs.StringVar(&output, "o", "table", "output: table or json") },
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				st, err := e.admin().TopicStats(ctx, args[0])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, st)
				}
				return writeStats(e.stdout, st)
			},
		},
		{
			name: "bookies list", args: "", nargs: 0,
			help:     "Lists the registered bookies (storage processes), the shards each hosts and leads.",
			examples: "  magctl bookies list\n  magctl bookies list -o json\n",
			flags:    func(fs *flag.FlagSet) { fs.StringVar(&output, "o", "table", "output: table or json") },
			run: func(ctx context.Context, e *env, _ []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				bs, err := e.admin().ListBookies(ctx)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, bs)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "BOOKIE\tGRPC\tSHARDS\tLEADS\tVERSION")
				for _, b := range bs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", b.ID, orDash(b.GRPCAddr), orDash(strings.Join(b.Shards, ",")), orDash(strings.Join(b.Leads, ",")), orDash(b.Version))
				}
				return w.Flush()
			},
		},
		{
			name: "shards list", args: "", nargs: 0,
			help: "Lists the storage shards: state, leader, live replicas and usage (as the leader\n" +
				"last reported). New segments go to the active shard with the fewest open segments.",
			examples: "  magctl shards list\n  magctl shards list -o json\n",
			flags:    func(fs *flag.FlagSet) { fs.StringVar(&output, "o", "table", "output: table or json") },
			run: func(ctx context.Context, e *env, _ []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				ss, err := e.admin().ListShards(ctx)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, ss)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SHARD\tSTATE\tLEADER\tREPLICAS\tSEGMENTS\tOPEN\tBYTES")
				for _, s := range ss {
					var reps []string
					for _, r := range s.Replicas {
						if !r.Live {
							reps = append(reps, r.Bookie+"(down)")
						} else {
							reps = append(reps, r.Bookie)
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", s.ID, s.State, orDash(s.Leader), strings.Join(reps, ","),
						s.Usage.Segments, s.Usage.OpenSegments, s.Usage.Bytes)
				}
				return w.Flush()
			},
		},
		{
			name: "produce", args: "TOPIC", nargs: 1,
			help: "Sends -m TEXT as one message, or else each line of standard input as a message,\n" +
				"and waits until every message is stored. Prints the count and the last message ID.",
			examples: "  magctl produce orders -m 'hello'\n  seq 1000 | magctl produce orders\n  magctl produce orders -k customer-7 -m 'paid'\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&message, "m", "", "message text (default: read lines from stdin)")
				fs.StringVar(&key, "k", "", "message key (routes to a partition)")
			},
			run: func(ctx context.Context, e *env, args []string) error { return produce(ctx, e, args[0], message, key) },
		},
		{
			name: "consume", args: "TOPIC", nargs: 1,
			help: "Receives messages of a subscription and prints each value on its own line,\n" +
				"acknowledging each one. Stops after -n messages (0: until interrupted).",
			examples: "  magctl consume orders -s audit -n 10\n  magctl consume orders -s tail --initial-position latest\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&subscription, "s", "", "subscription name (required)")
				fs.IntVar(&count, "n", 0, "stop after this many messages (0: run until interrupted)")
				fs.StringVar(&initial, "initial-position", "earliest", "where a new subscription starts: earliest or latest")
			},
			run: func(ctx context.Context, e *env, args []string) error {
				return consume(ctx, e, args[0], subscription, initial, count)
			},
		},
	}...)
}

// orDash shows an empty value as "-" in a table.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeStats(out io.Writer, st client.TopicStats) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Topic:\t%s\nMessages:\t%d\nBytes:\t%d\n\n", st.Topic, st.Messages, st.Bytes)
	fmt.Fprintln(w, "PARTITION\tSTART\tEND\tSEGMENTS\tBYTES")
	for _, p := range st.Partitions {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\n", p.Partition, p.StartOffset, p.EndOffset, p.Segments, p.Bytes)
	}
	if len(st.Subscriptions) > 0 {
		fmt.Fprintln(w, "\nSUBSCRIPTION\tPARTITION\tTYPE\tNEXT\tBACKLOG\tCONSUMERS\tUNACKED\tDELAYED")
		for _, s := range st.Subscriptions {
			fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Name, s.Partition, orDash(s.Type), s.NextOffset, s.Backlog, s.Consumers, s.Unacked, s.Delayed)
		}
	}
	return w.Flush()
}

func produce(ctx context.Context, e *env, topic, message, key string) error {
	c, err := client.New(e.clientOptions())
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	p, err := c.CreateProducer(cctx, client.ProducerOptions{Topic: topic, Name: "magctl"})
	cancel()
	if err != nil {
		return err
	}
	defer p.Close()

	var (
		mu       sync.Mutex // guards the results, written by callbacks
		sent     int
		failed   int
		last     client.MessageID
		firstErr error
	)
	send := func(text string) {
		m := &client.Message{Value: []byte(text)}
		if key != "" {
			m.Key = []byte(key)
		}
		sent++
		p.SendAsync(ctx, m, func(id client.MessageID, _ *client.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if id.Offset >= last.Offset {
					last = id
				}
			case firstErr == nil:
				firstErr = err
				failed++
			default:
				failed++
			}
		})
	}
	if message != "" {
		send(message)
	} else {
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			send(sc.Text())
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
	}
	// Flush returns once every callback has run.
	if err := p.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return fmt.Errorf("%d of %d messages failed; first error: %w", failed, sent, firstErr)
	}
	fmt.Fprintf(e.stderr, "produced %d message(s) to %s; last ID %s\n", sent, p.Topic(), last)
	return nil
}

func consume(ctx context.Context, e *env, topic, subscription, initial string, count int) error {
	if subscription == "" {
		return errors.New("-s SUBSCRIPTION is required")
	}
	opts := client.ConsumerOptions{Topic: topic, Subscription: subscription, Name: "magctl"}
	switch strings.ToLower(initial) {
	case "earliest":
		opts.InitialPosition = client.Earliest
	case "latest":
		opts.InitialPosition = client.Latest
	default:
		return fmt.Errorf("--initial-position: want earliest or latest, got %q", initial)
	}
	c, err := client.New(e.clientOptions())
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	cons, err := c.Subscribe(cctx, opts)
	cancel()
	if err != nil {
		return err
	}
	defer cons.Close()
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for n := 0; count == 0 || n < count; n++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil // interrupted
			}
			return err
		}
		w.Write(m.Value)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return err
		}
		if err := cons.Ack(m); err != nil {
			return err
		}
	}
	return nil
}
