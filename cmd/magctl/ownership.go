package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"
)

// The bundle and broker commands. This file's init must run after
// commands.go's, which sets commands: Go runs a package's init functions
// in file-name order, and "ownership.go" sorts after "commands.go".
func init() {
	var output string
	outputFlag := func(fs *flag.FlagSet) { fs.StringVar(&output, "o", "table", "output: table or json") }
	commands = append(commands,
		&command{
			name: "bundles list", args: "TENANT/NAMESPACE", nargs: 1,
			help: "Lists a namespace's bundles (hash ranges of its topics' partitions) and the broker\n" +
				"owning each; an unowned bundle is assigned by the next lookup of one of its topics.",
			examples: "  magctl bundles list public/default\n  magctl bundles list acme/orders -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				bs, err := e.admin().ListBundles(ctx, args[0])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, bs)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAMESPACE\tBUNDLE\tOWNER\tNATIVE\tSINCE")
				for _, b := range bs {
					since := "-"
					if b.AcquiredUnixMs > 0 {
						since = time.UnixMilli(b.AcquiredUnixMs).UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", b.Namespace, b.Range, orDash(b.Owner), orDash(b.OwnerNativeAddr), since)
				}
				return w.Flush()
			},
		},
		&command{
			name: "bundles unload", args: "TENANT/NAMESPACE RANGE", nargs: 2,
			help: "Moves a bundle off its owner: the owner closes the bundle's partitions (flushing\n" +
				"their cursors) and hands the bundle to another broker, where clients reconnect.",
			examples: "  magctl bundles unload public/default 00000000-3fffffff\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				res, err := e.admin().UnloadBundle(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, res)
				}
				if res.PreviousOwner == "" {
					fmt.Fprintf(e.stdout, "bundle %s/%s was not owned\n", res.Namespace, res.Range)
					return nil
				}
				fmt.Fprintf(e.stdout, "unloaded %s/%s from %s to %s in %d ms\n", res.Namespace, res.Range, res.PreviousOwner, res.NewOwner, res.TookMs)
				return nil
			},
		},
		&command{
			name: "brokers list", args: "", nargs: 0,
			help:     "Lists the live brokers, their addresses and how many bundles each owns.",
			examples: "  magctl brokers list\n  magctl brokers list -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, _ []string) error {
				ctx, cancel := context.WithTimeout(ctx, e.timeout)
				defer cancel()
				bs, err := e.admin().ListBrokers(ctx)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, bs)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "BROKER\tNATIVE\tKAFKA\tADMIN\tBUNDLES")
				for _, b := range bs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", b.ID, orDash(b.NativeAddr), orDash(b.KafkaAddr), orDash(b.AdminAddr), b.Bundles)
				}
				return w.Flush()
			},
		},
	)
}
