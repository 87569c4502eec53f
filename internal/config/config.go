package config

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable the configuration reads.
const EnvPrefix = "MAGNETAR_"

// EnvName returns the environment variable for a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(flagName))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from the environment (lookupEnv, usually os.LookupEnv) or, failing
// that, from the YAML file named by the flag configFlag (if fs has it and
// it is set, by any source).
func Parse(fs *flag.FlagSet, args []string, configFlag string, lookupEnv func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	fromEnv := map[string]string{}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if explicit[f.Name] || envErr != nil {
			return
		}
		if v, ok := lookupEnv(EnvName(f.Name)); ok {
			fromEnv[f.Name] = v
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("config: %s=%q: %w", EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}

	if configFlag == "" {
		return nil
	}
	cf := fs.Lookup(configFlag)
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	settings, err := readYAML(cf.Value.String())
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Lookup(k) == nil {
			return fmt.Errorf("config: %s: unknown setting %q", cf.Value.String(), k)
		}
		if _, set := fromEnv[k]; explicit[k] || set {
			continue
		}
		if err := fs.Set(k, settings[k]); err != nil {
			return fmt.Errorf("config: %s: %s: %w", cf.Value.String(), k, err)
		}
	}
	return nil
}

// readYAML reads a YAML mapping and flattens it to flag names and values.
func readYAML(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	out := map[string]string{}
	if err := flatten("", doc, out); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return out, nil
}

func flatten(prefix string, m map[string]any, out map[string]string) error {
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch v := v.(type) {
		case map[string]any:
			if err := flatten(name, v, out); err != nil {
				return err
			}
		case []any:
			return fmt.Errorf("setting %q: lists are not supported", name)
		case nil:
			out[name] = ""
		default:
			out[name] = fmt.Sprint(v)
		}
	}
	return nil
}
