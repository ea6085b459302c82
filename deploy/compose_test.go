package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/sdk"
)

// The fault tests run the compose testnet of compose.yaml in Docker, as
// `make compose-up` does, under a project name of their own (and their
// own subnet and host ports), and break it from outside: docker kill,
// docker network disconnect, docker restart, a container with a bad
// config. They share one testnet, in order, each subtest starting from a
// working route and leaving one; each prints its time to recover
// ("recovered: ..."). Teardown (containers, networks, volumes) runs in
// t.Cleanup, after the failing services' logs are printed.

func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("docker-compose testnet: not in -short")
	}
	requireDocker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 14*time.Minute)
	defer cancel()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	project := "ipsxtest" + hex.EncodeToString(b)
	// An image of this run's own (apart from a user's ipsx:dev, and from
	// another tree's test running beside this one), removed at the end.
	image, chainImage := "ipsx:"+project, "ipsx-devchain:"+project
	t.Cleanup(func() { _, _ = docker(context.Background(), "rmi", "-f", image, chainImage) })
	buildImage(t, ctx, image, chainImage)
	// The node image has no dev chain, and says so.
	if out, err := docker(ctx, "run", "--rm", "--network", "none", image, "devchain"); err == nil || !strings.Contains(out, "built without the dev chain") {
		t.Fatalf("devchain in the node image: %v: %s", err, out)
	}
	tn := up(t, ctx, project, image, chainImage)

	start := time.Now()
	ip := tn.awaitRoute(ctx, "country-DE", 3*time.Minute, nil)
	t.Logf("testnet up: the first request through the requester's proxy left from %s after %v", ip, time.Since(start).Round(time.Millisecond))

	// Each fault leaves a working DE route behind; one that fails still
	// lets the others run.
	t.Run("e-bad-config", func(t *testing.T) { tn.badConfig(t, ctx) })
	t.Run("c-restart-requester", func(t *testing.T) { tn.restartRequester(t, ctx) })
	t.Run("a-kill-provider", func(t *testing.T) { tn.killProvider(t, ctx) })
	t.Run("b-partition", func(t *testing.T) { tn.partition(t, ctx) })
	t.Run("d-restart-all", func(t *testing.T) { tn.restartAll(t, ctx) })
}

// requireDocker skips the test, naming why, when no Docker engine or no
// compose tool is there.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker command: the compose fault tests need a Docker engine")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine reachable (docker info: %v: %s): the compose fault tests need one", err, bytes.TrimSpace(out))
	}
	if len(composeCmd()) == 0 {
		t.Skip("neither docker-compose nor the docker compose plugin is installed")
	}
}

// composeCmd is what the Makefile's COMPOSE is: docker-compose if
// installed, else docker compose.
func composeCmd() []string {
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	return nil
}

func repoRoot() string {
	root, _ := filepath.Abs("..") // go test runs in the package's directory
	return root
}

// buildImage runs make image, as a user does: a clean clone gets its
// images, the node's and the dev chain's.
func buildImage(t *testing.T, ctx context.Context, image, chainImage string) {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", repoRoot(), "image", "IMAGE="+image, "CHAIN_IMAGE="+chainImage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image (%v):\n%s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
}

// testnet is one compose project.
type testnet struct {
	root    *testing.T // TestCompose's: teardown logs to it
	t       *testing.T // the running subtest's
	project string
	subnet  string
	env     []string
	socks   string // host address of the requester's SOCKS5 proxy
	chain   string // host URL of the dev chain
	extra   []string
}

func up(t *testing.T, ctx context.Context, project, image, chainImage string) *testnet {
	t.Helper()
	tn := &testnet{root: t, t: t, project: project}
	ports := freePorts(t, 4)
	tn.socks, tn.chain = "127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[3]
	t.Cleanup(func() { tn.down() })
	var err error
	for try := 0; try < 5; try++ {
		tn.subnet = fmt.Sprintf("10.%d.%d.0/24", 210+mathrand.IntN(40), mathrand.IntN(256))
		tn.env = []string{"IPSX_IMAGE=" + image, "IPSX_CHAIN_IMAGE=" + chainImage, "IPSX_SUBNET=" + tn.subnet,
			"IPSX_SOCKS_PORT=" + ports[0], "IPSX_HTTP_PORT=" + ports[1], "IPSX_API_PORT=" + ports[2], "IPSX_CHAIN_PORT=" + ports[3]}
		var out string
		out, err = tn.compose(ctx, "up", "-d")
		if err == nil {
			return tn
		}
		if !strings.Contains(out, "overlap") {
			t.Fatalf("compose up: %v\n%s", err, out)
		}
		_, _ = tn.compose(ctx, "down", "-v", "--remove-orphans")
	}
	t.Fatalf("compose up: no free subnet: %v", err)
	return nil
}

// down prints the logs of the services on failure, then removes the
// project's containers, networks and volumes.
func (tn *testnet) down() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t := tn.root
	if t.Failed() {
		ps, _ := tn.compose(ctx, "ps")
		t.Logf("compose ps:\n%s", ps)
		for _, svc := range tn.failing(ctx) {
			logs, _ := tn.compose(ctx, "logs", "--no-color", "--tail", "80", svc)
			t.Logf("compose logs %s:\n%s", svc, logs)
		}
	}
	if out, err := tn.compose(ctx, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		t.Errorf("compose down: %v\n%s", err, out)
	}
}

// failing names the services with a container that is not running and
// healthy; every service when none is (the failure lies elsewhere).
func (tn *testnet) failing(ctx context.Context) []string {
	all := []string{"devchain", "bootstrap", "provider", "provider-us", "requester", "target"}
	var bad []string
	for _, svc := range all {
		for _, c := range tn.containers(ctx, svc) {
			st := tn.inspect(ctx, c, "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}")
			if !strings.HasPrefix(st, "running") || strings.Contains(st, "unhealthy") {
				bad = append(bad, svc)
				break
			}
		}
	}
	if len(bad) == 0 {
		return all
	}
	return bad
}

func (tn *testnet) compose(ctx context.Context, args ...string) (string, error) {
	c := composeCmd()
	full := append(append(c[1:], "-f", filepath.Join(repoRoot(), "deploy", "compose.yaml")), tn.extra...)
	full = append(append(full, "-p", tn.project), args...)
	cmd := exec.CommandContext(ctx, c[0], full...)
	cmd.Env = append(os.Environ(), tn.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// containers lists a service's container ids (with stopped ones), in the
// order of their replica number.
func (tn *testnet) containers(ctx context.Context, svc string) []string {
	out, err := docker(ctx, "ps", "-a", "--filter", "label=com.docker.compose.project="+tn.project,
		"--filter", "label=com.docker.compose.service="+svc, "--format", `{{.Label "com.docker.compose.container-number"}} {{.ID}}`)
	if err != nil {
		return nil // callers poll or report what they miss
	}
	type c struct {
		n  int
		id string
	}
	var cs []c
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var x c
		if _, err := fmt.Sscanf(l, "%d %s", &x.n, &x.id); err == nil {
			cs = append(cs, x)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].n < cs[j].n })
	var ids []string
	for _, x := range cs {
		ids = append(ids, x.id)
	}
	return ids
}

func (tn *testnet) inspect(ctx context.Context, id, format string) string {
	out, _ := docker(ctx, "inspect", "-f", format, id)
	return strings.TrimSpace(out)
}

// nodes are the containers running ipsx node, by name: bootstrap,
// provider-1, provider-2, provider-us-1, requester.
func (tn *testnet) nodes(ctx context.Context) map[string]string {
	m := map[string]string{}
	for _, svc := range []string{"bootstrap", "provider", "provider-us", "requester"} {
		for i, id := range tn.containers(ctx, svc) {
			name := svc
			if svc == "provider" || svc == "provider-us" {
				name = fmt.Sprintf("%s-%d", svc, i+1)
			}
			m[name] = id
		}
	}
	return m
}

func (tn *testnet) requester(ctx context.Context) string {
	ids := tn.containers(ctx, "requester")
	if len(ids) != 1 {
		tn.t.Fatalf("%d requester containers", len(ids))
	}
	return ids[0]
}

// ipsx runs `ipsx --json args...` in a node's container, against its API.
func ipsx(ctx context.Context, id string, out any, args ...string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := docker(cctx, append([]string{"exec", id, "/ipsx", "--json"}, args...)...)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		return fmt.Errorf("ipsx %s: %q: %w", strings.Join(args, " "), s, err)
	}
	return nil
}

// containerIP is a container's address on the compose network.
func (tn *testnet) containerIP(ctx context.Context, id string) string {
	return tn.inspect(ctx, id, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
}

// byIP finds the node container with the address ip.
func (tn *testnet) byIP(ctx context.Context, ip string) (name, id string) {
	for n, c := range tn.nodes(ctx) {
		if tn.containerIP(ctx, c) == ip {
			return n, c
		}
	}
	return "", ""
}

// get fetches http://target/ through the requester's SOCKS5 proxy with
// the route as username (as the README's curl does) and returns the IP
// the target saw.
func (tn *testnet) get(ctx context.Context, route string) (string, error) {
	var pw string
	pwOut, err := docker(ctx, "exec", tn.requester(ctx), "/ipsx", "proxy", "password")
	if err != nil {
		return "", err
	}
	pw = strings.TrimSpace(pwOut)
	pu := &url.URL{Scheme: "socks5", Host: tn.socks, User: url.UserPassword(route, pw)}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}, Timeout: 75 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://target/", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	ip := strings.TrimSpace(string(b))
	if net.ParseIP(ip) == nil {
		return "", fmt.Errorf("the target answered %q, not an IP", b)
	}
	return ip, nil
}

// awaitRoute polls the route until a request goes through it, from a
// provider's container IP that ok accepts (nil: any), and returns the IP.
func (tn *testnet) awaitRoute(ctx context.Context, route string, within time.Duration, ok func(ip string) error) string {
	tn.t.Helper()
	var ip string
	tn.await(ctx, "a request through "+route, within, func() error {
		var err error
		if ip, err = tn.get(ctx, route); err != nil {
			return err
		}
		_, _, found := strings.Cut(ip, ".")
		if name, _ := tn.byIP(ctx, ip); !found || !strings.HasPrefix(name, "provider") {
			return fmt.Errorf("the target saw %s, no provider container's address", ip)
		}
		if ok != nil {
			return ok(ip)
		}
		return nil
	})
	return ip
}

// await polls cond every half second until it holds, failing the test
// with cond's last reason after within.
func (tn *testnet) await(ctx context.Context, what string, within time.Duration, cond func() error) {
	tn.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		last := cond()
		if last == nil {
			return
		}
		select {
		case <-ctx.Done():
			tn.t.Fatalf("waiting %v for %s: %v", within, what, last)
		case <-tick.C:
		}
	}
}

func (tn *testnet) deals(ctx context.Context, id string) ([]sdk.Deal, error) {
	var ds []sdk.Deal
	err := ipsx(ctx, id, &ds, "deals", "list")
	return ds, err
}

func finalStatus(s string) bool {
	switch s {
	case "settled", "refunded", "cancelled", "rejected", "expired":
		return true
	}
	return false
}

// activeDeal is the requester's active deal whose provider exits from ip.
func (tn *testnet) activeDeal(ctx context.Context, ip string) (sdk.Deal, error) {
	_, prov := tn.byIP(ctx, ip)
	if prov == "" {
		return sdk.Deal{}, fmt.Errorf("no node has the address %s", ip)
	}
	var st sdk.Status
	if err := ipsx(ctx, prov, &st, "status"); err != nil {
		return sdk.Deal{}, err
	}
	ds, err := tn.deals(ctx, tn.requester(ctx))
	if err != nil {
		return sdk.Deal{}, err
	}
	for _, d := range ds {
		if d.Status == "active" && strings.EqualFold(d.Provider, st.Address) {
			return d, nil
		}
	}
	return sdk.Deal{}, fmt.Errorf("the requester has no active deal with %s (%s): %s", ip, st.Address, brief(ds))
}

func brief(ds []sdk.Deal) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.10s %s paid=%s settled=%s", d.ID, d.Status, d.Paid, d.Settled))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func amount(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return new(big.Int)
	}
	return v
}

// (e) A node with a bad config exits non-zero, and its logs say why.
func (tn *testnet) badConfig(t *testing.T, ctx context.Context) {
	tn.t = t
	override := filepath.Join(t.TempDir(), "bad.yaml")
	// Two nodes: one with a proxy on a public address without
	// --allow-public-listen (refused by the node once it has its chain
	// and key), one with a provider country that is no ISO code.
	if err := os.WriteFile(override, []byte(`version: "2.4"
services:
  bad-listen:
    image: ${IPSX_IMAGE:-ipsx:dev}
    restart: "no"
    environment:
      IPSX_PASSWORD: pw
      IPSX_SCRYPT: light
      IPSX_API: 0.0.0.0:7480
    command: ["compose-node", "--faucet", "http://devchain:8545", "--role", "requester"]
  bad-country:
    image: ${IPSX_IMAGE:-ipsx:dev}
    restart: "no"
    environment:
      IPSX_PASSWORD: pw
    command: ["compose-node", "--faucet", "http://devchain:8545", "--role", "provider", "--country", "Germany"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tn.extra = []string{"-f", override}
	defer func() { tn.extra = nil }()
	// Their containers and anonymous volumes go with this subtest: the
	// teardown's compose down does not know the override's services.
	rm := func() (string, error) {
		tn.extra = []string{"-f", override}
		defer func() { tn.extra = nil }()
		return tn.compose(context.WithoutCancel(ctx), "rm", "-f", "-s", "-v", "bad-listen", "bad-country")
	}
	t.Cleanup(func() { _, _ = rm() })
	start := time.Now()
	if out, err := tn.compose(ctx, "up", "-d", "--no-deps", "bad-listen", "bad-country"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	for svc, want := range map[string]string{
		"bad-listen":  "--api 0.0.0.0:7480: anyone who reaches it could use the node",
		"bad-country": `--country "Germany": a provider needs an ISO 3166-1 alpha-2 country code`,
	} {
		tn.await(ctx, svc+" to exit", 2*time.Minute, func() error {
			ids := tn.containers(ctx, svc)
			if len(ids) != 1 {
				return fmt.Errorf("%d containers", len(ids))
			}
			if st := tn.inspect(ctx, ids[0], "{{.State.Status}} {{.State.ExitCode}}"); st != "exited 1" {
				return fmt.Errorf("state %q, want exited 1", st)
			}
			return nil
		})
		logs, err := tn.compose(ctx, "logs", "--no-color", svc)
		if err != nil || !strings.Contains(logs, want) {
			t.Errorf("compose logs %s: %v\n%s\nwant it to say %q", svc, err, logs, want)
		}
	}
	t.Logf("recovered: bad configs exited 1 with their reason in the logs after %v", time.Since(start).Round(time.Millisecond))
	if out, err := rm(); err != nil {
		t.Errorf("compose rm: %v\n%s", err, out)
	}
}

// (c) Restarting the requester's container resumes its open deal: the
// route keeps leaving from the same provider under the same deal, and
// the deal's vouchers go on.
func (tn *testnet) restartRequester(t *testing.T, ctx context.Context) {
	tn.t = t
	// Auto-bought deals last a minute: restart the requester while its
	// deal has half a minute left, so that it still runs after the restart.
	var (
		ip     string
		before sdk.Deal
	)
	tn.await(ctx, "an active DE deal with 35 s left", 3*time.Minute, func() (err error) {
		if ip, err = tn.get(ctx, "country-DE"); err != nil {
			return err
		}
		if before, err = tn.activeDeal(ctx, ip); err != nil {
			return err
		}
		if left := time.Until(before.Deadline); left < 35*time.Second {
			return fmt.Errorf("deal %.10s has only %v left", before.ID, left)
		}
		return nil
	})
	if _, err := docker(ctx, "restart", "-t", "10", tn.requester(ctx)); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	tn.awaitRoute(ctx, "country-DE", 3*time.Minute, func(got string) error {
		if got != ip {
			return fmt.Errorf("the route left from %s, not %s (its deal's provider) after the restart", got, ip)
		}
		return nil
	})
	routed := time.Since(restarted)
	tn.await(ctx, "the deal's vouchers to go on", 2*time.Minute, func() error {
		d, err := tn.activeDeal(ctx, ip)
		if err != nil {
			return err
		}
		if d.ID != before.ID {
			return fmt.Errorf("deal %s is active with the provider, not the resumed %s", d.ID, before.ID)
		}
		if amount(d.Paid).Cmp(amount(before.Paid)) <= 0 {
			return fmt.Errorf("deal %.10s paid %s, no more than %s before the restart", d.ID, d.Paid, before.Paid)
		}
		return nil
	})
	t.Logf("recovered: requester restarted; deal %.10s resumed, the route served again after %v and a new voucher after %v",
		before.ID, routed.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
}

// (a) docker kill of the provider serving the route: auto-buy moves the
// route to another provider, and the killed deal ends (settled once the
// provider is back, or refunded).
func (tn *testnet) killProvider(t *testing.T, ctx context.Context) {
	tn.t = t
	// Mid-deal: with at least 35 s of the deal's minute left, so that the
	// route moves because of the kill, not because the deal ran out.
	var (
		ip     string
		victim sdk.Deal
	)
	tn.await(ctx, "an active DE deal with 35 s left", 3*time.Minute, func() (err error) {
		if ip, err = tn.get(ctx, "country-DE"); err != nil {
			return err
		}
		if victim, err = tn.activeDeal(ctx, ip); err != nil {
			return err
		}
		if left := time.Until(victim.Deadline); left < 35*time.Second {
			return fmt.Errorf("deal %.10s has only %v left", victim.ID, left)
		}
		return nil
	})
	name, id := tn.byIP(ctx, ip)
	if _, err := docker(ctx, "kill", id); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The provider comes back even when this test fails: the next ones
	// need it (starting a running container does nothing).
	defer func() { _, _ = docker(context.WithoutCancel(ctx), "start", id) }()
	other := tn.awaitRoute(ctx, "country-DE", 3*time.Minute, func(got string) error {
		if got == ip {
			return fmt.Errorf("the route still leaves from the killed %s", ip)
		}
		return nil
	})
	moved := time.Since(killed)
	if time.Now().After(victim.Deadline) {
		// The requester sets aside a deal whose provider does not answer:
		// the route must move before the killed deal would have ended.
		t.Errorf("the route moved %v after the kill, only once the killed deal was over", moved)
	}
	if _, err := docker(ctx, "start", id); err != nil {
		t.Fatal(err)
	}
	var end sdk.Deal
	tn.await(ctx, "the killed deal to end", 4*time.Minute, func() error {
		ds, err := tn.deals(ctx, tn.requester(ctx))
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.ID == victim.ID {
				end = d
				if d.Status == "settled" || d.Status == "refunded" {
					return nil
				}
				return fmt.Errorf("deal %.10s is %s", d.ID, d.Status)
			}
		}
		return fmt.Errorf("the requester lost deal %s", victim.ID)
	})
	if end.Status == "settled" && amount(end.Settled).Cmp(amount(end.Paid)) > 0 {
		t.Errorf("deal %.10s settled for %s, more than the requester's last voucher %s", end.ID, end.Settled, end.Paid)
	}
	tn.await(ctx, "the restarted provider to be healthy", 3*time.Minute, func() error {
		if st := tn.inspect(ctx, id, "{{.State.Health.Status}}"); st != "healthy" {
			return fmt.Errorf("health %s", st)
		}
		return nil
	})
	t.Logf("recovered: %s killed mid-deal (%v of its deal left); the route moved to %s after %v; deal %.10s ended %s (settled %s of %s paid) %v after the kill",
		name, victim.Deadline.Sub(killed).Round(time.Second), other, moved.Round(time.Millisecond), end.ID, end.Status, end.Settled, end.Paid, time.Since(killed).Round(time.Millisecond))
}

// book is the ids of the live orders a node holds in the DE and US
// shards, sorted.
func book(ctx context.Context, id string) ([]string, error) {
	var ids []string
	for _, cc := range []string{"DE", "US"} {
		var orders []struct {
			ID string `json:"id"`
		}
		if err := ipsx(ctx, id, &orders, "book", "--country", cc); err != nil {
			return nil, err
		}
		for _, o := range orders {
			ids = append(ids, o.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// (b) A provider cut off the compose network for 30 s: offers made on
// either side meanwhile reach the other, and every node ends with the
// same book.
func (tn *testnet) partition(t *testing.T, ctx context.Context) {
	tn.t = t
	network := tn.project + "_default"
	if out, err := docker(ctx, "network", "inspect", "-f", "{{.Name}}", network); err != nil {
		t.Fatalf("the compose network: %v %s", err, out)
	}
	ns := tn.nodes(ctx)
	cut, other := ns["provider-us-1"], ns["provider-1"]
	if cut == "" || other == "" {
		t.Fatalf("nodes %v: want provider-us-1 and provider-1", ns)
	}
	if _, err := docker(ctx, "network", "disconnect", network, cut); err != nil {
		t.Fatal(err)
	}
	disconnected := time.Now()
	reconnect := func() {
		if _, err := docker(context.WithoutCancel(ctx), "network", "connect", network, cut); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Error(err)
		}
	}
	defer reconnect()
	// An offer on each side of the cut.
	var cutOffer, otherOffer struct {
		ID string `json:"id"`
	}
	offer := []string{"offer", "create", "--ip-type", "datacenter", "--ips", "1",
		"--price-per-hour", "2000000000000000", "--price-per-gb", "10000000000000000", "--min-duration", "5s", "--max-duration", "1h"}
	if err := ipsx(ctx, cut, &cutOffer, append(offer, "--country", "US")...); err != nil {
		t.Fatal(err)
	}
	if err := ipsx(ctx, other, &otherOffer, append(offer, "--country", "DE")...); err != nil {
		t.Fatal(err)
	}
	// The partition lasts 30 s by the definition: a timer, not a
	// guess at how long something takes.
	select {
	case <-time.After(30*time.Second - time.Since(disconnected)):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	reconnect()
	reconnected := time.Now()
	var last map[string][]string
	tn.await(ctx, "the book to converge on every node", 3*time.Minute, func() error {
		last = map[string][]string{}
		var ref []string
		for name, id := range tn.nodes(ctx) {
			ids, err := book(ctx, id)
			if err != nil {
				return err
			}
			last[name] = ids
			for _, want := range []string{cutOffer.ID, otherOffer.ID} {
				if !slices.Contains(ids, want) {
					return fmt.Errorf("%s lacks offer %.10s", name, want)
				}
			}
			if ref == nil {
				ref = ids
			} else if !slices.Equal(ref, ids) {
				return fmt.Errorf("the books differ: %v", last)
			}
		}
		return nil
	})
	t.Logf("recovered: provider-us-1 cut off for %v; every node holds the same %d orders %v after reconnecting",
		reconnected.Sub(disconnected).Round(time.Millisecond), len(last["requester"]), time.Since(reconnected).Round(time.Millisecond))
	tn.awaitRoute(ctx, "country-US", 3*time.Minute, nil)
}

// (d) Every node restarted in turn: no deal is lost, and once the deals
// are closed and over, the token sums of all participants, escrow and
// treasury are what they were, and nothing stays reserved.
func (tn *testnet) restartAll(t *testing.T, ctx context.Context) {
	tn.t = t
	tn.awaitRoute(ctx, "country-DE", 3*time.Minute, nil)
	tn.awaitRoute(ctx, "country-US", 3*time.Minute, nil)
	b, err := chain.Dial(ctx, tn.chain)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var st sdk.Status
	if err := ipsx(ctx, tn.requester(ctx), &st, "status"); err != nil {
		t.Fatal(err)
	}
	contracts, err := chain.LoadContracts(ctx, b, common.HexToAddress(st.Escrow))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := chain.NewClient(b, contracts, chain.DevKey(1))
	if err != nil {
		t.Fatal(err)
	}
	ns := tn.nodes(ctx)
	addrs := map[string]common.Address{}
	for name, id := range ns {
		var s sdk.Status
		if err := ipsx(ctx, id, &s, "status"); err != nil {
			t.Fatal(err)
		}
		addrs[name] = common.HexToAddress(s.Address)
	}
	treasury := crypto.PubkeyToAddress(chain.DevKey(0).PublicKey) // the dev chain's deployer
	sum := func() *big.Int {
		total := new(big.Int)
		for _, a := range append(slices.Collect(maps.Values(addrs)), treasury, contracts.Escrow) {
			bal, err := reader.Balances(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			total.Add(total, bal.Token)
		}
		return total
	}
	before := sum()
	dealsBefore := map[string][]sdk.Deal{}
	for name, id := range ns {
		ds, err := tn.deals(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		dealsBefore[name] = ds
	}
	order := []string{"bootstrap", "provider-1", "provider-2", "provider-us-1", "requester"}
	start := time.Now()
	for _, name := range order {
		id := ns[name]
		if _, err := docker(ctx, "restart", "-t", "10", id); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		tn.await(ctx, name+" to be healthy after its restart", 3*time.Minute, func() error {
			if st := tn.inspect(ctx, id, "{{.State.Health.Status}}"); st != "healthy" {
				return fmt.Errorf("health %s", st)
			}
			return nil
		})
		t.Logf("%s restarted, healthy after %v", name, time.Since(at).Round(time.Millisecond))
	}
	tn.awaitRoute(ctx, "country-DE", 3*time.Minute, nil)
	t.Logf("recovered: every node restarted in turn; the DE route served again %v after the first restart", time.Since(start).Round(time.Millisecond))
	for name, ds := range dealsBefore {
		after, err := tn.deals(ctx, ns[name])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if !slices.ContainsFunc(after, func(x sdk.Deal) bool { return x.ID == d.ID }) {
				t.Errorf("%s lost deal %s (%s) in the restarts", name, d.ID, d.Status)
			}
		}
	}
	// End every deal: the requester closes its open ones.
	req := ns["requester"]
	closing := time.Now()
	tn.await(ctx, "every deal on every node to end", 4*time.Minute, func() error {
		for name, id := range ns {
			ds, err := tn.deals(ctx, id)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if finalStatus(d.Status) {
					continue
				}
				if id == req && d.Status == "active" {
					if err := ipsx(ctx, req, nil, "deals", "close", d.ID); err != nil {
						return fmt.Errorf("close %.10s: %w", d.ID, err)
					}
				}
				return fmt.Errorf("%s: deal %.10s is %s", name, d.ID, d.Status)
			}
		}
		return nil
	})
	t.Logf("every deal ended %v after closing", time.Since(closing).Round(time.Millisecond))
	if after := sum(); after.Cmp(before) != 0 {
		t.Errorf("token sums of the nodes, escrow and treasury: %s before the restarts, %s after the deals ended", before, after)
	}
	for name, id := range ns {
		var w sdk.Wallet
		if err := ipsx(ctx, id, &w, "wallet", "balance"); err != nil {
			t.Fatal(err)
		}
		if w.Reserved != "0" {
			t.Errorf("%s has %s reserved in the escrow after every deal ended", name, w.Reserved)
		}
	}
}

// freePorts picks n free loopback ports below the ephemeral range, so
// that nothing else takes them while the testnet runs.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	for i := 0; i < 1000 && len(ports) < n; i++ {
		p := fmt.Sprint(20000 + mathrand.IntN(12000))
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil || slices.Contains(ports, p) {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatal("no free ports below the ephemeral range")
	}
	return ports
}
