package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/magnetar-mq/magnetar/internal/config"
)

const usage = `Usage: magctl <command> [flags]

Commands:
  topics create TOPIC [-p PARTITIONS]   create a topic
  topics list [-n TENANT/NAMESPACE]     list topics
  topics delete TOPIC                   delete a topic, its messages and subscriptions
  topics stats TOPIC [-o table|json]    offsets, sizes, subscriptions and backlog
  produce TOPIC [-m TEXT] [-k KEY]      send -m TEXT, or one message per line of stdin
  consume TOPIC -s SUBSCRIPTION [-n N]  print message values, one per line, acking each
  topics internal-stats TOPIC           segments and cursors of each partition
  topics policies TOPIC                 effective policies and where each comes from
  topics set-policy TOPIC --FLAG VALUE  override policies for one topic
  topics remove-policy TOPIC POLICY     remove overrides (comma-separated names, or all)
  subscriptions list TOPIC              subscriptions of every partition
  subscriptions create TOPIC SUB        create a durable subscription [--from earliest|latest|offset|time]
  subscriptions delete TOPIC SUB        delete a subscription and its cursor
  subscriptions reset TOPIC SUB         move it: --to-offset N | --to-time T
  subscriptions skip TOPIC SUB          acknowledge the next --count N messages
  subscriptions expire TOPIC SUB        acknowledge what is --older-than D
  tenants create|list|delete            tenants
  namespaces create TENANT/NS [flags]   create a namespace, optionally with policies
  namespaces list TENANT                list a tenant's namespaces
  namespaces delete TENANT/NS           delete an empty namespace
  namespaces policies TENANT/NS         effective policies of a namespace
  namespaces set-policy TENANT/NS ...   set policies, e.g. --retention-time 7d --retention-size 10GiB
  namespaces remove-policy TENANT/NS P  unset policies (comma-separated names, or all)
  namespaces grant-permission NS ROLE   grant --actions produce,consume,admin on a namespace
  namespaces revoke-permission NS ROLE  take a role's permissions back
  namespaces permissions TENANT/NS      roles and their actions (topics grant-permission etc. for one topic)
  bookies list [-o table|json]          registered bookies and the shards they host
  shards list [-o table|json]           storage shards: leader, replicas, usage
  tokens create-secret-key              a new secret key for HS256 tokens
  tokens create-key-pair                a new RS256 or ES256 key pair
  tokens create --subject ROLE          a token for a role, signed with a key file
  tokens show TOKEN                     a token's header and claims, unverified
  tokens validate TOKEN                 verify a token with a key file; prints its role

TOPIC is tenant/namespace/topic, persistent://tenant/namespace/topic, or a
bare name in the broker's default namespace (public/default).

Every command that talks to a broker takes --admin-url (default
http://127.0.0.1:8080, env MAGNETAR_ADMIN_URL) and --service-addr (default
127.0.0.1:6650, env MAGNETAR_SERVICE_ADDR). To authenticate: --token (env
MAGNETAR_TOKEN) or --token-file, and/or a client certificate. For TLS:
--tls-ca-file, --tls-cert-file and --tls-key-file, --tls-server-name,
--tls-insecure (or --tls alone to trust the system's CAs); an https://
--admin-url uses them too. Every flag can be set as MAGNETAR_<FLAG> in the
environment, e.g. MAGNETAR_TLS_CA_FILE. Run 'magctl <command> --help' for
its flags.

Examples:
  magctl topics create orders -p 4
  magctl produce orders -m 'hello'
  seq 10 | magctl produce orders
  magctl consume orders -s audit -n 10
  magctl topics stats orders
  magctl tenants create acme
  magctl namespaces create acme/iot --retention-time 7d --retention-size 10GiB
  magctl namespaces set-policy acme/iot --publish-rate-msgs 1000
  magctl tokens create --secret-key-file my-secret.key --subject alice
  MAGNETAR_TOKEN=$(cat alice.jwt) magctl topics list --admin-url https://broker:8443 --tls-ca-file ca.pem
`

// globals are the connection settings every command that talks to a
// broker takes.
type globals struct {
	adminURL    string
	serviceAddr string
	timeout     time.Duration

	token, tokenFile         string
	useTLS, tlsInsecure      bool
	tlsCAFile, tlsServerName string
	tlsCertFile, tlsKeyFile  string
	conn                     connection // resolved from the above (connect.go)
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.adminURL, "admin-url", "http://127.0.0.1:8080", "admin REST API of a broker (https:// for TLS)")
	fs.StringVar(&g.serviceAddr, "service-addr", "127.0.0.1:6650", "native protocol address of a broker")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "time limit of admin calls and of connecting")
	fs.StringVar(&g.token, "token", "", "JWT to authenticate with (prefer MAGNETAR_TOKEN or --token-file: flags show in ps)")
	fs.StringVar(&g.tokenFile, "token-file", "", "file holding the JWT to authenticate with")
	fs.BoolVar(&g.useTLS, "tls", false, "use TLS to the native port, trusting the system's CAs (implied by every other --tls-* flag)")
	fs.StringVar(&g.tlsCAFile, "tls-ca-file", "", "PEM CA certificates that sign the brokers' certificates (default: the system's)")
	fs.StringVar(&g.tlsCertFile, "tls-cert-file", "", "PEM client certificate to present (its common name is the role), with --tls-key-file")
	fs.StringVar(&g.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&g.tlsServerName, "tls-server-name", "", "name the brokers' certificates must hold (default: the host connected to)")
	fs.BoolVar(&g.tlsInsecure, "tls-insecure", false, "do not verify the brokers' certificates (tests only: anyone on the path can read everything)")
}

// command is one magctl command: its flags, usage text and action.
type command struct {
	name     string // e.g. "topics create"
	args     string // positional arguments, for the usage line
	help     string
	examples string
	flags    func(fs *flag.FlagSet)
	nargs    int // positional arguments required
	// local commands talk to no broker: they take no connection flags.
	local bool
	run   func(ctx context.Context, e *env, args []string) error
}

var commands []*command

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := findCommand(args)
	if cmd == nil {
		fmt.Fprintf(stderr, "magctl: unknown command %q\n\n%s", joinWords(args), usage)
		return 2
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	fs := newFlagSetFor(cmd, e)
	// Flags may come before or after the positional arguments.
	positional, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(positional) != cmd.nargs {
		fmt.Fprintf(stderr, "magctl %s: want %d argument(s) (%s), got %d\n", cmd.name, cmd.nargs, cmd.args, len(positional))
		fs.Usage()
		return 2
	}
	if !cmd.local {
		if err := e.connect(); err != nil {
			fmt.Fprintf(stderr, "magctl %s: %v\n", cmd.name, err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, e, positional); err != nil {
		fmt.Fprintf(stderr, "magctl %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// newFlagSetFor returns the command's flags, with the connection flags
// bound to e.
func newFlagSetFor(cmd *command, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("magctl "+cmd.name, flag.ContinueOnError)
	if e.stderr == nil {
		e.stderr = io.Discard
	}
	fs.SetOutput(e.stderr)
	if !cmd.local {
		e.register(fs)
	}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: magctl %s %s\n\n%s\n\nExamples:\n%s\nFlags:\n", cmd.name, cmd.args, cmd.help, cmd.examples)
		fs.PrintDefaults()
	}
	return fs
}

// findCommand matches the longest command name at the start of args.
func findCommand(args []string) (*command, []string) {
	var best *command
	bestWords := 0
	for _, c := range commands {
		words := splitWords(c.name)
		if len(words) <= len(args) && slices.Equal(words, args[:len(words)]) && len(words) > bestWords {
			best, bestWords = c, len(words)
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, args[bestWords:]
}

// parseInterspersed parses flags anywhere among the arguments, with the
// environment (MAGNETAR_*) as a fallback, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	var flagArgs []string
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		if a == "--" {
			positional = append(positional, args...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flagArgs = append(flagArgs, a)
			name := trimDashes(a)
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && !hasValue(a) && len(args) > 0 {
				flagArgs = append(flagArgs, args[0])
				args = args[1:]
			}
			continue
		}
		positional = append(positional, a)
	}
	if err := config.Parse(fs, flagArgs, "", os.LookupEnv); err != nil {
		return nil, err
	}
	return positional, nil
}

// env is what a command runs with: the connection settings and the
// standard streams.
type env struct {
	globals
	stdin          io.Reader
	stdout, stderr io.Writer
}

func splitWords(s string) []string { return strings.Fields(s) }

func joinWords(ws []string) string { return strings.Join(ws, " ") }

func trimDashes(a string) string {
	a = strings.TrimLeft(a, "-")
	if i := strings.IndexByte(a, '='); i >= 0 {
		a = a[:i]
	}
	return a
}

func hasValue(a string) bool { return strings.Contains(a, "=") }

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
