package node_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

func startDevChain(t *testing.T) *chain.DevChain {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dc, err := chain.StartDevChain(ctx, chain.DefaultDevChainConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	return dc
}

// TestWallet: balances, deposit and withdraw through the API against the
// real EVM of the dev chain, with clear errors for what the chain refuses.
func TestWallet(t *testing.T) {
	dc := startDevChain(t)
	tn := startTestnet(t, testnet.Config{Nodes: 1, DevChain: dc})
	ctx := awaitCtx(t)
	n := tn.Members[0].Node
	cl := sdk.NewClient("http://"+n.APIAddr().String(), n.Token())
	w, err := cl.Wallet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := func(field, got string, v *big.Int) {
		t.Helper()
		if got != v.String() {
			t.Errorf("%s = %s, want %s", field, got, v)
		}
	}
	dep := testnet.DefaultDeposit
	want("escrow balance", w.Free, dep)
	want("token balance", w.Balance, new(big.Int).Sub(testnet.DefaultFundTokens, dep))
	want("reserved", w.Reserved, new(big.Int))
	if w.Escrow != dc.Contracts().Escrow.Hex() || w.Address != n.Address().Hex() {
		t.Errorf("wallet describes %s at %s, want %s at %s", w.Address, w.Escrow, n.Address().Hex(), dc.Contracts().Escrow.Hex())
	}
	r, err := cl.Withdraw(ctx, "1000")
	if err != nil {
		t.Fatal(err)
	}
	want("escrow balance after withdraw", r.Wallet.Free, new(big.Int).Sub(dep, big.NewInt(1000)))
	if r.TxHash == "" || r.GasUsed == 0 {
		t.Errorf("receipt missing: %+v", r)
	}
	r, err = cl.Deposit(ctx, "1000")
	if err != nil {
		t.Fatal(err)
	}
	want("escrow balance after deposit", r.Wallet.Free, dep)
	if g, ok := new(big.Int).SetString(w.Gas, 10); !ok || g.Sign() <= 0 || g.Cmp(testnet.DefaultFundETH) > 0 {
		t.Errorf("gas balance %q, want some of the %s wei funded", w.Gas, testnet.DefaultFundETH)
	}

	// Send: tokens, then ETH, to a fresh address; amounts in tok units too.
	other := ethcrypto.PubkeyToAddress(mustKey(t).PublicKey)
	if r, err = cl.Send(ctx, sdk.SendParams{To: other.Hex(), Amount: "2.5tok"}); err != nil {
		t.Fatal(err)
	}
	want("token balance after send", r.Wallet.Balance, new(big.Int).Sub(new(big.Int).Sub(testnet.DefaultFundTokens, dep), big.NewInt(2_500_000_000_000_000_000)))
	if r, err = cl.Send(ctx, sdk.SendParams{To: other.Hex(), Amount: "12345", Asset: "eth"}); err != nil {
		t.Fatal(err)
	}
	if g, _ := new(big.Int).SetString(r.Wallet.Gas, 10); g == nil || g.Cmp(new(big.Int).Sub(testnet.DefaultFundETH, big.NewInt(12345))) >= 0 {
		t.Errorf("gas after sending 12345 wei: %s", r.Wallet.Gas)
	}
	oc, err := dc.NewClient(chain.DevKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := oc.Balances(ctx, other); err != nil || b.Token.String() != "2500000000000000000" {
		t.Errorf("receiver's tokens: %+v %v", b, err)
	}
	if g, err := oc.GasBalance(ctx, other); err != nil || g.Int64() != 12345 {
		t.Errorf("receiver's ETH: %v %v", g, err)
	}

	for _, tc := range []struct {
		name   string
		do     func() error
		status int
		code   string
	}{
		{"withdraw more than free", func() error { _, err := cl.Withdraw(ctx, new(big.Int).Add(dep, big.NewInt(1)).String()); return err }, 422, "reverted"},
		{"deposit more than held", func() error { _, err := cl.Deposit(ctx, testnet.DefaultFundTokens.String()); return err }, 422, "reverted"},
		{"zero amount", func() error { _, err := cl.Deposit(ctx, "0"); return err }, 400, "out_of_range"},
		{"negative amount", func() error { _, err := cl.Withdraw(ctx, "-5"); return err }, 400, "out_of_range"},
		{"not a number", func() error { _, err := cl.Deposit(ctx, "lots"); return err }, 400, "malformed"},
	} {
		var apiErr *sdk.APIError
		if err := tc.do(); !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Code != tc.code {
			t.Errorf("%s: %v, want %d %s", tc.name, err, tc.status, tc.code)
		} else {
			t.Logf("%s: %d %s: %s", tc.name, apiErr.StatusCode, apiErr.Code, apiErr.Message)
		}
	}
	// A request the escrow balance cannot cover is refused.
	_, err = cl.CreateRequest(ctx, sdk.RequestParams{
		Country: "DE", IPType: "any", IPs: 1, Duration: 3600,
		MaxPricePerHour: new(big.Int).Add(dep, big.NewInt(1)).String(), MaxPricePerGB: "1",
	})
	var apiErr *sdk.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 402 {
		t.Errorf("unaffordable request: %v, want 402", err)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWalletWithoutChain(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 1})
	n := tn.Members[0].Node
	_, err := sdk.NewClient("http://"+n.APIAddr().String(), n.Token()).Wallet(awaitCtx(t))
	var apiErr *sdk.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Code != "no_chain" {
		t.Fatalf("wallet without a chain: %v, want 503 no_chain", err)
	}
}

// TestAntiSpam: a request whose maker's escrow balance does not cover it is
// dropped by the gossip validator (Ignore: the balance view may lag, so no
// score penalty); a covered one passes.
func TestAntiSpam(t *testing.T) {
	dc := startDevChain(t)
	tn := startTestnet(t, testnet.Config{Nodes: 2, Countries: []string{"DE"}, DevChain: dc})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	a, b := tn.Members[0], tn.Members[1]
	d := a.Node.Status(ctx).Domain()
	poor, _ := ethcrypto.GenerateKey()
	unfunded := orderbooktest.Sign(orderbooktest.Request(d, "DE", 1, time.Now()), poor)
	funded := orderbooktest.Sign(orderbooktest.Request(d, "DE", 2, time.Now()), a.Node.Key())
	for _, o := range []*orderbook.Order{unfunded, funded} {
		msg, _ := orderbook.Message{Order: o}.Encode()
		if err := a.Node.Publish(ctx, "DE", msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := testnet.Await(ctx, func() error {
		if !b.Node.Book().Has(funded.ID()) {
			return fmt.Errorf("funded request not at %s", b.Name)
		}
		if counter(t, b.Node, "ipsx_gossip_messages_total", "request", "ignore") < 1 {
			return fmt.Errorf("unfunded request not ignored yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b.Node.Book().Has(unfunded.ID()) {
		t.Error("a request its maker cannot pay for entered the book")
	}
	if s := b.Node.PeerScores()[a.Node.PeerID()]; s < 0 {
		t.Errorf("an unaffordable order cost its forwarder score (%.1f); it should be ignored", s)
	}
}
