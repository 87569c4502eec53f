package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// policyDef is one policy as the command line spells it.
type policyDef struct {
	flag string // --flag and remove-policy name
	json string // the admin API's name
	kind string // duration, size, count, action, bool
	help string
}

var policyDefs = []policyDef{
	{"retention-time", "retention_ms", "duration", "keep acknowledged messages this long (e.g. 7d, 12h; -1: forever; 0: not at all)"},
	{"retention-size", "retention_bytes", "size", "keep acknowledged messages up to this size per partition (e.g. 10GiB; -1: no limit)"},
	{"message-ttl", "message_ttl_ms", "duration", "acknowledge messages older than this on every subscription (e.g. 1h; 0: never)"},
	{"backlog-quota-size", "backlog_quota_bytes", "size", "largest backlog of a subscription (e.g. 50GiB; -1: unlimited)"},
	{"backlog-quota-action", "backlog_quota_action", "action", "at the backlog quota: producer_request_hold, producer_exception or consumer_backlog_eviction"},
	{"max-topics", "max_topics", "count", "most topics in the namespace (0: unlimited; namespaces only)"},
	{"publish-rate-msgs", "publish_rate_msgs", "count", "messages per second producers may publish to a topic; faster producers are slowed (0: unlimited)"},
	{"publish-rate-bytes", "publish_rate_bytes", "size", "bytes per second producers may publish to a topic, e.g. 10MiB (0: unlimited)"},
	{"auto-topic-creation", "auto_topic_creation", "bool", "create a missing topic on first use: true or false (namespaces only)"},
	{"auto-topic-partitions", "auto_topic_partitions", "count", "partitions of an automatically created topic (namespaces only)"},
	{"offload-threshold", "offload_threshold_bytes", "size", "offload sealed segments once a partition keeps more than this on bookies (-1: never)"},
}

// policyFlags collects the policy flags given on the command line.
type policyFlags struct {
	set map[string]json.RawMessage // by JSON name
}

type policyValue struct {
	def *policyDef
	pf  *policyFlags
	s   string
}

func (v *policyValue) String() string { return v.s }

func (v *policyValue) Set(s string) error {
	var raw any
	switch v.def.kind {
	case "duration":
		ms, err := parseDurationMs(s)
		if err != nil {
			return err
		}
		raw = ms
	case "size":
		b, err := parseSize(s)
		if err != nil {
			return err
		}
		raw = b
	case "count":
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			if !unlimitedWords[strings.ToLower(s)] {
				return fmt.Errorf("%q is not a whole number", s)
			}
			n = -1
		}
		raw = n
	case "bool":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q: want true or false", s)
		}
		raw = b
	default:
		raw = strings.ToLower(s)
	}
	data, _ := json.Marshal(raw)
	v.pf.set[v.def.json] = data
	v.s = s
	return nil
}

// register adds a --flag per policy (forgetting earlier runs' values).
func (pf *policyFlags) register(fs *flag.FlagSet, namespace bool) {
	pf.set = map[string]json.RawMessage{}
	for i := range policyDefs {
		d := &policyDefs[i]
		if !namespace && strings.Contains(d.help, "namespaces only") {
			continue
		}
		fs.Var(&policyValue{def: d, pf: pf}, d.flag, "(`"+d.kind+"`) "+d.help)
	}
}

func (pf *policyFlags) policies() (client.Policies, error) {
	var p client.Policies
	data, _ := json.Marshal(pf.set)
	return p, json.Unmarshal(data, &p)
}

// policyNames turns "retention-time,message-ttl" or "all" into the admin
// API's names.
func policyNames(arg string) ([]string, error) {
	if arg == "all" {
		return nil, nil
	}
	var out []string
	for _, n := range strings.Split(arg, ",") {
		n = strings.TrimSpace(n)
		found := false
		for _, d := range policyDefs {
			if n == d.flag || n == d.json {
				out = append(out, d.json)
				found = true
			}
		}
		if !found {
			var names []string
			for _, d := range policyDefs {
				names = append(names, d.flag)
			}
			return nil, fmt.Errorf("unknown policy %q (want all or some of %s)", n, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// writePolicies shows each effective policy and where it comes from.
func writePolicies(out io.Writer, info client.PoliciesInfo, topic bool) error {
	fields := func(p *client.Policies) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		if p != nil {
			data, _ := json.Marshal(p)
			_ = json.Unmarshal(data, &m)
		}
		return m
	}
	set, ns, eff := fields(&info.Policies), fields(info.Namespace), fields(&info.Effective)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POLICY\tVALUE\tFROM")
	for _, d := range policyDefs {
		if topic && strings.Contains(d.help, "namespaces only") {
			continue
		}
		from := "default"
		switch {
		case set[d.json] != nil && topic:
			from = "topic"
		case set[d.json] != nil:
			from = "namespace"
		case ns[d.json] != nil:
			from = "namespace"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", d.flag, formatPolicy(d, eff[d.json]), from)
	}
	return w.Flush()
}

func formatPolicy(d policyDef, raw json.RawMessage) string {
	if raw == nil {
		return "-"
	}
	var n int64
	switch d.kind {
	case "duration":
		if json.Unmarshal(raw, &n) == nil {
			return formatDurationMs(n)
		}
	case "size":
		if json.Unmarshal(raw, &n) == nil {
			if n == 0 && d.json == "publish_rate_bytes" {
				return "unlimited"
			}
			if d.json == "publish_rate_bytes" {
				return formatSize(n) + "/s"
			}
			return formatSize(n)
		}
	case "count":
		if json.Unmarshal(raw, &n) == nil && n <= 0 && d.json != "auto_topic_partitions" {
			return "unlimited"
		}
	case "action":
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

func init() {
	var output, roles string
	var bundles int
	var pf policyFlags
	admin := func(ctx context.Context, e *env) (*client.Admin, context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(ctx, e.timeout)
		return e.admin(), ctx, cancel
	}
	outputFlag := func(fs *flag.FlagSet) { fs.StringVar(&output, "o", "table", "output: table or json") }
	showPolicies := func(e *env, info client.PoliciesInfo, topic bool) error {
		if output == "json" {
			return writeJSON(e.stdout, info)
		}
		return writePolicies(e.stdout, info, topic)
	}
	// The set-policy and remove-policy commands of namespaces and (topic)
	// topics differ in the admin call only.
	type runFunc = func(context.Context, *env, []string) error
	setPolicyRun := func(set func(*client.Admin, context.Context, string, client.Policies) (client.PoliciesInfo, error), topic bool) runFunc {
		return func(ctx context.Context, e *env, args []string) error {
			if len(pf.set) == 0 {
				return errors.New("no policy given (see --help)")
			}
			p, err := pf.policies()
			if err != nil {
				return err
			}
			a, ctx, cancel := admin(ctx, e)
			defer cancel()
			info, err := set(a, ctx, args[0], p)
			if err != nil {
				return err
			}
			return showPolicies(e, info, topic)
		}
	}
	removePolicyRun := func(remove func(*client.Admin, context.Context, string, ...string) (client.PoliciesInfo, error), topic bool) runFunc {
		return func(ctx context.Context, e *env, args []string) error {
			names, err := policyNames(args[1])
			if err != nil {
				return err
			}
			a, ctx, cancel := admin(ctx, e)
			defer cancel()
			info, err := remove(a, ctx, args[0], names...)
			if err != nil {
				return err
			}
			return showPolicies(e, info, topic)
		}
	}
	commands = append(commands,
		&command{
			name: "tenants create", args: "TENANT", nargs: 1,
			help:     "Creates a tenant. Namespaces, and the topics in them, belong to a tenant.",
			examples: "  magctl tenants create acme\n  magctl tenants create acme --admin-roles ops,billing\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&roles, "admin-roles", "", "comma-separated roles that administer the tenant")
			},
			run: func(ctx context.Context, e *env, args []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				var rs []string
				if roles != "" {
					rs = strings.Split(roles, ",")
				}
				t, err := a.CreateTenant(ctx, args[0], rs)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "created tenant %s\n", t.Name)
				return nil
			},
		},
		&command{
			name: "tenants list", args: "", nargs: 0,
			help:     "Lists the tenants.",
			examples: "  magctl tenants list\n  magctl tenants list -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, _ []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				ts, err := a.ListTenants(ctx)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, ts)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TENANT\tADMIN ROLES\tCREATED")
				for _, t := range ts {
					fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, orDash(strings.Join(t.AdminRoles, ",")), created(t.CreatedUnixMs))
				}
				return w.Flush()
			},
		},
		&command{
			name: "tenants delete", args: "TENANT", nargs: 1,
			help:     "Deletes a tenant. It must have no namespaces left.",
			examples: "  magctl tenants delete acme\n",
			run: func(ctx context.Context, e *env, args []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				if err := a.DeleteTenant(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted tenant %s\n", args[0])
				return nil
			},
		},
		&command{
			name: "namespaces create", args: "TENANT/NAMESPACE", nargs: 1,
			help: "Creates a namespace in an existing tenant, optionally with policies (see\n" +
				"'magctl namespaces set-policy --help'). Topics can only be created in an existing namespace.",
			examples: "  magctl namespaces create acme/payments\n" +
				"  magctl namespaces create acme/iot --bundles 16 --retention-time 7d --retention-size 10GiB --max-topics 1000\n",
			flags: func(fs *flag.FlagSet) {
				fs.IntVar(&bundles, "bundles", 0, "bundles the topic hash space is cut into (0: the broker's default)")
				pf.register(fs, true)
			},
			run: func(ctx context.Context, e *env, args []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				if bundles < 0 {
					return errors.New("--bundles must not be negative")
				}
				opts := client.NamespaceOptions{Bundles: uint32(bundles)}
				if len(pf.set) > 0 {
					p, err := pf.policies()
					if err != nil {
						return err
					}
					opts.Policies = &p
				}
				n, err := a.CreateNamespace(ctx, args[0], opts)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "created namespace %s\n", n.Name)
				return nil
			},
		},
		&command{
			name: "namespaces list", args: "TENANT", nargs: 1,
			help:     "Lists a tenant's namespaces.",
			examples: "  magctl namespaces list public\n  magctl namespaces list acme -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				ns, err := a.ListNamespaces(ctx, args[0])
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(e.stdout, ns)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAMESPACE\tBUNDLES\tPOLICIES SET\tCREATED")
				for _, n := range ns {
					b := "default"
					if n.Bundles > 0 {
						b = strconv.Itoa(int(n.Bundles))
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.Name, b, orDash(setPolicies(n.Policies)), created(n.CreatedUnixMs))
				}
				return w.Flush()
			},
		},
		&command{
			name: "namespaces delete", args: "TENANT/NAMESPACE", nargs: 1,
			help:     "Deletes a namespace. It must have no topics left.",
			examples: "  magctl namespaces delete acme/payments\n",
			run: func(ctx context.Context, e *env, args []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				if err := a.DeleteNamespace(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted namespace %s\n", args[0])
				return nil
			},
		},
		&command{
			name: "namespaces policies", args: "TENANT/NAMESPACE", nargs: 1,
			help: "Shows the namespace's effective policies and whether each is set on the\n" +
				"namespace or is the broker's default.",
			examples: "  magctl namespaces policies public/default\n  magctl namespaces policies acme/iot -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				info, err := a.NamespacePolicies(ctx, args[0])
				if err != nil {
					return err
				}
				return showPolicies(e, info, false)
			},
		},
		&command{
			name: "namespaces set-policy", args: "TENANT/NAMESPACE", nargs: 1,
			help: "Sets the policies given as flags on the namespace; the others stay as they are.\n" +
				"They apply to every topic of the namespace that does not override them, on every\n" +
				"broker within moments. Durations take s, m, h, d, w; sizes B, KiB, MiB, GiB, TiB\n" +
				"(K, M, G, T are the same; KB, MB, GB, TB are powers of 1000).",
			examples: "  magctl namespaces set-policy acme/iot --retention-time 7d --retention-size 10GiB\n" +
				"  magctl namespaces set-policy acme/iot --message-ttl 1h --backlog-quota-size 50GiB --backlog-quota-action producer_exception\n" +
				"  magctl namespaces set-policy acme/iot --publish-rate-msgs 1000 --publish-rate-bytes 10MiB\n" +
				"  magctl namespaces set-policy acme/iot --auto-topic-creation=false --max-topics 500\n",
			flags: func(fs *flag.FlagSet) {
				pf.register(fs, true)
				outputFlag(fs)
			},
			run: setPolicyRun((*client.Admin).SetNamespacePolicies, false),
		},
		&command{
			name: "namespaces remove-policy", args: "TENANT/NAMESPACE POLICY[,POLICY...]|all", nargs: 2,
			help:     "Unsets policies of the namespace, so they are the broker's defaults again.",
			examples: "  magctl namespaces remove-policy acme/iot message-ttl\n  magctl namespaces remove-policy acme/iot retention-time,retention-size\n  magctl namespaces remove-policy acme/iot all\n",
			flags:    outputFlag,
			run:      removePolicyRun((*client.Admin).RemoveNamespacePolicies, false),
		},
		&command{
			name: "topics policies", args: "TOPIC", nargs: 1,
			help: "Shows the topic's effective policies and where each comes from: the topic's\n" +
				"own override, its namespace, or the broker's default.",
			examples: "  magctl topics policies orders\n  magctl topics policies acme/iot/telemetry -o json\n",
			flags:    outputFlag,
			run: func(ctx context.Context, e *env, args []string) error {
				a, ctx, cancel := admin(ctx, e)
				defer cancel()
				info, err := a.TopicPolicies(ctx, args[0])
				if err != nil {
					return err
				}
				return showPolicies(e, info, true)
			},
		},
		&command{
			name: "topics set-policy", args: "TOPIC", nargs: 1,
			help: "Overrides the namespace's policies given as flags for this topic; the others\n" +
				"stay as they are. Units as in 'magctl namespaces set-policy'.",
			examples: "  magctl topics set-policy acme/iot/telemetry --retention-time 30d\n" +
				"  magctl topics set-policy orders --publish-rate-msgs 500\n",
			flags: func(fs *flag.FlagSet) {
				pf.register(fs, false)
				outputFlag(fs)
			},
			run: setPolicyRun((*client.Admin).SetTopicPolicies, true),
		},
		&command{
			name: "topics remove-policy", args: "TOPIC POLICY[,POLICY...]|all", nargs: 2,
			help:     "Removes overrides of the topic, so it follows its namespace again.",
			examples: "  magctl topics remove-policy orders publish-rate-msgs\n  magctl topics remove-policy orders all\n",
			flags:    outputFlag,
			run:      removePolicyRun((*client.Admin).RemoveTopicPolicies, true),
		},
	)
}

// setPolicies lists the flag names of the policies set.
func setPolicies(p client.Policies) string {
	data, _ := json.Marshal(p)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(data, &m)
	var out []string
	for _, d := range policyDefs {
		if m[d.json] != nil {
			out = append(out, d.flag+"="+formatPolicy(d, m[d.json]))
		}
	}
	return strings.Join(out, " ")
}

func created(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
