package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
)

// TestFaucet: the faucet beside the dev chain's JSON-RPC funds an address
// once, lists the bootstrap peers announced (a peer's newer announcement
// replacing its older one), refuses malformed input with 400 and a
// reason, and the JSON-RPC still answers on the same handler.
func TestFaucet(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultDevChainConfig()
	cfg.Accounts = 0
	dc, err := StartDevChain(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	fcfg := FaucetConfig{ETH: new(big.Int).Set(Ether), Tokens: tokens(5)}
	f, err := NewFaucet(dc, fcfg, cfg.CommissionBps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dc.Handler(f))
	t.Cleanup(srv.Close)

	call := func(method, path, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %q: %v", method, path, b, err)
			}
		}
		return resp.StatusCode
	}

	var n FaucetNetwork
	if code := call("GET", "/faucet/network", "", &n); code != 200 || n.ChainID != DevChainID ||
		n.Escrow != dc.Contracts().Escrow || n.Token != dc.Contracts().Token || n.CommissionBps != cfg.CommissionBps || len(n.Bootstrap) != 0 {
		t.Fatalf("network: %d %+v", code, n)
	}

	addr := crypto.PubkeyToAddress(DevKey(99).PublicKey)
	for i, want := range []bool{true, false} {
		var res FaucetFunded
		if code := call("POST", "/faucet/fund", `{"address":"`+addr.Hex()+`"}`, &res); code != 200 || res.Funded != want {
			t.Fatalf("fund #%d: %d %+v, want funded=%v", i, code, res, want)
		}
	}
	cl, err := dc.NewClient(DevKey(99))
	if err != nil {
		t.Fatal(err)
	}
	bal, err := cl.Balances(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	eth, err := dc.Client().BalanceAt(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bal.Token.Cmp(fcfg.Tokens) != 0 || eth.Cmp(fcfg.ETH) != 0 {
		t.Fatalf("funded twice or not at all: %s tokens, %s wei", bal.Token, eth)
	}

	a1 := `{"addrs":["/ip4/10.0.0.2/tcp/4001/p2p/PeerA","/ip4/10.0.0.2/udp/4001/quic-v1/p2p/PeerA"]}`
	a2 := `{"addrs":["/ip4/10.0.0.9/tcp/4001/p2p/PeerA"]}`
	b1 := `{"addrs":["/ip4/10.0.0.3/tcp/4001/p2p/PeerB"]}`
	for _, body := range []string{a1, b1, a2} {
		if code := call("POST", "/faucet/bootstrap", body, nil); code != http.StatusNoContent {
			t.Fatalf("announce %s: %d", body, code)
		}
	}
	call("GET", "/faucet/network", "", &n)
	if want := []string{"/ip4/10.0.0.3/tcp/4001/p2p/PeerB", "/ip4/10.0.0.9/tcp/4001/p2p/PeerA"}; strings.Join(n.Bootstrap, " ") != strings.Join(want, " ") {
		t.Fatalf("bootstrap %v, want %v", n.Bootstrap, want)
	}

	for _, c := range []struct{ method, path, body, reason string }{
		{"POST", "/faucet/fund", `{"address":"0x12"}`, "not an Ethereum address"},
		{"POST", "/faucet/fund", `{"adress":"` + addr.Hex() + `"}`, "unknown field"},
		{"POST", "/faucet/fund", `{`, "request body"},
		{"POST", "/faucet/bootstrap", `{"addrs":[]}`, "announce 1 to 16"},
		{"POST", "/faucet/bootstrap", `{"addrs":["/ip4/10.0.0.2/tcp/4001"]}`, "ending in /p2p/"},
		{"POST", "/faucet/bootstrap", `{"addrs":["/ip4/1.2.3.4/tcp/1/p2p/A","/ip4/1.2.3.4/tcp/2/p2p/B"]}`, "two peers"},
		{"POST", "/faucet/bootstrap", `{"addrs":["` + strings.Repeat("x", 9000) + `"]}`, "request body"},
		{"GET", "/faucet/fund", ``, "method not allowed"},
		{"GET", "/faucet/nope", ``, "no such faucet endpoint"},
	} {
		var e struct{ Error string }
		code := call(c.method, c.path, c.body, &e)
		if code/100 != 4 || !strings.Contains(e.Error, c.reason) {
			t.Errorf("%s %s %.40s: %d %q, want 4xx naming %q", c.method, c.path, c.body, code, e.Error, c.reason)
		}
	}

	ec, err := ethclient.Dial(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	if id, err := ec.ChainID(ctx); err != nil || id.Uint64() != DevChainID {
		t.Fatalf("JSON-RPC beside the faucet: chain id %v, %v", id, err)
	}
	if _, err := NewFaucet(dc, FaucetConfig{ETH: new(big.Int), Tokens: new(big.Int)}, 100); err == nil {
		t.Fatal("a faucet that gives no ETH was accepted")
	}
}
