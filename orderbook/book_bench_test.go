package orderbook_test

import (
	"crypto/ecdsa"
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
	t0 := time.Now()
	keys, all := addOffers(b, book, 1, offers, t0)
	k := keys[0]
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

// BenchmarkListShard reads a shard of 20,000 offers out of the book with
// their ids, as a requester's node does for each of its requests before
// matching (node: dealOffers.Candidates), and as a node serving an order
// sync does page by page.
func BenchmarkListShard(b *testing.B) {
	const offers = 20_000
	book, db := openBook(b, b.TempDir(), common.Address{})
	defer db.Close()
	addOffers(b, book, offers/1000, 1000, time.Now())
	b.ResetTimer()
	start := time.Now()
	runs := 0
	for b.Loop() {
		orders, ids, err := book.ListWithIDs(orderbook.Query{Country: "DE", Kind: orderbook.KindOffer})
		if err != nil || len(orders) != offers || len(ids) != offers {
			b.Fatalf("listed %d orders, %d ids, want %d: %v", len(orders), len(ids), offers, err)
		}
		runs++
	}
	ms := time.Since(start).Seconds() * 1e3 / float64(runs)
	b.ReportMetric(ms*1e3/offers, "us/order")
	fmt.Printf("bench: list_shard orders=%d ms=%.1f us_per_order=%.2f\n", offers, ms, ms*1e3/offers)
}

// addOffers adds each offers in shard DE for every one of makers new keys,
// and returns the keys and the offers.
func addOffers(b *testing.B, book *orderbook.Book, makers, each int, t0 time.Time) ([]*ecdsa.PrivateKey, []*orderbook.Order) {
	var keys []*ecdsa.PrivateKey
	var all []*orderbook.Order
	for range makers {
		k, err := crypto.GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, k)
		for i := range each {
			o := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", uint64(i+1), t0), k)
			if _, err := book.Add(o); err != nil {
				b.Fatal(err)
			}
			all = append(all, o)
		}
	}
	return keys, all
}
