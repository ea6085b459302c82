package chain

import (
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestPauseWaitsForSealUnderWay: once PauseSealing returns, no automatic
// seal takes a transaction sent after it, not even one that had started
// before. The chain's own sealing of an earlier transaction is held in its
// hook while PauseSealing is called; a transaction sent once PauseSealing
// has returned must stay in the pool. (TestStuckTransactionReplaced saw
// its transaction mined on a paused chain in a clean-clone run.)
func TestPauseWaitsForSealUnderWay(t *testing.T) {
	e := newEnv(t, nil)
	dc := e.dc
	inSeal, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	dc.sealMu.Lock()
	dc.sealing = func() {
		once.Do(func() {
			close(inSeal)
			<-release
		})
	}
	dc.sealMu.Unlock()

	to := crypto.PubkeyToAddress(e.pk.PublicKey)
	first := make(chan error, 1)
	go func() { _, err := e.other.SendETH(e.ctx, to, big.NewInt(1)); first <- err }()
	select {
	case <-inSeal:
	case <-time.After(30 * time.Second):
		t.Fatal("the chain never sealed the first transaction")
	}
	paused := make(chan struct{})
	go func() { dc.PauseSealing(); close(paused) }()
	// PauseSealing may wait for the seal under way; the second
	// transaction is sent once it has returned, while the seal is still
	// held if it did not wait (that seal must not take it).
	send := func() *types.Transaction {
		tx, err := e.requester.s.signAndSendValue(e.ctx, &to, big.NewInt(2), nil)
		e.must(err)
		return tx
	}
	var tx *types.Transaction
	select {
	case <-paused:
		tx = send()
		close(release)
	case <-time.After(200 * time.Millisecond):
		close(release)
		<-paused
		tx = send()
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The sealer batches for 20 ms: look for a second whether a block
	// took the second one.
	deadline := time.Now().Add(time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if r, err := dc.Client().TransactionReceipt(e.ctx, tx.Hash()); err == nil {
			t.Fatalf("a transaction sent after PauseSealing returned was mined in block %s", r.BlockNumber)
		}
		<-tick.C
	}
	dc.ResumeSealing()
}
