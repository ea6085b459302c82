package orderbook_test

import (
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
)

func TestBookSupersede(t *testing.T) {
	b := newBook(t)
	k := key(t)
	now := time.Now()
	v1 := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", 5, now), k)
	v2 := orderbooktest.Offer(domain, "DE", 5, now)
	v2.Version, v2.IPs = 2, 1 // capacity update
	orderbooktest.Sign(v2, k)
	if _, err := b.Add(v1); err != nil {
		t.Fatal(err)
	}
	a, err := b.Add(v2)
	if err != nil {
		t.Fatal(err)
	}
	if a.Superseded == nil || a.Superseded.ID() != v1.ID() {
		t.Fatalf("superseded %v, want v1", a.Superseded)
	}
	if b.Has(v1.ID()) || !b.Has(v2.ID()) {
		t.Fatal("v1 still held or v2 missing")
	}
	if _, err := b.Add(v1); !errors.Is(err, orderbook.ErrSuperseded) {
		t.Fatalf("re-adding v1: %v, want superseded", err)
	}
	list, _ := b.List(orderbook.Query{Country: "DE"})
	if len(list) != 1 {
		t.Fatalf("book has %d orders, want 1", len(list))
	}
}

func TestBookCancel(t *testing.T) {
	b := newBook(t)
	k, other := key(t), key(t)
	now := time.Now()
	o := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", 1, now), k)
	if _, err := b.Add(o); err != nil {
		t.Fatal(err)
	}
	forged := &orderbook.Cancel{ChainID: domain.ChainID, VerifyingContract: domain.VerifyingContract, OrderID: o.ID(), Created: uint64(now.Unix())}
	if err := forged.Sign(other); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cancel(forged); !errors.Is(err, orderbook.ErrWrongSigner) {
		t.Fatalf("cancel by another maker: %v", err)
	}
	c := &orderbook.Cancel{ChainID: domain.ChainID, VerifyingContract: domain.VerifyingContract, OrderID: o.ID(), Created: uint64(now.Unix())}
	if err := c.Sign(k); err != nil {
		t.Fatal(err)
	}
	got, err := b.Cancel(c)
	if err != nil || got.ID() != o.ID() {
		t.Fatalf("cancel: %v, %v", got, err)
	}
	if b.Has(o.ID()) || !b.Cancelled(o.ID()) {
		t.Fatal("order still held or not marked cancelled")
	}
	if _, err := b.Add(o); !errors.Is(err, orderbook.ErrCancelled) {
		t.Fatalf("re-add after cancel: %v", err)
	}
	if _, err := b.Cancel(c); !errors.Is(err, orderbook.ErrDuplicate) {
		t.Fatalf("cancel replay: %v", err)
	}
	// The tombstone goes once the order would have expired anyway.
	if _, err := b.Sweep(time.Unix(int64(o.Expires)+1, 0)); err != nil {
		t.Fatal(err)
	}
	if b.Cancelled(o.ID()) {
		t.Error("tombstone outlived the order's expiry")
	}
}

func TestBookLivenessAndSweep(t *testing.T) {
	b := newBook(t) // TTL 90 s
	k := key(t)
	t0 := time.Unix(1_800_000_000, 0)
	offer := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", 1, t0), k)
	req := orderbooktest.Sign(orderbooktest.Request(domain, "DE", 2, t0), k)
	for _, o := range []*orderbook.Order{offer, req} {
		if _, err := b.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	// A heartbeat at t0+60 keeps the offer alive until t0+150.
	d, n := orderbook.DigestOf([]*orderbook.Order{offer, req})
	h := &orderbook.Heartbeat{ChainID: domain.ChainID, VerifyingContract: domain.VerifyingContract, Country: "DE", Created: uint64(t0.Unix()) + 60, Count: n, Digest: d}
	if err := h.Sign(k); err != nil {
		t.Fatal(err)
	}
	inSync, err := b.ApplyHeartbeat(h)
	if err != nil || !inSync {
		t.Fatalf("heartbeat: in sync %v, %v", inSync, err)
	}
	if removed, _ := b.Sweep(t0.Add(120 * time.Second)); len(removed) != 0 {
		t.Fatalf("swept %d orders at t0+120, want 0", len(removed))
	}
	removed, err := b.Sweep(t0.Add(151 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ID() != offer.ID() {
		t.Fatalf("swept %d orders at t0+151, want the offer only", len(removed))
	}
	if !b.Has(req.ID()) {
		t.Fatal("request swept with the offer: requests live until they expire")
	}
	// A digest that names an order the book lacks is reported.
	d2, n2 := orderbook.DigestOf([]*orderbook.Order{offer, req})
	h2 := *h
	h2.Created, h2.Digest, h2.Count = h.Created+1, d2, n2
	if err := h2.Sign(k); err != nil {
		t.Fatal(err)
	}
	if inSync, _ := b.ApplyHeartbeat(&h2); inSync {
		t.Error("digest of two orders reported in sync with a book of one")
	}
	// An older heartbeat is stale.
	if _, err := b.ApplyHeartbeat(h); !errors.Is(err, orderbook.ErrStale) {
		t.Errorf("old heartbeat: %v", err)
	}
	if got, err := b.HeartbeatOf(h.Maker, "DE"); err != nil || got.Created != h2.Created {
		t.Errorf("latest heartbeat %v, %v", got, err)
	}
}

func TestBookOwnOrdersLiveUntilExpiry(t *testing.T) {
	k := key(t)
	b, db := openBook(t, t.TempDir(), crypto.PubkeyToAddress(k.PublicKey))
	defer db.Close()
	t0 := time.Unix(1_800_000_000, 0)
	o := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", 1, t0), k)
	if _, err := b.Add(o); err != nil {
		t.Fatal(err)
	}
	if removed, _ := b.Sweep(t0.Add(30 * time.Minute)); len(removed) != 0 {
		t.Fatal("own offer swept before it expired")
	}
}

func TestBookPagingAndRestart(t *testing.T) {
	dir := t.TempDir()
	b, db := openBook(t, dir, [20]byte{})
	now := time.Now()
	var keys []*orderbook.Order
	for i := 0; i < 25; i++ {
		o := orderbooktest.Offer(domain, "DE", uint64(i+1), now)
		o.PricePerHour.SetInt64(int64(1000 + (i*7)%25))
		keys = append(keys, orderbooktest.Sign(o, key(t)))
		if _, err := b.Add(keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	other := orderbooktest.Sign(orderbooktest.Offer(domain, "US", 1, now), key(t))
	if _, err := b.Add(other); err != nil {
		t.Fatal(err)
	}
	// Pages of 10 cover the shard exactly once, in price order.
	seen := map[string]bool{}
	var last int64 = -1
	var after []byte
	pages := 0
	for {
		page, next, err := b.Page(orderbook.Query{Country: "DE", After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page {
			if o.Shard() != "DE" || seen[o.ID().Hex()] {
				t.Fatalf("page has %s order or a repeat", o.Shard())
			}
			seen[o.ID().Hex()] = true
			if p := o.PricePerHour.Int64(); p < last {
				t.Fatalf("price %d after %d", p, last)
			} else {
				last = p
			}
		}
		if next == nil {
			break
		}
		after = next
	}
	if len(seen) != 25 || pages != 3 {
		t.Fatalf("paged %d orders in %d pages, want 25 in 3", len(seen), pages)
	}
	// Restart: the book is still there.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b2, db2 := openBook(t, dir, [20]byte{})
	defer db2.Close()
	if n := b2.Count(); n != 26 {
		t.Fatalf("after restart: %d orders, want 26", n)
	}
	for _, o := range keys {
		if !b2.Has(o.ID()) {
			t.Fatalf("after restart: lost %s", o.ID().Hex())
		}
	}
}

func TestBookListWithIDs(t *testing.T) {
	b := newBook(t)
	k1, k2 := key(t), key(t)
	m1, m2 := crypto.PubkeyToAddress(k1.PublicKey), crypto.PubkeyToAddress(k2.PublicKey)
	now := time.Now()
	var all []*orderbook.Order
	for i, cc := range []string{"DE", "US", "DE", "DE", "US", "DE"} {
		for j, k := range []*ecdsa.PrivateKey{k1, k2} {
			nonce := uint64(10*i + j)
			o := orderbooktest.Offer(domain, cc, nonce, now)
			if (i+j)%2 == 0 {
				o = orderbooktest.Request(domain, cc, nonce, now)
			}
			o.PricePerHour.SetInt64(int64(900 + (i*7+j*3)%11))
			all = append(all, orderbooktest.Sign(o, k))
			if _, err := b.Add(all[len(all)-1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A maker's orders are read from the maker index, a shard's from the
	// shard index; a kind or maker is filtered after loading, which must
	// drop ids with their orders.
	for _, q := range []orderbook.Query{
		{},
		{Country: "DE"},
		{Country: "DE", Kind: orderbook.KindOffer},
		{Country: "DE", Maker: m1},
		{Maker: m1, Kind: orderbook.KindRequest},
		{Maker: m2},
		{Country: "US", Kind: orderbook.KindRequest, Maker: m2},
		{Country: "DE", Kind: orderbook.KindOffer, Maker: m1},
		{Country: "FR"},
	} {
		orders, ids, err := b.ListWithIDs(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != len(orders) {
			t.Fatalf("%+v: %d ids for %d orders", q, len(ids), len(orders))
		}
		want := 0
		for _, o := range all {
			if (q.Country == "" || o.Shard() == q.Country) && (q.Kind == 0 || o.Kind == q.Kind) && (q.Maker == common.Address{} || o.Maker == q.Maker) {
				want++
			}
		}
		if len(orders) != want || (want == 0) != (q.Country == "FR") {
			t.Fatalf("%+v: %d orders, want %d", q, len(orders), want)
		}
		list, err := b.List(q)
		if err != nil || len(list) != len(orders) {
			t.Fatalf("%+v: List has %d orders (%v), ListWithIDs %d", q, len(list), err, len(orders))
		}
		for i, o := range orders {
			if ids[i] != o.ID() {
				t.Fatalf("%+v: ids[%d] %s, order's id %s", q, i, ids[i].Hex(), o.ID().Hex())
			}
			if list[i].ID() != ids[i] {
				t.Fatalf("%+v: List and ListWithIDs differ at %d", q, i)
			}
		}
	}
}
