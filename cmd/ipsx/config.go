package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// configFile is the name of the config file in the data dir.
const configFile = "config.json"

// envName is the environment variable of a flag: IPSX_ and the name in
// upper case with "-" as "_".
func envName(flag string) string {
	return "IPSX_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindFlags gives every flag of cmd that was not set on the command line
// its value from the environment (IPSX_<NAME>, when non-empty), else from
// the key of the same name in <datadir>/config.json, else leaves its
// default. The data dir itself comes from --datadir or IPSX_DATADIR only,
// since the config file lives in it.
//
// config.json is a flat JSON object: strings, numbers and booleans for
// plain flags, arrays of them for slice flags (an environment variable
// gives a slice as comma-separated values). A key that is no flag of any
// command is an error, so a typo does not go unnoticed; a missing file is
// no error.
func bindFlags(cmd *cobra.Command, getenv func(string) string) error {
	flags := cmd.Flags()
	skip := map[string]bool{"help": true}
	if f := flags.Lookup("datadir"); f != nil {
		skip["datadir"] = true
		if !f.Changed {
			if v := getenv(envName("datadir")); v != "" {
				if err := flags.Set("datadir", v); err != nil {
					return fmt.Errorf("%s: %w", envName("datadir"), err)
				}
			}
		}
	}
	var cfg map[string]json.RawMessage
	if dir, err := flags.GetString("datadir"); err == nil && dir != "" {
		path := filepath.Join(dir, configFile)
		if cfg, err = readConfig(path); err != nil {
			return err
		}
		if err := checkKeys(path, cfg, cmd.Root()); err != nil {
			return err
		}
	}
	var errs []error
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed || skip[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := flags.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
			return
		}
		if raw, ok := cfg[f.Name]; ok {
			if err := setFromJSON(flags, f, raw); err != nil {
				errs = append(errs, fmt.Errorf("%s key %q: %w", configFile, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

func readConfig(path string) (map[string]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: want a flat JSON object of flag names: %w", path, err)
	}
	return cfg, nil
}

// checkKeys refuses keys that are no flag of any command under root.
func checkKeys(path string, cfg map[string]json.RawMessage, root *cobra.Command) error {
	known := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	var unknown []string
	for k := range cfg {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("%s: unknown key(s) %s: keys are flag names (see ipsx <command> --help)", path, strings.Join(unknown, ", "))
}

// setFromJSON sets a flag from a config value.
func setFromJSON(flags *pflag.FlagSet, f *pflag.Flag, raw json.RawMessage) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		return nil // null: as if absent
	case []any:
		sv, ok := f.Value.(pflag.SliceValue)
		if !ok {
			return fmt.Errorf("an array, but --%s takes one value", f.Name)
		}
		items := make([]string, len(v))
		for i, x := range v {
			s, err := scalar(x)
			if err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
			items[i] = s
		}
		if err := sv.Replace(items); err != nil {
			return err
		}
		f.Changed = true
		return nil
	default:
		s, err := scalar(v)
		if err != nil {
			return err
		}
		return flags.Set(f.Name, s)
	}
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %T", v)
}
