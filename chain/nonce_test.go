package chain_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/chain"
)

// TestConcurrentSendsFromOneAccount: many transfers from one account
// submitted together, while the dev chain seals a block as each arrives,
// all go through. The pool's pending nonce lags a block just sealed, so a
// sender trusting it alone reuses a nonce now and then ("replacement
// transaction underpriced"); the sender steps over nonces the node says
// are taken.
func TestConcurrentSendsFromOneAccount(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cfg := chain.DefaultDevChainConfig()
	cfg.HTTPAddr = ""
	dc, err := chain.StartDevChain(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	const rounds, perRound = 5, 40
	wei, tokens := big.NewInt(1_000_000), big.NewInt(7)
	cl, err := dc.NewClient(chain.DevKey(1))
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < rounds; r++ {
		addrs := make([]common.Address, perRound)
		for i := range addrs {
			k, err := crypto.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			addrs[i] = crypto.PubkeyToAddress(k.PublicKey)
		}
		if err := dc.FundMany(ctx, addrs, wei, tokens); err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		for _, a := range addrs {
			if b, err := cl.Balances(ctx, a); err != nil || b.Token.Cmp(tokens) != 0 {
				t.Fatalf("round %d: %s holds %+v (%v), want %s tokens", r, a.Hex(), b, err, tokens)
			}
		}
	}
}
