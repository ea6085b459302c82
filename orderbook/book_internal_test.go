package orderbook

import (
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
)

// TestGetAllKeepsIDsParallel checks that an order removed between reading
// the index and loading (here: never stored) drops out with its id.
func TestGetAllKeepsIDsParallel(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := NewBook(db, BookConfig{})
	k := testKey(t, 1)
	var ids []common.Hash
	for i := range 3 {
		o := newOffer(testNow)
		o.Nonce = uint64(i)
		if _, err := b.Add(signed(t, o, k)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID())
	}
	gone := common.Hash{1}
	orders, got, err := b.getAll([]common.Hash{gone, ids[0], ids[1], gone, ids[2], gone})
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 3 || len(got) != 3 {
		t.Fatalf("%d orders and %d ids, want 3 and 3", len(orders), len(got))
	}
	for i, o := range orders {
		if got[i] != ids[i] || o.ID() != ids[i] {
			t.Fatalf("order %d: id %s, order's id %s, want %s", i, got[i].Hex(), o.ID().Hex(), ids[i].Hex())
		}
	}
}

// TestHeartbeatExtendsOldMakerEntries: a book written before the maker
// index carried each order's kind and times (its entries are empty) still
// has its offers extended by a heartbeat, and its requests left alone.
func TestHeartbeatExtendsOldMakerEntries(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := NewBook(db, BookConfig{TTL: 90 * time.Second})
	k := testKey(t, 1)
	var orders []*Order
	for i, o := range []*Order{newOffer(testNow), newOffer(testNow), newRequest(testNow)} {
		o.Nonce = uint64(i)
		o.Location = Location{Country: "DE"}
		if _, err := b.Add(signed(t, o, k)); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	// The first offer and the request get old entries.
	if err := db.Update(func(txn *badger.Txn) error {
		for _, o := range []*Order{orders[0], orders[2]} {
			id := o.ID()
			if err := txn.Set(key(pMaker, o.Maker[:], []byte("DE"), id[:]), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d, n := DigestOf(orders)
	h := &Heartbeat{ChainID: testDomain.ChainID, VerifyingContract: testDomain.VerifyingContract, Country: "DE", Created: uint64(testNow.Unix()) + 60, Count: n, Digest: d}
	if err := h.Sign(k); err != nil {
		t.Fatal(err)
	}
	if inSync, err := b.ApplyHeartbeat(h); err != nil || !inSync {
		t.Fatalf("heartbeat: in sync %v, %v", inSync, err)
	}
	// Both offers now live until testNow+150 (without the heartbeat, +90).
	if removed, err := b.Sweep(testNow.Add(120 * time.Second)); err != nil || len(removed) != 0 {
		t.Fatalf("swept %d orders at +120 (%v), want none", len(removed), err)
	}
	removed, err := b.Sweep(testNow.Add(151 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || !b.Has(orders[2].ID()) {
		t.Fatalf("swept %d orders at +151, want both offers and not the request", len(removed))
	}
}
