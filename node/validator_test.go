package node_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestGossipRejectsBadOrders: a node that publishes the bad-order table
// raw (skipping its own checks) gets none of it into its peers' books, and
// its GossipSub score at each peer drops below zero. A good order sent after
// the table still arrives, so the table did not just fail to send.
func TestGossipRejectsBadOrders(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 3, Countries: []string{"DE"}})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 2); err != nil {
		t.Fatal(err)
	}
	evil, peers := tn.Members[0], tn.Members[1:]
	k, _ := ethcrypto.GenerateKey()
	other, _ := ethcrypto.GenerateKey()
	now := time.Now()
	fx := orderbooktest.BadOrders(evil.Node.Status(ctx).Domain(), "DE", k, other, now)
	// The fixture's state goes everywhere first, by the valid path.
	for _, o := range fx.Seed {
		if err := evil.Node.Import(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range fx.Cancels {
		for _, m := range tn.Members {
			if _, err := m.Node.Book().Cancel(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := testnet.Await(ctx, func() error {
		for _, m := range peers {
			for i, o := range fx.Seed {
				if !m.Node.Book().Has(o.ID()) && !m.Node.Book().Cancelled(o.ID()) {
					return fmt.Errorf("%s lacks seed %s (%d of %d); metrics: %v", m.Name, o.ID().Hex(), i, len(fx.Seed), gossipCounts(m))
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Each bad message, through the validator as if a peer forwarded it
	// (a peer of its own each, so that the spam budget of none runs out):
	// the verdict the table says, and nothing enters the book.
	judge := peers[0].Node
	before := judge.Book().Count()
	for i, c := range fx.Cases {
		want := map[orderbook.Verdict]pubsub.ValidationResult{
			orderbook.Reject: pubsub.ValidationReject, orderbook.Ignore: pubsub.ValidationIgnore,
		}[c.Verdict]
		if got := judge.ValidateGossip(peer.ID(fmt.Sprintf("sender-%d", i)), "DE", c.Msg); got != want {
			t.Errorf("%s: validator says %v, want %v (%s)", c.Name, got, want, c.Verdict)
		}
	}
	if after := judge.Book().Count(); after != before {
		t.Fatalf("book went from %d to %d orders on bad messages", before, after)
	}

	// Each bad order, imported through the node's real HTTP API: a 4xx with
	// a body naming the problem, and nothing enters the book.
	cl := sdk.NewClient("http://"+judge.APIAddr().String(), judge.Token())
	for _, c := range fx.Cases {
		if c.IsCancel {
			continue // not an order; the cancel replay is DELETE twice (TestAPICancelTwice)
		}
		_, err := cl.ImportOrderJSON(ctx, c.Msg)
		var apiErr *sdk.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode < 400 || apiErr.StatusCode >= 500 || apiErr.Message == "" {
			t.Errorf("%s: import answered %v, want a 4xx naming the problem", c.Name, err)
			continue
		}
		t.Logf("%-28s %d %-20s %s", c.Name, apiErr.StatusCode, apiErr.Code, apiErr.Message)
	}
	if after := judge.Book().Count(); after != before {
		t.Fatalf("book went from %d to %d orders on bad imports", before, after)
	}

	// Over the wire: the evil node publishes the table raw (skipping its
	// own checks); at every peer its score drops below zero or (the judge,
	// who has just judged the table once) its spam budget is spent and it is
	// throttled or banned; nothing of it lands in a book.
	for _, c := range fx.Cases {
		if err := evil.Node.Publish(ctx, "DE", c.Msg); err != nil {
			t.Fatalf("%s: publish: %v", c.Name, err)
		}
	}
	if err := testnet.Await(ctx, func() error {
		for _, m := range peers {
			st := m.Node.SpamState(evil.Node.PeerID())
			if s := m.Node.PeerScores()[evil.Node.PeerID()]; s >= 0 && !st.Throttled && !st.Banned {
				return fmt.Errorf("%s scores the evil node %.1f, want < 0, and has not throttled it (%+v)", m.Name, s, st)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, m := range peers {
		if n := m.Node.Book().Count(); n != before {
			t.Errorf("%s holds %d orders, want %d", m.Name, n, before)
		}
	}
	// The honest peers still gossip with each other and score each other
	// well: a good order from one reaches the other.
	good, err := peers[0].Node.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if !peers[1].Node.Book().Has(good.ID()) {
			return fmt.Errorf("%s lacks the good order", peers[1].Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := peers[1].Node.PeerScores()[peers[0].Node.PeerID()]; s < 0 {
		t.Errorf("honest peer scored %.1f", s)
	}
	t.Logf("%d bad messages; evil node's score at %s: %.1f", len(fx.Cases), peers[0].Name,
		peers[0].Node.PeerScores()[evil.Node.PeerID()])
}

func gossipCounts(m *testnet.Member) string {
	mfs, _ := m.Node.Registry().Gather()
	out := ""
	for _, mf := range mfs {
		if mf.GetName() != "ipsx_gossip_messages_total" && mf.GetName() != "ipsx_gossip_dropped_total" {
			continue
		}
		for _, me := range mf.GetMetric() {
			for _, l := range me.GetLabel() {
				out += l.GetValue() + "/"
			}
			out += fmt.Sprintf("=%v ", me.GetCounter().GetValue())
		}
	}
	return out
}

// TestAPICancelTwice: cancelling an order through the API works once; the
// replay is a 409.
func TestAPICancelTwice(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 1, Countries: []string{"DE"}})
	ctx := awaitCtx(t)
	n := tn.Members[0].Node
	cl := sdk.NewClient("http://"+n.APIAddr().String(), n.Token())
	o, err := cl.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CancelOrder(ctx, o.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = cl.CancelOrder(ctx, o.ID())
	var apiErr *sdk.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 {
		t.Fatalf("second cancel: %v, want 409", err)
	}
	if _, err := cl.CancelOrder(ctx, common.Hash{7}); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("cancel of an unknown order: %v, want 404", err)
	}
}
