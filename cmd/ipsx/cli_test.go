package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"go.uber.org/goleak"
)

// TestMain lets the test binary double as the ipsx command, so tests can
// run `ipsx devchain` and `ipsx node` as separate processes: with
// IPSX_TEST_AS_CLI=1 it runs the CLI on the arguments after "--".
func TestMain(m *testing.M) {
	if role := os.Getenv("IPSX_TEST_NETNS_ROLE"); role != "" {
		os.Exit(netnsRole(role))
	}
	if os.Getenv("IPSX_TEST_AS_CLI") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"ipsx"}, os.Args[i+1:]...)
				break
			}
		}
		if err := run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// As in node's tests: go-ethereum's process-wide sender cacher, and the
	// pool drainer of an in-process dev chain's p2p database, which exits
	// on its next tick.
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/ethereum/go-ethereum/core.(*txSenderCacher).cache"),
		goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"),
	)
}

// cli runs ipsx commands in-process against one test node.
type cli struct {
	t       *testing.T
	b       *apitest.Backend
	env     map[string]string
	datadir string
	app     func() *app
}

func newCLI(t *testing.T) *cli {
	b := apitest.NewBackend(t)
	ts, token := b.Server(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, b: b, datadir: dir, env: map[string]string{
		"IPSX_API":     strings.TrimPrefix(ts.URL, "http://"),
		"IPSX_DATADIR": dir,
	}}
	c.app = func() *app {
		return &app{getenv: func(k string) string { return c.env[k] }, home: t.TempDir(), httpClient: ts.Client()}
	}
	return c
}

func (c *cli) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	root := newRoot(c.app())
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(""))
	err = root.ExecuteContext(c.t.Context())
	return out.String(), errb.String(), err
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, stderr, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("ipsx %s: %v (stderr %s)", strings.Join(args, " "), err, stderr)
	}
	return out
}

func TestOfferCreateAndBook(t *testing.T) {
	c := newCLI(t)
	out := c.ok("offer", "create", "--country", "de", "--ip-type", "mobile", "--ips", "3",
		"--price-per-hour", "1500", "--price-per-gb", "20", "--min-duration", "30s", "--max-duration", "2h", "--bandwidth", "50")
	if !strings.HasPrefix(out, "created offer 0x") || !strings.Contains(out, "mobile") {
		t.Fatalf("offer create printed %q", out)
	}
	own, err := c.b.Orders(t.Context(), orderbook.Query{Maker: c.b.Maker()})
	if err != nil || len(own) != 1 {
		t.Fatalf("book holds %d own orders: %v", len(own), err)
	}
	o := own[0]
	if o.IPs != 3 || o.IPType != orderbook.IPMobile || o.MinDuration != 30 || o.MaxDuration != 7200 || o.Bandwidth != 50 || o.Location.Country != "DE" {
		t.Fatalf("offer %+v", o)
	}
	if !strings.Contains(out, o.ID().Hex()) {
		t.Fatalf("output lacks the id: %q", out)
	}

	// --json prints the wire form.
	out = c.ok("offer", "create", "--json", "--country", "DE", "--price-per-hour", "900")
	wire, err := orderbook.DecodeOrder([]byte(out))
	if err != nil || wire.PricePerHour.Int64() != 900 {
		t.Fatalf("--json output %q: %v", out, err)
	}

	c.ok("request", "create", "--country", "DE", "--duration", "1h", "--max-price-per-hour", "2000")
	foreign := apitest.Signed(t, apitest.Offer())
	if err := c.b.Import(t.Context(), foreign); err != nil {
		t.Fatal(err)
	}

	out = c.ok("book", "--country", "DE")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(out, foreign.ID().Hex()) {
		t.Fatalf("book:\n%s", out)
	}
	out = c.ok("book", "--country", "DE", "--kind", "request", "--json")
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("book --json: %q: %v", out, err)
	}
	if out := c.ok("book", "--country", "FR"); out != "no orders\n" {
		t.Fatalf("empty book: %q", out)
	}
	out = c.ok("offer", "list")
	if strings.Count(out, "\n") != 3 || strings.Contains(out, foreign.ID().Hex()) {
		t.Fatalf("offer list:\n%s", out)
	}
	out = c.ok("request", "list")
	if strings.Count(out, "\n") != 2 {
		t.Fatalf("request list:\n%s", out)
	}

	// show, cancel, import.
	out = c.ok("order", "show", o.ID().Hex())
	if !strings.Contains(out, "mobile") || !strings.Contains(out, c.b.Maker().Hex()) {
		t.Fatalf("order show:\n%s", out)
	}
	if out := c.ok("order", "cancel", o.ID().Hex()); out != "cancelled "+o.ID().Hex()+"\n" {
		t.Fatalf("cancel: %q", out)
	}
	other := apitest.Signed(t, apitest.Request())
	raw, _ := json.Marshal(other)
	file := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("order", "import", file); out != "imported request "+other.ID().Hex()+"\n" {
		t.Fatalf("import: %q", out)
	}
}

func TestImportStdin(t *testing.T) {
	c := newCLI(t)
	o := apitest.Signed(t, apitest.Offer())
	raw, _ := json.Marshal(o)
	root := newRoot(c.app())
	var out bytes.Buffer
	root.SetArgs([]string{"order", "import", "-"})
	root.SetOut(&out)
	root.SetIn(bytes.NewReader(raw))
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), o.ID().Hex()) {
		t.Fatalf("import -: %q", out.String())
	}
}

func TestStatus(t *testing.T) {
	c := newCLI(t)
	out := c.ok("status")
	for _, want := range []string{"address:", c.b.Maker().Hex(), "1337", "SHARD", "DE"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	var st sdk.Status
	if err := json.Unmarshal([]byte(c.ok("status", "--json")), &st); err != nil || st.Address != c.b.Maker().Hex() {
		t.Fatalf("status --json: %v", err)
	}
	if out := c.ok("version"); out != "ipsx dev\n" {
		t.Fatalf("version: %q", out)
	}
}

func TestErrorsPrintedClearly(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"bad country", nil, []string{"offer", "create", "--country", "XX", "--price-per-hour", "1"}, []string{"country", "HTTP 400", "unknown_country"}},
		{"bad price", nil, []string{"offer", "create", "--country", "DE", "--price-per-hour", "cheap"}, []string{"pricePerHour", "HTTP 400"}},
		{"missing required flag", nil, []string{"offer", "create", "--country", "DE"}, []string{"price-per-hour"}},
		{"bad duration", nil, []string{"request", "create", "--country", "DE", "--max-price-per-hour", "1", "--duration", "soon"}, []string{"--duration", "soon"}},
		{"not found", nil, []string{"order", "show", "0x" + strings.Repeat("11", 32)}, []string{"not found", "HTTP 404"}},
		{"bad id", nil, []string{"order", "cancel", "0x12"}, []string{"not an order id"}},
		{"bad kind", nil, []string{"book", "--country", "DE", "--kind", "bid"}, []string{"--kind"}},
		{"wrong token", map[string]string{"IPSX_TOKEN": "nope"}, []string{"status"}, []string{"refused the API token"}},
		{"no node", map[string]string{"IPSX_API": "127.0.0.1:1"}, []string{"status"}, []string{"cannot reach", "127.0.0.1:1"}},
		{"no token file", map[string]string{"IPSX_DATADIR": t.TempDir()}, []string{"status"}, []string{"no API token", "api.token"}},
		{"missing import file", nil, []string{"order", "import", "/nonexistent.json"}, []string{"read order"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := c.env
			c.env = map[string]string{}
			for k, v := range saved {
				c.env[k] = v
			}
			for k, v := range tc.env {
				c.env[k] = v
			}
			defer func() { c.env = saved }()
			_, _, err := c.run(tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestHelp checks that every command has --help and a short description.
func TestHelp(t *testing.T) {
	c := newCLI(t)
	root := newRoot(c.app())
	var names [][]string
	var visit func(prefix []string, cmd *cobraCmd)
	visit = func(prefix []string, cmd *cobraCmd) {
		for _, sub := range cmd.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			p := append(append([]string{}, prefix...), sub.Name())
			names = append(names, p)
			visit(p, sub)
		}
	}
	visit(nil, root)
	if len(names) < 12 {
		t.Fatalf("only %d commands: %v", len(names), names)
	}
	for _, n := range names {
		out := c.ok(append(n, "--help")...)
		if !strings.Contains(out, "Usage:") {
			t.Fatalf("ipsx %s --help:\n%s", strings.Join(n, " "), out)
		}
	}
}

// TestLogLevelCommand: ipsx log level shows the running node's level and
// changes it; a bad level is refused with the reason.
func TestLogLevelCommand(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("log", "level"); out != "log level: info\n" {
		t.Fatalf("log level: %q", out)
	}
	if out := c.ok("log", "level", "debug"); out != "log level: debug\n" {
		t.Fatalf("log level debug: %q", out)
	}
	if out := c.ok("log", "level", "--json"); !strings.Contains(out, `"level": "debug"`) {
		t.Fatalf("log level --json: %q", out)
	}
	if _, _, err := c.run("log", "level", "chatty"); err == nil || !strings.Contains(err.Error(), `level "chatty"`) {
		t.Fatalf("bad level: %v", err)
	}
}

// TestStatusShowsOps: ipsx status shows the listeners, the chain head,
// the sync state and the health.
func TestStatusShowsOps(t *testing.T) {
	c := newCLI(t)
	out := c.ok("status")
	for _, want := range []string{"chain head:", "no chain configured", "sync:", "1 of 1 shards synced", "health:", "ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	c.b.SetHealth(sdk.Health{Live: true, Checks: []sdk.HealthCheck{{Name: "chain", Detail: "unreachable"}}})
	if out := c.ok("status"); !strings.Contains(out, "NOT READY: chain (unreachable)") {
		t.Errorf("status of a node not ready:\n%s", out)
	}
}

// TestLogFormat: --log-format json writes one JSON object per line with
// the level held in the LevelVar (so the API can change it); an unknown
// format or level is refused.
func TestLogFormat(t *testing.T) {
	var buf bytes.Buffer
	var lv slog.LevelVar
	log, err := newLogger(&buf, "info", "json", &lv)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", "deal", "0x01")
	lv.Set(slog.LevelDebug)
	log.Debug("now shown")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines %q", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["msg"] != "shown" || rec["deal"] != "0x01" || rec["level"] != "INFO" {
		t.Fatalf("json line %q: %v", lines[0], err)
	}
	if _, err := newLogger(&buf, "info", "xml", &lv); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("xml: %v", err)
	}
	if _, err := newLogger(&buf, "loud", "text", &lv); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("loud: %v", err)
	}
}
