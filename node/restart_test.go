package node_test

import (
	"fmt"
	"testing"

	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/testnet"
)

// TestRestartKeepsBook: a node restarted on the same data dir has its own
// live orders and the book it had, and its peers still hold its orders.
func TestRestartKeepsBook(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 3, Countries: []string{"DE", "US"}})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 2); err != nil {
		t.Fatal(err)
	}
	a, b := tn.Members[0], tn.Members[1]
	own, err := a.Node.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := b.Node.CreateOffer(ctx, offerParams("US"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if !a.Node.Book().Has(theirs.ID()) {
			return fmt.Errorf("%s lacks %s's offer", a.Name, b.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before, err := a.Node.Book().List(orderbook.Query{})
	if err != nil {
		t.Fatal(err)
	}
	addr := a.Node.Address()
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := tn.Restart(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.Node.Address() != addr {
		t.Fatalf("restarted with address %s, was %s", a.Node.Address().Hex(), addr.Hex())
	}
	after, err := a.Node.Book().List(orderbook.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("book had %d orders, has %d after restart", len(before), len(after))
	}
	mine, err := a.Node.Orders(ctx, orderbook.Query{Maker: addr})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].ID() != own.ID() {
		t.Fatalf("own orders after restart: %d, want the one offer", len(mine))
	}
	// A new order after the restart takes a fresh nonce: it must not
	// supersede the old one.
	again, err := a.Node.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Nonce <= own.Nonce {
		t.Fatalf("nonce %d after restart, before %d: reused", again.Nonce, own.Nonce)
	}
	if !a.Node.Book().Has(own.ID()) {
		t.Fatal("the new order superseded the old one")
	}
	st := a.Node.Status(ctx)
	if st.OwnOrders != 2 {
		t.Errorf("status says %d own orders, want 2", st.OwnOrders)
	}
}

// TestAddressBook: a node restarted with no bootstrap peers (and nobody
// dialling it) reconnects through the address book it kept, and gets the
// orders it missed meanwhile.
func TestAddressBook(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 3, Countries: []string{"DE"}})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 2); err != nil {
		t.Fatal(err)
	}
	m := tn.Members[2]
	if len(m.Node.Status(ctx).ListenAddrs) == 0 {
		t.Fatal("no listen addresses")
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	missed, err := tn.Members[0].Node.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.RestartAlone(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if n := m.Node.Status(ctx).Peers; n < 2 {
			return fmt.Errorf("restarted node has %d peers", n)
		}
		if !m.Node.Book().Has(missed.ID()) {
			return fmt.Errorf("restarted node lacks the order published while it was down")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
