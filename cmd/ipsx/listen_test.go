package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/internal/netns"
	"github.com/ipsx/ipsx/sdk"
)

// TestPublicListen runs `ipsx node` in a network namespace the test
// creates, with an address that looks public and exists only there, and a
// second namespace as the outside world. A listen address other than
// loopback is refused without --allow-public-listen, and a public proxy
// without credentials even with it; with it, the node says where it
// listens, and from outside its HTTP proxy asks for the password and its
// /metrics for the token.
func TestPublicListen(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	n := netns.New(t)
	host, outside := n.Namespace("host"), n.Namespace("outside")
	pub := netip.MustParseAddr("11.79.0.1")
	n.Link(host, netip.PrefixFrom(pub, 24), outside, netip.MustParsePrefix("11.79.0.2/24"))

	// A dev chain in the host's namespace, on its loopback: the proxies run
	// only with deals, and deals need a chain.
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	chainCmd := host.Exec(cctx, os.Args[0], "-test.run=^$", "--", "devchain", "--http", "127.0.0.1:0")
	chainCmd.Env = append(os.Environ(), "IPSX_TEST_AS_CLI=1", "GORACE=atexit_sleep_ms=0")
	stdout, err := chainCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := chainCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ccancel(); _ = chainCmd.Wait() })
	info := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok {
			info[k] = strings.TrimSpace(v)
			if k == "rpc" {
				break
			}
		}
	}
	if info["rpc"] == "" {
		t.Fatalf("devchain printed %v", info)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }() // the rest of its output

	dir := t.TempDir()
	if _, err := ipsxIn(ctx, host, "init", "--datadir", dir, "--scrypt", "light",
		"--chain-rpc", info["rpc"], "--chain-id", info["chain id"], "--escrow", info["escrow"], "--listen", "/ip4/127.0.0.1/tcp/0"); err != nil {
		t.Fatal(err)
	}
	p := pub.String()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--socks", p + ":1080"}, "--socks " + p + ":1080: anyone who reaches it could use the node"},
		{[]string{"--http-proxy", "0.0.0.0:8080"}, "--http-proxy 0.0.0.0:8080"},
		{[]string{"--api", p + ":7481"}, "--api " + p + ":7481"},
		{[]string{"--http-proxy", ":8080"}, "--http-proxy :8080"},
		{[]string{"--allow-public-listen", "--no-proxy-auth", "--http-proxy", p + ":8080"}, "must ask for credentials; drop --no-proxy-auth"},
	} {
		out, err := ipsxIn(ctx, host, append([]string{"node", "--datadir", dir}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ipsx node %s: %v (%s), want refused naming %q", strings.Join(tt.args, " "), err, out, tt.want)
		}
	}

	// Allowed: the node comes up on the public address and says so.
	api := p + ":7481"
	logs := &syncBuffer{}
	nctx, ncancel := context.WithCancel(ctx)
	defer ncancel()
	nodeCmd := host.Exec(nctx, os.Args[0], "-test.run=^$", "--", "node", "--datadir", dir, "--log-level", "info",
		"--allow-public-listen", "--api", api, "--http-proxy", p+":8080", "--socks", p+":1080")
	nodeCmd.Env = append(os.Environ(), "IPSX_TEST_AS_CLI=1", "IPSX_PASSWORD=pw", "GORACE=atexit_sleep_ms=0")
	nodeCmd.Stdout, nodeCmd.Stderr = logs, logs
	if err := nodeCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ncancel()
		_ = nodeCmd.Wait()
		if t.Failed() {
			t.Logf("node logged:\n%s", tail(logs.String(), 80))
		}
	})
	var st sdk.Status
	await(t, ctx, "node up", func() (bool, string) {
		out, err := ipsxIn(ctx, host, "--datadir", dir, "--api", api, "--json", "status")
		if err != nil {
			return false, err.Error()
		}
		return json.Unmarshal(out, &st) == nil && st.Proxy != nil, string(out)
	})
	public := map[string]bool{}
	for _, l := range st.Listeners {
		public[l.Name] = l.Public
	}
	if !public["api"] || !public["socks"] || !public["http-proxy"] || !st.Proxy.Auth {
		t.Errorf("status listeners %+v, proxy %+v", st.Listeners, st.Proxy)
	}
	for _, want := range []string{"proxy listening", "addr=" + p + ":8080", "addr=" + p + ":1080", "API listening"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	out, err := ipsxIn(ctx, host, "--datadir", dir, "--api", api, "status")
	if err != nil || !strings.Contains(string(out), "http-proxy:") || !strings.Contains(string(out), "PUBLIC") {
		t.Errorf("ipsx status: %s %v", out, err)
	}

	// From outside: the proxy asks for credentials, /metrics for the token.
	pwOut, err := ipsxIn(ctx, host, "--datadir", dir, "proxy", "password")
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(string(pwOut))
	curlIn := func(args ...string) string {
		out, _ := outside.Run(ctx, "curl", append([]string{"-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...)
		return strings.TrimSpace(string(out))
	}
	target := "http://" + p + ":9/"
	if code := curlIn("--proxy", "http://"+p+":8080", target); code != "407" {
		t.Errorf("proxy from outside without credentials: %s, want 407", code)
	}
	if code := curlIn("--proxy", "http://"+p+":8080", "--proxy-user", "country-DE:"+pw, target); code == "407" || code == "000" {
		t.Errorf("proxy from outside with the password: %s", code)
	}
	if code := curlIn("http://" + api + "/metrics"); code != "401" {
		t.Errorf("/metrics from outside without the token: %s, want 401", code)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "api.token"))
	if code := curlIn("-H", "Authorization: Bearer "+strings.TrimSpace(string(tok)), "http://"+api+"/metrics"); code != "200" {
		t.Errorf("/metrics with the token: %s", code)
	}
}
