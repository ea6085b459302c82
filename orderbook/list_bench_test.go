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

// BenchmarkListShard reads a shard of 20,000 offers out of the book with
// their ids, as a requester's node does for each of its requests before
// matching (node: dealOffers.Candidates), and as a node serving an order
// sync does page by page.
func BenchmarkListShard(b *testing.B) {
	const offers = 20_000
	book, db := openBook(b, b.TempDir(), common.Address{})
	defer db.Close()
	t0 := time.Now()
	var key *ecdsa.PrivateKey
	for i := range offers { // 20 makers of 1,000 offers
		if i%1000 == 0 {
			var err error
			if key, err = crypto.GenerateKey(); err != nil {
				b.Fatal(err)
			}
		}
		o := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", uint64(i+1), t0), key)
		if _, err := book.Add(o); err != nil {
			b.Fatal(err)
		}
	}
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
