package testnet_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/testnet"
)

// TestTestnetJSON: testnet.json describes every node (name, peer id,
// address, API, token, data dir, country, egress IP) and the chain.
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
