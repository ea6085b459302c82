package orderbook_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
)

// BenchmarkApplyHeartbeat applies heartbeats of a maker with 1,000 offers
// in one shard: every node does that for every maker once per heartbeat
// interval (30 s), each time extending the liveness of all its offers.
func BenchmarkApplyHeartbeat(b *testing.B) {
	const offers = 1000
	book, db := openBook(b, b.TempDir(), common.Address{})
	defer db.Close()
	k, err := crypto.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var all []*orderbook.Order
	for i := range offers {
		o := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", uint64(i+1), t0), k)
		if _, err := book.Add(o); err != nil {
			b.Fatal(err)
		}
		all = append(all, o)
	}
	d, n := orderbook.DigestOf(all)
	created := uint64(t0.Unix())
	b.ResetTimer()
	start := time.Now()
	runs := 0
	for b.Loop() {
		created++ // each one newer, so that every offer's deadline moves
		h := &orderbook.Heartbeat{ChainID: domain.ChainID, VerifyingContract: domain.VerifyingContract, Country: "DE", Created: created, Count: n, Digest: d}
		if err := h.Sign(k); err != nil {
			b.Fatal(err)
		}
		inSync, err := book.ApplyHeartbeat(h)
		if err != nil || !inSync {
			b.Fatalf("heartbeat: in sync %v, %v", inSync, err)
		}
		runs++
	}
	ms := time.Since(start).Seconds() * 1e3 / float64(runs)
	b.ReportMetric(ms*1e3/offers, "us/offer")
	fmt.Printf("bench: heartbeat offers=%d ms=%.2f us_per_offer=%.1f\n", offers, ms, ms*1e3/offers)
}
