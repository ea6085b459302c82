package chain

import (
	"crypto/ecdsa"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain/bindings"
)

// TestInvariants runs seeded random deposit/open/settle/refund/cancel/
// withdraw sequences (some of which revert on purpose) and checks after
// every step that the token supply is constant and that the escrow holds
// exactly the sum of all free balances and reservations.
func TestInvariants(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 60
	}
	e := newEnv(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []*ecdsa.PrivateKey{e.pk, e.rk, e.ok}
	clients := []*Client{e.provider, e.requester, e.other}
	addrs := []common.Address{e.provider.Address(), e.requester.Address(), e.other.Address(), e.treasury}
	supply := tokens(1_800_000_000)
	tok := bindings.NewIPSXToken()
	var open []agreement.Terms
	counts := map[string]int{}

	check := func(step int, op string) {
		t.Helper()
		out, err := e.provider.s.call(e.ctx, e.dc.Contracts().Token, tok.PackTotalSupply())
		e.must(err)
		if s, _ := tok.UnpackTotalSupply(out); s.Cmp(supply) != 0 {
			t.Fatalf("step %d (%s): supply %s", step, op, s)
		}
		sum := new(big.Int)
		for _, a := range addrs {
			b, err := e.provider.Balances(e.ctx, a)
			e.must(err)
			sum.Add(sum, b.Escrow).Add(sum, b.Reserved)
		}
		eb, err := e.provider.Balances(e.ctx, e.dc.Contracts().Escrow)
		e.must(err)
		if eb.Token.Cmp(sum) != 0 {
			t.Fatalf("step %d (%s): escrow holds %s, accounts sum to %s", step, op, eb.Token, sum)
		}
	}
	amount := func() *big.Int { return new(big.Int).Mul(big.NewInt(rng.Int64N(50)+1), big.NewInt(1e17)) }

	for step := range steps {
		var op string
		var err error
		switch n := rng.IntN(100); {
		case n < 25:
			op = "deposit"
			_, err = clients[rng.IntN(3)].Deposit(e.ctx, amount())
		case n < 50:
			op = "open"
			p, r := rng.IntN(3), rng.IntN(3)
			now := e.now()
			tm := agreement.Terms{
				OfferID: common.Hash{byte(step)}, RequestID: common.Hash{1, byte(step)},
				Provider: clients[p].Address(), Requester: clients[r].Address(),
				IPs: 1, PricePerIPHour: big.NewInt(1), PricePerGB: big.NewInt(1),
				MaxAmount: amount(), Start: now, Deadline: now + 60 + rng.Uint64N(3600), Nonce: uint64(step),
			}
			id := tm.ID(e.domain())
			ps, _ := agreement.Sign(id, keys[p])
			rs, _ := agreement.Sign(id, keys[r])
			if _, err = clients[rng.IntN(3)].Open(e.ctx, tm, ps, rs); err == nil {
				open = append(open, tm)
			}
		case n < 70 && len(open) > 0:
			op = "settle"
			i := rng.IntN(len(open))
			tm := open[i]
			paid := new(big.Int).Mul(tm.MaxAmount, big.NewInt(rng.Int64N(12)))
			paid.Div(paid, big.NewInt(10)) // sometimes above the locked amount: reverts
			v := agreement.Voucher{DealID: tm.ID(e.domain()), Amount: paid, Bytes: rng.Uint64(), ConnLogHash: crypto.Keccak256Hash([]byte{byte(step)})}
			sig, _ := agreement.Sign(v.Digest(e.domain()), keyOf(keys, tm.Requester))
			if _, err = clientOf(clients, tm.Provider).Settle(e.ctx, tm, v, sig); err == nil {
				open = append(open[:i], open[i+1:]...)
			}
		case n < 80 && len(open) > 0:
			op = "refund"
			i := rng.IntN(len(open))
			if _, err = clients[rng.IntN(3)].Refund(e.ctx, open[i]); err == nil {
				open = append(open[:i], open[i+1:]...)
			}
		case n < 85 && len(open) > 0:
			op = "cancel"
			i := rng.IntN(len(open))
			tm := open[i]
			cd := agreement.CancelDigest(e.domain(), tm.ID(e.domain()))
			ps, _ := agreement.Sign(cd, keyOf(keys, tm.Provider))
			rs, _ := agreement.Sign(cd, keyOf(keys, tm.Requester))
			if _, err = clients[rng.IntN(3)].Cancel(e.ctx, tm, ps, rs); err == nil {
				open = append(open[:i], open[i+1:]...)
			}
		case n < 93:
			op = "withdraw"
			_, err = clients[rng.IntN(4)%3].Withdraw(e.ctx, amount())
		default:
			op = "time"
			err = e.dc.AdjustTime(time.Duration(rng.IntN(3600)) * time.Second)
		}
		if err != nil && !IsRevert(err, "InsufficientBalance") && !IsRevert(err, "RefundTooEarly") &&
			!IsRevert(err, "AmountAboveLocked") {
			t.Fatalf("step %d (%s): unexpected error %v", step, op, err)
		}
		if err != nil {
			op += " (reverted)"
		}
		counts[op]++
		check(step, op)
	}
	t.Logf("operations: %v", counts)
}

func keyOf(keys []*ecdsa.PrivateKey, a common.Address) *ecdsa.PrivateKey {
	for _, k := range keys {
		if crypto.PubkeyToAddress(k.PublicKey) == a {
			return k
		}
	}
	return nil
}

func clientOf(cs []*Client, a common.Address) *Client {
	for _, c := range cs {
		if c.Address() == a {
			return c
		}
	}
	return nil
}
