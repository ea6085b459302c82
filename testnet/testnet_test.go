package testnet_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/testnet"
)

// TestTestnetJSON: testnet.json describes every node (name, peer id,
// address, API, token, data dir, country, egress IP, proxies and the
// proxy password that opens them) and the chain.
func TestTestnetJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dc, err := chain.StartDevChain(ctx, chain.DefaultDevChainConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	dir := t.TempDir()
	tn, err := testnet.Start(ctx, testnet.Config{Dir: dir, Nodes: 4, DevChain: dc, Chain: &testnet.ChainInfo{RPC: "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	b, err := os.ReadFile(filepath.Join(dir, "testnet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f testnet.File
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.Chain == nil || f.Chain.ChainID != dc.Contracts().ChainID.Uint64() || f.Chain.Escrow != dc.Contracts().Escrow.Hex() || f.Chain.RPC == "" {
		t.Errorf("chain %+v", f.Chain)
	}
	if len(f.Nodes) != 4 {
		t.Fatalf("%d nodes in testnet.json", len(f.Nodes))
	}
	countries := map[string]bool{}
	ips := map[string]bool{}
	for _, n := range f.Nodes {
		if n.Name == "" || n.PeerID == "" || n.Address == "" || n.API == "" || n.Token == "" || n.Datadir == "" || n.Country == "" || n.EgressIP == "" {
			t.Errorf("incomplete entry %+v", n)
		}
		countries[n.Country] = true
		ips[n.EgressIP] = true
		if n.HTTP == "" || n.SOCKS == "" || n.ProxyPassword == "" {
			t.Errorf("%s: proxies %q %q, proxy password %q", n.Name, n.HTTP, n.SOCKS, n.ProxyPassword)
			continue
		}
		// The listed password opens the node's proxy; no password gets 407.
		for _, pass := range []string{"", n.ProxyPassword} {
			code := proxyStatus(t, n.HTTP, pass)
			if pass == "" && code != http.StatusProxyAuthRequired || pass != "" && code == http.StatusProxyAuthRequired {
				t.Errorf("%s: password %q: proxy answered %d", n.Name, pass, code)
			}
		}
	}
	if len(countries) < 3 || len(ips) != 4 {
		t.Errorf("nodes spread over %d countries and %d IPs", len(countries), len(ips))
	}
	for _, m := range tn.Members {
		st := m.Node.Status(ctx)
		if len(st.Shards) != len(testnet.DefaultCountries) {
			t.Errorf("%s follows %d shards, want every one of the testnet's %d", m.Name, len(st.Shards), len(testnet.DefaultCountries))
		}
	}
}

// proxyStatus sends one plain request for a loopback target through an
// HTTP proxy, with the password if set, and returns the status.
func proxyStatus(t *testing.T, proxy, pass string) int {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/", nil)
	if pass != "" {
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("country-DE:"+pass)))
	}
	if err := req.WriteProxy(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
