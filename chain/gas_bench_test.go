package chain

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/params"
)

// BenchmarkGas reports the gas used by each escrow operation under two rule
// sets: "mainnet" (MainnetRules: Osaka, draft forks off) and "devchain"
// (params.AllDevChainProtocolChanges, with the draft Bogota fork). Gas does
// not depend on b.N; the figures come from receipts of one run.
//
//	go test -bench Gas -run '^$' ./chain/
func BenchmarkGas(b *testing.B) {
	got := map[string]map[string]uint64{}
	for _, rules := range []struct {
		name string
		cfg  *params.ChainConfig
	}{{"mainnet", MainnetRules()}, {"devchain", params.AllDevChainProtocolChanges}} {
		b.Run(rules.name, func(b *testing.B) {
			g := measureGas(b, rules.cfg)
			got[rules.name] = g
			for b.Loop() {
			}
			for _, k := range gasKeys {
				b.ReportMetric(float64(g[k]), k+"-gas")
			}
			fmt.Printf("gas %-8s %s\n", rules.name, formatGas(g))
		})
	}
	// The summary line: the mainnet figures, and the devchain's total.
	m, d := got["mainnet"], got["devchain"]
	if m == nil || d == nil {
		return // a -bench pattern picked one rule set only
	}
	line := "bench: gas"
	for _, k := range gasKeys {
		line += fmt.Sprintf(" %s=%d", strings.ReplaceAll(strings.ReplaceAll(k, "-", "_"), "+", "_"), m[k])
	}
	fmt.Printf("%s devchain_open_settle=%d\n", line, d["open+settle"])
}

var gasKeys = []string{"deposit", "open", "settle", "open+settle", "refund", "cancel", "withdraw",
	"first-open", "first-settle", "first-open+settle"}

func formatGas(g map[string]uint64) string {
	s := ""
	for _, k := range gasKeys {
		s += fmt.Sprintf("%s=%d ", k, g[k])
	}
	return s
}

// measureGas runs each operation twice: "first-" figures are the very first
// deal on a fresh escrow (provider and treasury escrow slots created),
// the others are the steady state (every account already has a balance).
func measureGas(tb testing.TB, rules *params.ChainConfig) map[string]uint64 {
	e := newEnv(tb, rules)
	g := map[string]uint64{}
	amount := tokens(10)

	tm := e.open(amount) // the first deal: its settle creates the provider's and treasury's slots
	e.deposit(e.requester, amount)
	tm1 := e.terms(amount)
	id := tm1.ID(e.domain())
	r, err := e.requester.Open(e.ctx, tm1, e.sign(id, e.pk), e.sign(id, e.rk))
	e.must(err)
	g["first-open"] = r.GasUsed
	v, sig := e.voucher(tm, tokens(4))
	r, err = e.provider.Settle(e.ctx, tm, v, sig)
	e.must(err)
	g["first-settle"] = r.GasUsed
	g["first-open+settle"] = g["first-open"] + g["first-settle"]

	// Steady state: provider and treasury have escrow balances now.
	r, err = e.requester.Deposit(e.ctx, amount)
	e.must(err)
	g["deposit"] = r.GasUsed
	tm2 := e.terms(amount)
	id = tm2.ID(e.domain())
	r, err = e.requester.Open(e.ctx, tm2, e.sign(id, e.pk), e.sign(id, e.rk))
	e.must(err)
	g["open"] = r.GasUsed
	v, sig = e.voucher(tm2, tokens(3))
	r, err = e.provider.Settle(e.ctx, tm2, v, sig)
	e.must(err)
	g["settle"] = r.GasUsed
	g["open+settle"] = g["open"] + g["settle"]

	// tm1 is still open: refund it after the deadline plus grace.
	e.must(e.dc.AdjustTime(2 * time.Hour))
	r, err = e.other.Refund(e.ctx, tm1)
	e.must(err)
	g["refund"] = r.GasUsed

	tm3 := e.open(amount)
	id = tm3.ID(e.domain())
	r, err = e.other.Cancel(e.ctx, tm3, e.sign(cancelDigest(e, id), e.pk), e.sign(cancelDigest(e, id), e.rk))
	e.must(err)
	g["cancel"] = r.GasUsed

	r, err = e.requester.Withdraw(e.ctx, tokens(1))
	e.must(err)
	g["withdraw"] = r.GasUsed
	return g
}
