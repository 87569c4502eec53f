package main

import (
	"fmt"
	"os"
)

const usage = `Usage: magnetar <command> [flags]

Commands:
  standalone   run the metadata service, a bookie and a broker in one process
  meta         run one node of a metadata cluster (1, 3 or 5 nodes)
  bookie       run a bookie: replicas of one or more storage shards
  broker       run a broker over a metadata cluster and bookies
  bench        measure a running Magnetar: 'magnetar bench produce'
  version      print the version

Run 'magnetar <command> --help' for a command's flags and examples.

Examples:
  magnetar standalone
  magnetar standalone --data-dir /tmp/magnetar --http-addr :8081
  magnetar bench produce --messages 100000 --size 1024
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd := os.Args[1]; cmd {
	case "standalone":
		err = runStandalone(os.Args[2:])
	case "meta":
		err = runMeta(os.Args[2:])
	case "bookie":
		err = runBookie(os.Args[2:])
	case "broker":
		err = runBroker(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:], os.Stdout)
	case "version", "--version":
		fmt.Println("magnetar", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "magnetar: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "magnetar: %v\n", err)
		os.Exit(1)
	}
}
