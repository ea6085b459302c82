package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common/hexutil"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/network"
	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// runIn runs a command with stdin.
func (c *cli) runIn(stdin string, args ...string) (string, error) {
	c.t.Helper()
	root := newRoot(c.app())
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(c.t.Context())
	return out.String(), err
}

// TestVersionFlag: ipsx --version works (it was an unknown flag).
func TestVersionFlag(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("--version"); out != "ipsx dev\n" {
		t.Fatalf("--version: %q", out)
	}
}

// TestOrderShortIDs: order cancel and order show take a unique prefix of
// one of the node's orders, as deals do (order cancel 0xf64a473e was
// refused), and say when a prefix names none or several.
func TestOrderShortIDs(t *testing.T) {
	c := newCLI(t)
	var ids []string
	for range 3 {
		out := c.ok("--json", "offer", "create", "--country", "DE", "--price-per-hour", "1tok")
		o, err := orderbook.DecodeOrder([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		if o.PricePerHour.String() != "1000000000000000000" {
			t.Fatalf("--price-per-hour 1tok gave %s", o.PricePerHour)
		}
		ids = append(ids, o.ID().Hex())
	}
	short := ids[0][:10]
	if out := c.ok("order", "show", short); !strings.Contains(out, ids[0]) {
		t.Fatalf("order show %s: %q", short, out)
	}
	if out := c.ok("order", "cancel", short); !strings.Contains(out, "cancelled "+ids[0]) {
		t.Fatalf("order cancel %s: %q", short, out)
	}
	if _, _, err := c.run("order", "cancel", "0xffff"+strings.Repeat("f", 4)); err == nil || !strings.Contains(err.Error(), "starts with") {
		t.Fatalf("unknown prefix: %v", err)
	}
	if _, _, err := c.run("order", "cancel", "0x"); err == nil || !strings.Contains(err.Error(), "not an order id") {
		t.Fatalf("empty prefix: %v", err)
	}
	// "0x" and one hex digit shared by two ids of ours, made ambiguous on purpose.
	a, b := strings.ToLower(ids[1]), strings.ToLower(ids[2])
	n := 2
	for n < len(a) && a[n] == b[n] {
		n++
	}
	if n >= 6 { // a shared prefix long enough to be tried
		if _, _, err := c.run("order", "cancel", a[:n]); err == nil || !strings.Contains(err.Error(), "ambiguous") {
			t.Fatalf("ambiguous prefix %s: %v", a[:n], err)
		}
	}
}

// TestRequestShow: request show lists the offers that can fill the
// request and, for the others, the first reason they fail: the README's
// old offer (50 per GB against 0 allowed) shows as price_per_gb.
func TestRequestShow(t *testing.T) {
	c := newCLI(t)
	out := c.ok("--json", "request", "create", "--country", "DE", "--duration", "1h", "--max-price-per-hour", "0.005tok", "--max-price-per-gb", "0")
	req, err := orderbook.DecodeOrder([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	paid := apitest.Offer() // 1000 per hour, 50 per GB
	free := apitest.Offer()
	free.PricePerGB = big.NewInt(0)
	for _, o := range []*orderbook.Order{paid, free} {
		if err := c.b.Import(t.Context(), apitest.Signed(t, o)); err != nil {
			t.Fatal(err)
		}
	}
	out = c.ok("request", "show", req.ID().Hex()[:10])
	for _, want := range []string{req.ID().Hex(), "matched: some offer can fill it", "WHY NOT",
		shortID(free.ID().Hex()), shortID(paid.ID().Hex()), "price_per_gb: asks 50 per GB, the request allows at most 0"} {
		if !strings.Contains(out, want) {
			t.Fatalf("request show lacks %q:\n%s", want, out)
		}
	}
	var d sdk.RequestDetail
	if err := json.Unmarshal([]byte(c.ok("--json", "request", "show", req.ID().Hex())), &d); err != nil || len(d.Candidates) != 2 {
		t.Fatalf("--json: %+v %v", d, err)
	}
	if _, _, err := c.run("request", "show", paid.ID().Hex()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("an offer's id: %v", err)
	}
}

// TestWalletPrecision: balances print every decimal (an escrow of 29 base
// units printed as "0 tok"), the gas balance included.
func TestWalletPrecision(t *testing.T) {
	var b bytes.Buffer
	if err := printWallet(&b, &sdk.Wallet{Address: "0xA", Balance: "1000000000000000001", Free: "29", Reserved: "0", Gas: "1500000000000000000"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0.000000000000000029 tok (29 base units)", "1.000000000000000001 tok", "gas:       1.5 ETH (1500000000000000000 wei)", "reserved:  0 tok (0 base units)"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("wallet lacks %q:\n%s", want, b.String())
		}
	}
	for in, want := range map[[2]string]string{{"1eth", "eth"}: "1000000000000000000", {"5", "eth"}: "5", {"2.5tok", ""}: "2500000000000000000"} {
		got, err := parseAmountArg(in[0], in[1] == "eth")
		if err != nil || got != want {
			t.Errorf("parseAmountArg(%q) = %q %v, want %s", in[0], got, err, want)
		}
	}
	for _, bad := range [][2]string{{"1eth", ""}, {"1tok", "eth"}, {"0", ""}, {"-1", ""}} {
		if _, err := parseAmountArg(bad[0], bad[1] == "eth"); err == nil {
			t.Errorf("parseAmountArg(%q, eth=%v) accepted", bad[0], bad[1] == "eth")
		}
	}
}

// TestExitAllowLoopbackRefused: --exit-allow 127.0.0.0/8 is an error that
// names --exit-allow-loopback (it was saved and did nothing).
func TestExitAllowLoopbackRefused(t *testing.T) {
	c := newCLI(t)
	c.env["IPSX_PASSWORD"] = "pw"
	dir := filepath.Join(t.TempDir(), "d")
	_, _, err := c.run("init", "--datadir", dir, "--scrypt", "light", "--exit-allow", "127.0.0.0/8")
	if err == nil || !strings.Contains(err.Error(), "--exit-allow-loopback") {
		t.Fatalf("init --exit-allow 127.0.0.0/8: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		t.Fatal("the refused setting was saved")
	}
	c.ok("init", "--datadir", dir, "--scrypt", "light", "--exit-allow-loopback")
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !strings.Contains(string(b), `"exit-allow-loopback": true`) {
		t.Fatalf("config.json: %s", b)
	}
}

// TestKeyImportExport: key import takes a hex key on stdin or a geth
// keystore file and builds a data dir around it; key export writes a
// keystore file that go-ethereum decrypts to the same key; neither
// replaces a key or a file.
func TestKeyImportExport(t *testing.T) {
	c := newCLI(t)
	c.env["IPSX_PASSWORD"] = "pw"
	key, _ := ethcrypto.GenerateKey()
	addr := ethcrypto.PubkeyToAddress(key.PublicKey)
	dir := filepath.Join(t.TempDir(), "hex")
	out, err := c.runIn(hexutil.Encode(ethcrypto.FromECDSA(key))+"\n", "key", "import", "--datadir", dir, "--scrypt", "light")
	if err != nil || !strings.Contains(out, addr.Hex()) {
		t.Fatalf("key import from stdin: %q %v", out, err)
	}
	for _, f := range []string{"config.json", "api.token"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("data dir lacks %s", f)
		}
	}
	other, _ := ethcrypto.GenerateKey()
	if _, err := c.runIn(hexutil.Encode(ethcrypto.FromECDSA(other)), "key", "import", "--datadir", dir); err == nil || !strings.Contains(err.Error(), "already has a key") {
		t.Fatalf("import over a key: %v", err)
	}

	// A keystore file as geth writes it, with its own passphrase.
	id, _ := uuid.NewRandom()
	blob, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: addr, PrivateKey: key}, "geth-pass", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	ks := filepath.Join(t.TempDir(), "UTC--key.json")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(ks, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte("geth-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir2 := filepath.Join(t.TempDir(), "ks")
	if _, _, err := c.run("key", "import", ks, "--datadir", dir2, "--scrypt", "light"); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("keystore with the wrong passphrase: %v", err)
	}
	if out := c.ok("key", "import", ks, "--datadir", dir2, "--scrypt", "light", "--key-password-file", pwFile); !strings.Contains(out, addr.Hex()) {
		t.Fatalf("key import FILE: %q", out)
	}

	exported := filepath.Join(t.TempDir(), "out.json")
	if out := c.ok("key", "export", "--datadir", dir2, "--out", exported); !strings.Contains(out, addr.Hex()) {
		t.Fatalf("key export: %q", out)
	}
	eb, _ := os.ReadFile(exported)
	k, err := keystore.DecryptKey(eb, "pw")
	if err != nil || k.Address != addr || !bytes.Equal(ethcrypto.FromECDSA(k.PrivateKey), ethcrypto.FromECDSA(key)) {
		t.Fatalf("exported file: %v", err)
	}
	if _, _, err := c.run("key", "export", "--datadir", dir2, "--out", exported); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("export over a file: %v", err)
	}
	if _, err := c.runIn("not a key", "key", "import", "--datadir", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Fatal("garbage imported")
	}
}

// serveChain runs a dev chain served over JSON-RPC on loopback for the
// test's length.
func serveChain(t *testing.T, cfg chain.DevChainConfig) (*chain.DevChain, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dc, rpc, stop, err := serveDevChainCfg(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); cancel() })
	return dc, rpc
}

// TestNodeRefusesWrongEscrow: a node started from a network file whose
// escrow holds other code (here the token's), or takes another commission
// than the file says, refuses to start with a clear error.
func TestNodeRefusesWrongEscrow(t *testing.T) {
	dc, rpc := serveChain(t, chain.DefaultDevChainConfig())
	c := dc.Contracts()
	good := network.File{ChainID: c.ChainID.Uint64(), RPC: []string{rpc}, Token: c.Token, Escrow: c.Escrow, CommissionBps: 100}
	cli := newCLI(t)
	cli.env["IPSX_PASSWORD"] = "pw"
	for name, tc := range map[string]struct {
		f    network.File
		want string
	}{
		"token as escrow": {func() network.File { f := good; f.Escrow = c.Token; return f }(), "contract code is not this build's"},
		"commission":      {func() network.File { f := good; f.CommissionBps = 200; return f }(), "takes 100 bps commission"},
		"chain id":        {func() network.File { f := good; f.ChainID = 5; return f }(), "is for chain 5"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "network.json")
			if err := tc.f.Write(path, false); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cli.ok("init", "--datadir", dir, "--scrypt", "light")
			_, _, err := cli.run("node", "--datadir", dir, "--scrypt", "light", "--network", path,
				"--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--socks", "off", "--http-proxy", "off")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("node: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestConfirmationsFlag: --confirmations is saved by init when given, and
// left unset (the network's or the chain's default) when not.
func TestConfirmationsFlag(t *testing.T) {
	c := newCLI(t)
	c.env["IPSX_PASSWORD"] = "pw"
	set, unset := filepath.Join(t.TempDir(), "set"), filepath.Join(t.TempDir(), "unset")
	c.ok("init", "--datadir", set, "--scrypt", "light", "--confirmations", "0")
	c.ok("init", "--datadir", unset, "--scrypt", "light")
	if b, _ := os.ReadFile(filepath.Join(set, "config.json")); !strings.Contains(string(b), `"confirmations": 0`) {
		t.Fatalf("--confirmations 0 not saved: %s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(unset, "config.json")); strings.Contains(string(b), "confirmations") {
		t.Fatalf("confirmations saved without the flag: %s", b)
	}
	if _, _, err := c.run("init", "--datadir", filepath.Join(t.TempDir(), "x"), "--confirmations", "many"); err == nil {
		t.Fatal("--confirmations many accepted")
	}
}
