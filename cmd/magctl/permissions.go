package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/magnetar-mq/magnetar/client"
)

// Permission commands: grants of produce, consume and admin to roles on a
// namespace or a topic, as `pulsar-admin namespaces grant-permission`.
func init() {
	var actions, output string
	admin := func(ctx context.Context, e *env) (*client.Admin, context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(ctx, e.timeout)
		return e.admin(), ctx, cancel
	}
	outputFlag := func(fs *flag.FlagSet) { fs.StringVar(&output, "o", "table", "output: table or json") }
	actionsFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&actions, "actions", "", "comma-separated actions: produce, consume, admin (required)")
	}
	split := func() ([]string, error) {
		var out []string
		for a := range strings.SplitSeq(actions, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("--actions is required: produce, consume and/or admin")
		}
		return out, nil
	}
	grant := func(fn func(*client.Admin, context.Context, string, string, []string) error) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			acts, err := split()
			if err != nil {
				return err
			}
			a, ctx, cancel := admin(ctx, e)
			defer cancel()
			if err := fn(a, ctx, args[0], args[1], acts); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "granted %s to role %s on %s\n", strings.Join(acts, ","), args[1], args[0])
			return nil
		}
	}
	revoke := func(fn func(*client.Admin, context.Context, string, string) error) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			a, ctx, cancel := admin(ctx, e)
			defer cancel()
			if err := fn(a, ctx, args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked role %s's permissions on %s\n", args[1], args[0])
			return nil
		}
	}
	list := func(fn func(*client.Admin, context.Context, string) (client.Permissions, error)) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			a, ctx, cancel := admin(ctx, e)
			defer cancel()
			p, err := fn(a, ctx, args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(e.stdout, p)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ROLE\tACTIONS")
			for _, role := range slices.Sorted(maps.Keys(p)) {
				fmt.Fprintf(w, "%s\t%s\n", role, strings.Join(p[role], ","))
			}
			return w.Flush()
		}
	}
	commands = append(commands,
		&command{
			name: "namespaces grant-permission", args: "TENANT/NAMESPACE ROLE", nargs: 2,
			help: "Grants a role actions on every topic of the namespace, replacing what it had:\n" +
				"produce, consume, admin (topics, their policies and subscriptions). Needs a\n" +
				"superuser or an admin role of the tenant.",
			examples: "  magctl namespaces grant-permission acme/iot sensors --actions produce\n" +
				"  magctl namespaces grant-permission acme/iot analytics --actions produce,consume\n",
			flags: actionsFlag,
			run:   grant((*client.Admin).GrantNamespacePermission),
		},
		&command{
			name: "namespaces revoke-permission", args: "TENANT/NAMESPACE ROLE", nargs: 2,
			help:     "Takes back what a role was granted on the namespace.",
			examples: "  magctl namespaces revoke-permission acme/iot sensors\n",
			run:      revoke((*client.Admin).RevokeNamespacePermission),
		},
		&command{
			name: "namespaces permissions", args: "TENANT/NAMESPACE", nargs: 1,
			help:     "Lists the roles granted actions on the namespace.",
			examples: "  magctl namespaces permissions acme/iot\n  magctl namespaces permissions acme/iot -o json\n",
			flags:    outputFlag,
			run:      list((*client.Admin).NamespacePermissions),
		},
		&command{
			name: "topics grant-permission", args: "TOPIC ROLE", nargs: 2,
			help: "Grants a role actions on one topic, beside what its namespace grants:\n" +
				"produce, consume, admin.",
			examples: "  magctl topics grant-permission acme/iot/alerts pager --actions consume\n",
			flags:    actionsFlag,
			run:      grant((*client.Admin).GrantTopicPermission),
		},
		&command{
			name: "topics revoke-permission", args: "TOPIC ROLE", nargs: 2,
			help:     "Takes back what a role was granted on the topic (its namespace's grants still apply).",
			examples: "  magctl topics revoke-permission acme/iot/alerts pager\n",
			run:      revoke((*client.Admin).RevokeTopicPermission),
		},
		&command{
			name: "topics permissions", args: "TOPIC", nargs: 1,
			help:     "Lists the roles granted actions on the topic itself.",
			examples: "  magctl topics permissions acme/iot/alerts\n",
			flags:    outputFlag,
			run:      list((*client.Admin).TopicPermissions),
		},
	)
}
