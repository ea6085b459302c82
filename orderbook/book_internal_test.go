package orderbook

import (
	"testing"

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
