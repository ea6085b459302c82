package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/network"
)

// TestExitAllowNeverAllowed: an --exit-allow prefix the exit policy would
// ignore (loopback, the unspecified address) is refused, naming the flag
// that does open loopback, rather than saved with no effect.
func TestExitAllowNeverAllowed(t *testing.T) {
	for _, p := range []string{"127.0.0.0/8", "127.0.0.1/32", "::1/128", "0.0.0.0/0", "0.0.0.0/32", "::/0"} {
		err := Config{ExitAllow: []string{p}}.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), "never reaches") {
			t.Errorf("--exit-allow %s: %v, want a refusal", p, err)
		}
	}
	err := Config{ExitAllow: []string{"127.0.0.0/8"}}.withDefaults().validate()
	if err == nil || !strings.Contains(err.Error(), "--exit-allow-loopback") {
		t.Errorf("loopback: %v, want the hint to --exit-allow-loopback", err)
	}
	for _, p := range []string{"10.0.0.0/8", "192.168.1.0/24", "fd00::/8"} {
		if err := (Config{ExitAllow: []string{p}}).withDefaults().validate(); err != nil {
			t.Errorf("--exit-allow %s: %v", p, err)
		}
	}
	if err := (Config{ExitAllowLoopback: true}).withDefaults().validate(); err != nil {
		t.Errorf("--exit-allow-loopback: %v", err)
	}
}

func writeNetwork(t *testing.T, f network.File) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "network.json")
	if err := f.Write(p, false); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWithNetwork: the network file supplies chain id, escrow, RPC URLs and
// bootstrap peers; settings given as well must agree with it, ChainRPC is
// tried first and bootstrap peers add up; confirmations resolve from the
// setting, then the file, then the chain.
func TestWithNetwork(t *testing.T) {
	boot := "/ip4/127.0.0.1/tcp/4001/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"
	other := "/ip4/127.0.0.2/tcp/4001/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"
	f := network.File{ChainID: 5, RPC: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"},
		Token: common.HexToAddress("0x1"), Escrow: common.HexToAddress("0x2"), CommissionBps: 100, Bootstrap: []string{boot}}
	path := writeNetwork(t, f)

	c, got, err := Config{Network: path, ChainRPC: "http://127.0.0.1:2", Bootstrap: []string{other}}.withDefaults().withNetwork()
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || c.ChainID != 5 || common.HexToAddress(c.Escrow) != f.Escrow {
		t.Fatalf("config %+v", c)
	}
	if strings.Join(c.rpcs, " ") != "http://127.0.0.1:2 http://127.0.0.1:1" {
		t.Fatalf("rpcs %v", c.rpcs)
	}
	if strings.Join(c.Bootstrap, " ") != other+" "+boot {
		t.Fatalf("bootstrap %v", c.Bootstrap)
	}
	if c.confirmations(got) != network.DefaultConfirmations {
		t.Fatalf("confirmations on chain 5: %d", c.confirmations(got))
	}
	three := uint64(3)
	c.Confirmations = &three
	if c.confirmations(got) != 3 {
		t.Fatalf("confirmations set to 3: %d", c.confirmations(got))
	}
	if (Config{ChainID: network.DevChainID}).confirmations(nil) != 0 {
		t.Fatal("the dev chain needs no confirmations")
	}

	for name, cfg := range map[string]Config{
		"chain id": {Network: path, ChainID: 7},
		"escrow":   {Network: path, Escrow: "0x0000000000000000000000000000000000000003"},
		"no file":  {Network: filepath.Join(t.TempDir(), "none.json")},
		"bad content": {Network: func() string {
			p := filepath.Join(t.TempDir(), "x.json")
			_ = os.WriteFile(p, []byte(`{"chainId":5}`), 0o644)
			return p
		}()},
	} {
		if _, _, err := cfg.withDefaults().withNetwork(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The same values given both ways agree.
	if _, _, err := (Config{Network: path, ChainID: 5, Escrow: f.Escrow.Hex()}).withNetwork(); err != nil {
		t.Errorf("agreeing settings: %v", err)
	}
}
