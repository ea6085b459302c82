package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/sdk"
)

// child starts this test binary as `ipsx args...` in its own process and
// stops it (SIGTERM, then kill) when the test ends. Its stdout is returned;
// its stderr goes to the test log on failure.
func child(t *testing.T, env []string, args ...string) io.Reader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "IPSX_TEST_AS_CLI=1"), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
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
	return out
}

// freePort is a free 127.0.0.1 address, never one it handed out before in
// this test process: the kernel may give a closed port to the next
// listener on port 0, and a node once got the same port for its API and
// its SOCKS proxy ("bind: address already in use").
func freePort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !portsGiven[addr] {
			portsGiven[addr] = true
			return addr
		}
	}
}

var (
	portsMu    sync.Mutex
	portsGiven = map[string]bool{}
)

// TestFreePortsDistinct: freePort never hands out one address twice.
func TestFreePortsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 3000 {
		a := freePort(t)
		if seen[a] {
			t.Fatalf("freePort handed out %s twice", a)
		}
		seen[a] = true
	}
}

// TestDevchainAndNodeProcesses runs `ipsx devchain` and `ipsx node` as
// separate processes: the node reaches the chain over JSON-RPC, and the
// wallet commands deposit and withdraw through it.
func TestDevchainAndNodeProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// The chain, in its own process; it prints its addresses, rpc last.
	info := map[string]string{}
	sc := bufio.NewScanner(child(t, nil, "devchain", "--http", "127.0.0.1:0"))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			info[k] = strings.TrimSpace(v)
		}
		if k == "rpc" {
			break
		}
	}
	if info["rpc"] == "" || info["escrow"] == "" || info["chain id"] == "" {
		t.Fatalf("devchain printed %v", info)
	}

	// A funded node key: init, then ETH and tokens from a dev account.
	c := newCLI(t)
	c.env["IPSX_PASSWORD"] = "pw"
	dir := t.TempDir()
	api := freePort(t)
	c.ok("init", "--datadir", dir, "--scrypt", "light", "--api", api,
		"--chain-rpc", info["rpc"], "--chain-id", info["chain id"], "--escrow", info["escrow"],
		"--listen", "/ip4/127.0.0.1/tcp/0", "--socks", freePort(t), "--http-proxy", freePort(t))
	var created struct{ Address string }
	b, err := chain.Dial(ctx, info["rpc"])
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	contracts, err := chain.LoadContracts(ctx, b, common.HexToAddress(info["escrow"]))
	if err != nil {
		t.Fatal(err)
	}
	funder, err := chain.NewClient(b, contracts, chain.DevKey(1))
	if err != nil {
		t.Fatal(err)
	}
	keyfiles, _ := filepath.Glob(filepath.Join(dir, "keystore", "*"))
	if len(keyfiles) != 1 {
		t.Fatalf("keystore holds %d files", len(keyfiles))
	}
	kj, _ := os.ReadFile(keyfiles[0])
	if err := json.Unmarshal(kj, &created); err != nil {
		t.Fatal(err)
	}
	addr := common.HexToAddress(created.Address)
	if _, err := funder.SendETH(ctx, addr, chain.Ether); err != nil {
		t.Fatal(err)
	}
	if _, err := funder.Transfer(ctx, addr, new(big.Int).Mul(big.NewInt(10), chain.Token)); err != nil {
		t.Fatal(err)
	}

	// The node, in its own process, configured by the config.json init wrote.
	child(t, []string{"IPSX_PASSWORD=pw"}, "node", "--datadir", dir, "--log-level", "warn")
	c.env["IPSX_DATADIR"], c.env["IPSX_API"] = dir, api
	c.app = func() *app { return &app{getenv: func(k string) string { return c.env[k] }, home: t.TempDir()} }
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, _, err := c.run("status"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("node API never came up: %v", err)
		}
		<-tick.C
	}
	c.ok("wallet", "deposit", "4tok")
	c.ok("wallet", "withdraw", "1000000000000000000")
	var w sdk.Wallet
	if err := json.Unmarshal([]byte(c.ok("--json", "wallet", "balance")), &w); err != nil {
		t.Fatal(err)
	}
	three := new(big.Int).Mul(big.NewInt(3), chain.Token).String()
	seven := new(big.Int).Mul(big.NewInt(7), chain.Token).String()
	if w.Free != three || w.Balance != seven || w.Address != addr.Hex() {
		t.Fatalf("wallet %+v, want 3 tok in escrow and 7 in the wallet of %s", w, addr.Hex())
	}
	if _, stderr, err := c.run("wallet", "withdraw", "5tok"); err == nil || !strings.Contains(err.Error()+stderr, "InsufficientBalance") {
		t.Fatalf("withdrawing more than the free balance: %v %s, want the revert reason", err, stderr)
	}
}
