package chain

import (
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestStuckTransactionReplaced: a transaction that stays unmined (the
// chain seals nothing, as a congested one includes nothing underpriced) is
// replaced by one with the same nonce and higher fees, and the send
// returns the receipt of the replacement once the chain moves again.
func TestStuckTransactionReplaced(t *testing.T) {
	e := newEnv(t, nil)
	var (
		mu   sync.Mutex
		sent []*types.Transaction
	)
	hook := func(c *clientConfig) {
		c.onSend = func(tx *types.Transaction) { mu.Lock(); sent = append(sent, tx); mu.Unlock() }
	}
	cl, err := e.dc.NewClient(e.ok, WithReplaceAfter(100*time.Millisecond), hook)
	if err != nil {
		t.Fatal(err)
	}
	to := crypto.PubkeyToAddress(e.pk.PublicKey)
	before, err := e.dc.Client().BalanceAt(e.ctx, to, nil)
	e.must(err)

	e.dc.PauseSealing()
	type result struct {
		r   *types.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := cl.SendETH(e.ctx, to, big.NewInt(12345))
		done <- result{r, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		mu.Lock()
		n := len(sent)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			e.dc.ResumeSealing()
			t.Fatalf("%d transactions sent while the chain stood still, want the original and two replacements", n)
		}
		<-tick.C // the poll interval
	}
	e.dc.ResumeSealing()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	mu.Lock()
	defer mu.Unlock()
	first := sent[0]
	var mined *types.Transaction
	for i, tx := range sent {
		if tx.Nonce() != first.Nonce() {
			t.Fatalf("transaction %d has nonce %d, the original %d", i, tx.Nonce(), first.Nonce())
		}
		if i > 0 && (tx.GasTipCap().Cmp(sent[i-1].GasTipCap()) <= 0 || tx.GasFeeCap().Cmp(sent[i-1].GasFeeCap()) <= 0) {
			t.Fatalf("replacement %d does not raise the fees: tip %s fee cap %s after %s %s", i, tx.GasTipCap(), tx.GasFeeCap(), sent[i-1].GasTipCap(), sent[i-1].GasFeeCap())
		}
		if tx.Hash() == res.r.TxHash {
			mined = tx
		}
	}
	if mined == nil || mined == first {
		t.Fatalf("mined %s, want one of the replacements of %s", res.r.TxHash, first.Hash())
	}
	after, err := e.dc.Client().BalanceAt(e.ctx, to, nil)
	e.must(err)
	if new(big.Int).Sub(after, before).Int64() != 12345 {
		t.Fatalf("balance moved by %s, want 12345 (paid once)", new(big.Int).Sub(after, before))
	}
}
