package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
	"github.com/ipsx/ipsx/testnet"
)

// TestHeartbeatRepairAndLiveness: an order a peer never got by gossip is
// pulled after the maker's next heartbeat shows a different digest; offers
// stay live while heartbeats come and die when their maker goes.
func TestHeartbeatRepairAndLiveness(t *testing.T) {
	const ttl = 4 * time.Second
	tn := startTestnet(t, testnet.Config{
		Nodes: 2, Countries: []string{"DE"},
		NodeOptions: []node.Option{node.WithLiveness(ttl, time.Second)},
	})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	a, b := tn.Members[0], tn.Members[1]
	// b's join-time order sync must be over, or it (rather than the
	// heartbeat digest) would bring the order b is to miss.
	if err := tn.AwaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	published, err := a.Node.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	// An order that goes into a's book without being gossiped.
	k := a.Node.Key()
	hidden := orderbooktest.Sign(orderbooktest.Offer(a.Node.Status(ctx).Domain(), "DE", 99, time.Now()), k)
	if _, err := a.Node.Book().Add(hidden); err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if !b.Node.Book().Has(hidden.ID()) {
			return fmt.Errorf("%s has not pulled the order it missed", b.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if pulls := counter(t, b.Node, "ipsx_ordersync_digest_pulls_total"); pulls < 1 {
		t.Errorf("no digest pull counted, yet the order arrived (%v)", pulls)
	}
	// Heartbeats keep the offers live well past the TTL...
	deadline := time.Now().Add(2 * ttl)
	if err := testnet.Await(ctx, func() error {
		if !b.Node.Book().Has(published.ID()) {
			return fmt.Errorf("offer died while its maker heartbeats")
		}
		if time.Now().Before(deadline) {
			return fmt.Errorf("waiting")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// ...and once the maker is gone they die.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		b.Node.Sweep()
		if b.Node.Book().Has(published.ID()) || b.Node.Book().Has(hidden.ID()) {
			return fmt.Errorf("offers of a vanished maker still live at %s", b.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
