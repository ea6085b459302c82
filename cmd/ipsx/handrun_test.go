package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsx/ipsx/network"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// ipsxRun runs `ipsx args...` in its own process to the end, with stdin,
// and returns its stdout and stderr.
func ipsxRun(ctx context.Context, env []string, stdin string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "IPSX_TEST_AS_CLI=1"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// ipsxDaemon starts `ipsx args...` in its own process until the test ends
// (SIGTERM, then kill), and returns its stdout and its stderr so far.
func ipsxDaemon(t *testing.T, env []string, args ...string) (io.Reader, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "IPSX_TEST_AS_CLI=1"), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ipsx %s stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	return out, stderr
}

// readmeCommands returns the arguments of the README's `bin/ipsx offer
// create` and `bin/ipsx request create` examples, as written.
func readmeCommands(t *testing.T) (offer, request []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "bin/ipsx" || f[2] != "create" {
			continue
		}
		switch f[1] {
		case "offer":
			offer = f[1:]
		case "request":
			request = f[1:]
		}
	}
	if offer == nil || request == nil {
		t.Fatalf("README.md has no `bin/ipsx offer create` or `bin/ipsx request create` example")
	}
	return offer, request
}

// socksReply opens a SOCKS5 CONNECT to target (an IPv4 address and port)
// through the proxy at addr with cred, and returns the reply code.
func socksReply(t *testing.T, addr string, cred *url.Userinfo, target netip4Port) byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	read := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatalf("socks: %v", err)
		}
		return b
	}
	user := cred.Username()
	pass, _ := cred.Password()
	if _, err := c.Write([]byte{5, 1, 2}); err != nil { // username/password
		t.Fatal(err)
	}
	if m := read(2); m[1] != 2 {
		t.Fatalf("socks method %d, want username/password", m[1])
	}
	auth := append(append([]byte{1, byte(len(user))}, user...), byte(len(pass)))
	if _, err := c.Write(append(auth, pass...)); err != nil {
		t.Fatal(err)
	}
	if a := read(2); a[1] != 0 {
		t.Fatalf("socks auth refused: %v", a)
	}
	req := []byte{5, 1, 0, 1, target.ip[0], target.ip[1], target.ip[2], target.ip[3], byte(target.port >> 8), byte(target.port)}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	return read(2)[1]
}

type netip4Port struct {
	ip   [4]byte
	port uint16
}

// TestHandRunPair is the CLI-only run of the README's "A network of your
// own": `ipsx devchain --empty`, `ipsx chain deploy`, funding with
// `devchain --fund` and `wallet send`, a provider and a requester as two
// hand-run `ipsx node` processes started from the network file, the
// README's offer and request as written, a deal, a page fetched from a
// loopback server through the requester's SOCKS5 proxy (the provider runs
// with --exit-allow-loopback, and says so), exit-policy refusals reaching
// the client and the provider's log, then close and settle. Every step is
// an ipsx process.
func TestHandRunPair(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (make tools installs it)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	env := []string{"IPSX_PASSWORD=pw"}
	run := func(args ...string) string {
		t.Helper()
		out, stderr, err := ipsxRun(ctx, env, "", args...)
		if err != nil {
			t.Fatalf("ipsx %s: %v\n%s%s", strings.Join(args, " "), err, stderr, out)
		}
		return out
	}
	runJSON := func(v any, args ...string) {
		t.Helper()
		out := run(append([]string{"--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("ipsx %s: %v in %q", strings.Join(args, " "), err, out)
		}
	}
	await := func(what string, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("%s: %v", what, err)
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	type ident struct {
		Address string
		PeerID  string `json:"peerId"`
	}

	dir := t.TempDir()
	deployer, provider, requester := filepath.Join(dir, "deployer"), filepath.Join(dir, "provider"), filepath.Join(dir, "requester")
	netFile := filepath.Join(dir, "network.json")

	// 1. Keys, an empty chain funding the deployer with ETH, the contracts.
	var d, p, r ident
	runJSON(&d, "init", "--datadir", deployer, "--scrypt", "light")
	_, pPort, _ := net.SplitHostPort(freePort(t))
	runJSON(&p, "init", "--datadir", provider, "--scrypt", "light", "--api", freePort(t),
		"--listen", "/ip4/127.0.0.1/tcp/"+pPort, "--socks", "off", "--http-proxy", "off")
	chainOut, _ := ipsxDaemon(t, nil, "devchain", "--empty", "--fund", d.Address, "--http", "127.0.0.1:0")
	var rpc string
	sc := bufio.NewScanner(chainOut)
	for rpc == "" && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rpc: "); ok {
			rpc = v
		}
		if strings.HasPrefix(sc.Text(), "token: ") {
			t.Fatalf("devchain --empty deployed contracts: %s", sc.Text())
		}
	}
	if rpc == "" {
		t.Fatal("devchain printed no rpc line")
	}
	go func() { _, _ = io.Copy(io.Discard, chainOut) }()

	deployOut := run("chain", "deploy", "--chain-rpc", rpc, "--datadir", deployer,
		"--bootstrap", "/ip4/127.0.0.1/tcp/"+pPort+"/p2p/"+p.PeerID, "--out", netFile)
	nf, err := network.Load(netFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(deployOut, "escrow: "+nf.Escrow.Hex()) || len(nf.Bootstrap) != 1 || nf.RPC[0] != rpc || nf.ChainID != 1337 {
		t.Fatalf("deploy printed %q and wrote %+v", deployOut, nf)
	}
	if out := run("chain", "verify", "--network", netFile); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("chain verify: %q", out)
	}

	// 2. The requester joins from the network file; the deployer funds both.
	rSOCKS, rHTTP := freePort(t), freePort(t)
	runJSON(&r, "init", "--datadir", requester, "--scrypt", "light", "--network", netFile, "--api", freePort(t),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--socks", rSOCKS, "--http-proxy", rHTTP)
	// What curl and the other proxy clients give the requester's proxies:
	// the route and the password init made.
	proxyCred := url.UserPassword("country-DE", strings.TrimSpace(run("--datadir", requester, "proxy", "password")))
	for _, a := range []string{p.Address, r.Address} {
		run("wallet", "send", a, "1eth", "--eth", "--keystore", deployer, "--network", netFile)
		run("wallet", "send", a, "1000tok", "--keystore", deployer, "--network", netFile)
	}

	// 3. Two hand-run nodes.
	_, pLog := ipsxDaemon(t, env, "node", "--datadir", provider, "--network", netFile, "--exit-allow-loopback", "--log-level", "info")
	_, rLog := ipsxDaemon(t, env, "node", "--datadir", requester, "--log-level", "info")
	for _, dd := range []string{provider, requester} {
		await("node API of "+filepath.Base(dd), func() error {
			_, stderr, err := ipsxRun(ctx, nil, "", "--datadir", dd, "status")
			if err != nil {
				return fmt.Errorf("%v: %s", err, stderr)
			}
			return nil
		})
	}
	if !strings.Contains(pLog.String(), "UNSAFE: --exit-allow-loopback") {
		t.Fatalf("the provider's log does not warn of --exit-allow-loopback:\n%s", pLog.String())
	}
	var w sdk.Wallet
	runJSON(&w, "--datadir", requester, "wallet", "balance")
	if w.Gas != "1000000000000000000" || w.Balance != "1000000000000000000000" || w.Escrow != nf.Escrow.Hex() {
		t.Fatalf("requester's wallet %+v", w)
	}
	run("--datadir", requester, "wallet", "deposit", "100tok")

	// 4. The README's offer and request, as written; a deal.
	offerArgs, requestArgs := readmeCommands(t)
	run(append([]string{"--datadir", provider}, offerArgs...)...)
	var req orderbook.Order
	runJSON(&req, append([]string{"--datadir", requester}, requestArgs...)...)
	var deal sdk.Deal
	await("an active deal", func() error {
		var deals []sdk.Deal
		runJSON(&deals, "--datadir", requester, "deals", "list")
		for _, dl := range deals {
			if dl.RequestID == req.ID().Hex() && dl.Status == "active" {
				deal = dl
				return nil
			}
		}
		var detail sdk.RequestDetail
		runJSON(&detail, "--datadir", requester, "request", "show", req.ID().Hex())
		return fmt.Errorf("deals %+v; request show: matched %v, %d offers", deals, detail.Matched, detail.Offers)
	})

	// A page from a loopback server, through the requester's SOCKS5 proxy.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", r.RemoteAddr)
	}), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	page, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "30", "--socks5-hostname", rSOCKS,
		"--proxy-user", proxyCred.String(), "http://"+ln.Addr().String()+"/").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(page), "hello from 127.0.0.1:") {
		t.Fatalf("curl through the SOCKS5 proxy: %v: %s", err, page)
	}

	// A destination the exit policy refuses: SOCKS reply 2, HTTP 403 with
	// its Proxy-Status, and a line in the provider's log at info.
	if rep := socksReply(t, rSOCKS, proxyCred, netip4Port{[4]byte{10, 255, 255, 1}, 80}); rep != 2 {
		t.Fatalf("SOCKS reply %d for a private address, want 2 (not allowed by ruleset)", rep)
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: rHTTP, User: proxyCred})}}
	resp, err := hc.Get("http://10.255.255.1/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("Proxy-Status"), "destination_ip_prohibited") {
		t.Fatalf("HTTP proxy to a private address: %s, Proxy-Status %q", resp.Status, resp.Header.Get("Proxy-Status"))
	}
	await("the refusal in the provider's log", func() error {
		for _, line := range strings.Split(pLog.String(), "\n") {
			if strings.Contains(line, "level=INFO") && strings.Contains(line, "exit policy refused a destination") && strings.Contains(line, "10.255.255.1") {
				return nil
			}
		}
		return fmt.Errorf("not logged")
	})

	// 5. Close, then settle: the provider is paid on chain.
	await("a voucher with the page's bytes", func() error {
		var dl sdk.Deal
		runJSON(&dl, "--datadir", requester, "deals", "show", deal.ID)
		if dl.Voucher == nil || dl.Voucher.Bytes == 0 {
			return fmt.Errorf("voucher %+v", dl.Voucher)
		}
		return nil
	})
	run("--datadir", requester, "deals", "close", deal.ID[:10])
	await("the deal settled", func() error {
		var dl sdk.Deal
		runJSON(&dl, "--datadir", provider, "deals", "show", deal.ID)
		if dl.Status != "settled" {
			return fmt.Errorf("provider's deal is %s", dl.Status)
		}
		return nil
	})
	var pw sdk.Wallet
	runJSON(&pw, "--datadir", provider, "wallet", "balance")
	if free, _ := new(big.Int).SetString(pw.Free, 10); free == nil || free.Sign() <= 0 {
		t.Fatalf("the provider's escrow after settling: %+v", pw)
	}
	_ = rLog
}

// TestTestnetUpWritesNetworkFile: ipsx testnet up writes network.json
// beside testnet.json, naming its chain, contracts and nodes, and the
// chain it names holds this build's contracts.
func TestTestnetUpWritesNetworkFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	out, _ := ipsxDaemon(t, nil, "testnet", "up", "--nodes", "2", "--dir", dir, "--countries", "DE")
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "wrote ") {
	}
	if !strings.Contains(sc.Text(), "network.json") {
		t.Fatalf("testnet up printed %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	path := filepath.Join(dir, "network.json")
	nf, err := network.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if nf.ChainID != 1337 || len(nf.RPC) != 1 || len(nf.Bootstrap) != 2 || nf.DeployBlock == 0 {
		t.Fatalf("network file %+v", nf)
	}
	if o, stderr, err := ipsxRun(ctx, nil, "", "chain", "verify", "--network", path); err != nil || !strings.HasPrefix(o, "ok: ") {
		t.Fatalf("chain verify: %q %v %s", o, err, stderr)
	}
}
