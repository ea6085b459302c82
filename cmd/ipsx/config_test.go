package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// probe is a command tree with flags of every kind, that records what it
// ran with.
type probe struct {
	api, datadir, name string
	n                  uint32
	on                 bool
	list               []string
	dur                seconds
}

func probeRoot(p *probe, env map[string]string) *cobra.Command {
	root := &cobra.Command{
		Use:           "ipsx",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return bindFlags(cmd, func(k string) string { return env[k] })
		},
	}
	root.PersistentFlags().StringVar(&p.datadir, "datadir", "/nonexistent", "")
	root.PersistentFlags().StringVar(&p.api, "api", "127.0.0.1:7480", "")
	sub := &cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { return nil }}
	f := sub.Flags()
	f.StringVar(&p.name, "password-file", "", "")
	f.Uint32Var(&p.n, "ips", 1, "")
	f.BoolVar(&p.on, "dht-server", false, "")
	f.StringSliceVar(&p.list, "bootstrap", []string{"default"}, "")
	f.Var(&p.dur, "min-duration", "")
	other := &cobra.Command{Use: "other", RunE: func(*cobra.Command, []string) error { return nil }}
	other.Flags().String("only-here", "", "")
	root.AddCommand(sub, other)
	return root
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"api": "IPSX_API", "password-file": "IPSX_PASSWORD_FILE", "datadir": "IPSX_DATADIR"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBindFlags(t *testing.T) {
	cfg := `{"api": "10.0.0.1:1", "password-file": "/cfg/pw", "ips": 7, "dht-server": true,
		"bootstrap": ["/ip4/1.2.3.4/tcp/1", "/ip4/5.6.7.8/tcp/1"], "min-duration": 90, "only-here": "x"}`
	dir := writeConfig(t, cfg)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want probe
	}{
		{
			name: "defaults without config",
			args: []string{"sub"},
			env:  map[string]string{"IPSX_DATADIR": t.TempDir()},
			want: probe{api: "127.0.0.1:7480", n: 1, list: []string{"default"}},
		},
		{
			name: "config file",
			args: []string{"sub"},
			env:  map[string]string{"IPSX_DATADIR": dir},
			want: probe{api: "10.0.0.1:1", name: "/cfg/pw", n: 7, on: true, list: []string{"/ip4/1.2.3.4/tcp/1", "/ip4/5.6.7.8/tcp/1"}, dur: 90},
		},
		{
			name: "env beats config",
			args: []string{"sub"},
			env: map[string]string{"IPSX_DATADIR": dir, "IPSX_API": "env:1", "IPSX_PASSWORD_FILE": "/env/pw",
				"IPSX_IPS": "9", "IPSX_DHT_SERVER": "false", "IPSX_BOOTSTRAP": "a,b", "IPSX_MIN_DURATION": "2m"},
			want: probe{api: "env:1", name: "/env/pw", n: 9, on: false, list: []string{"a", "b"}, dur: 120},
		},
		{
			name: "flags beat env and config",
			args: []string{"sub", "--datadir", dir, "--api", "flag:1", "--ips", "3", "--bootstrap", "c", "--min-duration", "5s"},
			env:  map[string]string{"IPSX_API": "env:1", "IPSX_IPS": "9", "IPSX_DATADIR": "/elsewhere"},
			want: probe{api: "flag:1", name: "/cfg/pw", n: 3, on: true, list: []string{"c"}, dur: 5},
		},
		{
			name: "empty env is unset",
			args: []string{"sub"},
			env:  map[string]string{"IPSX_DATADIR": dir, "IPSX_API": ""},
			want: probe{api: "10.0.0.1:1", name: "/cfg/pw", n: 7, on: true, list: []string{"/ip4/1.2.3.4/tcp/1", "/ip4/5.6.7.8/tcp/1"}, dur: 90},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p probe
			root := probeRoot(&p, tc.env)
			root.SetArgs(tc.args)
			if err := root.ExecuteContext(t.Context()); err != nil {
				t.Fatal(err)
			}
			p.datadir = ""
			if p.api != tc.want.api || p.name != tc.want.name || p.n != tc.want.n || p.on != tc.want.on ||
				strings.Join(p.list, "|") != strings.Join(tc.want.list, "|") || p.dur != tc.want.dur {
				t.Fatalf("got %+v\nwant %+v", p, tc.want)
			}
		})
	}
}

func TestBindFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		env       map[string]string
		want      []string
	}{
		{"unknown key", `{"apii": "x"}`, nil, []string{"config.json", "apii", "unknown"}},
		{"not an object", `["api"]`, nil, []string{"config.json", "flat JSON object"}},
		{"bad number", `{"ips": -1}`, nil, []string{`"ips"`}},
		{"array for scalar", `{"api": ["a"]}`, nil, []string{`"api"`, "one value"}},
		{"object value", `{"bootstrap": [{"a": 1}]}`, nil, []string{`"bootstrap"`, "item 0"}},
		{"bad env", `{}`, map[string]string{"IPSX_IPS": "many"}, []string{"IPSX_IPS"}},
		{"bad env bool", `{}`, map[string]string{"IPSX_DHT_SERVER": "maybe"}, []string{"IPSX_DHT_SERVER"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"IPSX_DATADIR": writeConfig(t, tc.cfg)}
			for k, v := range tc.env {
				env[k] = v
			}
			var p probe
			root := probeRoot(&p, env)
			root.SetArgs([]string{"sub"})
			err := root.ExecuteContext(t.Context())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

// TestRequiredFlagFromConfig: a required flag set in the config file or
// the environment counts as set.
func TestRequiredFlagFromConfig(t *testing.T) {
	c := newCLI(t)
	if err := os.WriteFile(filepath.Join(c.datadir, "config.json"), []byte(`{"price-per-hour": "777"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["IPSX_COUNTRY"] = "FR"
	out := c.ok("offer", "create")
	if !strings.Contains(out, "FR") || !strings.Contains(out, "777") {
		t.Fatalf("offer create from config and env:\n%s", out)
	}
}
