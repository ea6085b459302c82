package node_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/geo"
	"github.com/ipsx/ipsx/geo/geotest"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// TestLocation: offers located from a geolocation database (verified),
// declared (unverified), and a provider whose own database lies about its
// address (mismatched): the requester's check of each provider's address
// on the deal's connection, and the local reputation that follows.
func TestLocation(t *testing.T) {
	// Node i listens and exits on 127.0.0.(11+i).
	truth := geotest.WriteT(t,
		geotest.Entry{Prefix: netip.MustParsePrefix("127.0.0.11/32"), Loc: geo.Location{Country: "DE", Region: "BE", City: "Berlin", ASN: 3320}},
		geotest.Entry{Prefix: netip.MustParsePrefix("127.0.0.12/32"), Loc: geo.Location{Country: "DE", Region: "HH", City: "Hamburg"}},
		geotest.Entry{Prefix: netip.MustParsePrefix("127.0.0.13/32"), Loc: geo.Location{Country: "FR", City: "Paris"}},
	)
	forged := geotest.WriteT(t, geotest.Entry{Prefix: netip.MustParsePrefix("127.0.0.13/32"), Loc: geo.Location{Country: "DE", City: "Berlin"}})
	dbs := map[int][]string{0: {truth}, 2: {forged}, 3: {truth}}
	dc := startGraceChain(t)
	tn := startTestnet(t, testnet.Config{Nodes: 4, Countries: []string{"DE"}, DevChain: dc,
		NodeOptions: []node.Option{node.WithDeals(dealTestConfig)}, Logger: testLogger(t),
		GeoIP: func(i int) []string { return dbs[i] }})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	located, declared, liar, req := tn.Members[0].Node, tn.Members[1].Node, tn.Members[2].Node, tn.Members[3].Node

	// Offers and what each carries.
	noCountry := dealOffer("", 1, 1_000_000_000_000)
	if _, err := declared.CreateOffer(ctx, noCountry); !errors.Is(err, orderbook.ErrOutOfRange) {
		t.Fatalf("offer without a country and without a database: %v, want out of range", err)
	}
	other := dealOffer("FR", 1, 1_000_000_000_000)
	if o, err := located.CreateOffer(ctx, other); err != nil || !o.Unverified {
		t.Fatalf("offer declaring FR from a DE address: %v %+v, want unverified", err, o)
	}
	if _, err := located.Cancel(ctx, mustLast(t, located).ID()); err != nil {
		t.Fatal(err)
	}

	var reqs []string
	for range 3 {
		r, err := req.CreateRequest(ctx, dealRequest("DE", 6))
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r.ID().Hex())
	}
	offers := map[string]*orderbook.Order{}
	for name, p := range map[string]*node.Node{"located": located, "declared": declared, "liar": liar} {
		params := noCountry
		if p == declared {
			params = dealOffer("DE", 1, 1_000_000_000_000)
		}
		o, err := p.CreateOffer(ctx, params)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		offers[name] = o
	}
	if o := offers["located"]; o.Unverified || o.Location != (orderbook.Location{Country: "DE", Region: "BE", City: "Berlin", ASN: 3320}) {
		t.Fatalf("located offer: %+v unverified=%v, want the database's Berlin, verified", o.Location, o.Unverified)
	}
	if o := offers["declared"]; !o.Unverified || o.Location.Country != "DE" {
		t.Fatalf("declared offer: %+v unverified=%v, want DE, unverified", o.Location, o.Unverified)
	}
	if o := offers["liar"]; o.Unverified || o.Location.Country != "DE" {
		t.Fatalf("liar's offer: %+v unverified=%v, want what its forged database says", o.Location, o.Unverified)
	}

	// The requester makes one deal with each and checks where each is.
	want := map[string]sdk.GeoCheck{
		located.Address().Hex():  {IP: "127.0.0.11", Claimed: "DE", Country: "DE", Result: "match"},
		declared.Address().Hex(): {IP: "127.0.0.12", Claimed: "DE", Unverified: true, Country: "DE", Result: "match"},
		liar.Address().Hex():     {IP: "127.0.0.13", Claimed: "DE", Country: "FR", Result: "mismatch"},
	}
	seen := map[string]bool{}
	for _, id := range reqs {
		d := awaitDeal(t, ctx, req, id, "settled")
		if d.Geo == nil || *d.Geo != want[d.Provider] {
			t.Errorf("deal with %s: geo %+v, want %+v", d.Provider, d.Geo, want[d.Provider])
		}
		seen[d.Provider] = true
	}
	if len(seen) != 3 {
		t.Fatalf("deals with %v, want one with each provider", seen)
	}
	rep := req.Reputation(ctx, []common.Address{located.Address(), declared.Address(), liar.Address()})
	for addr, r := range rep {
		mism := uint32(0)
		if addr == liar.Address().Hex() {
			mism = 1
		}
		if r.Completed != 1 || r.GeoChecks != 1 || r.GeoMismatches != mism || r.Score != 1-4*int64(mism) {
			t.Errorf("reputation of %s: %+v", addr, r)
		}
	}
	if len(rep) != 3 {
		t.Fatalf("reputation for %d providers, want 3: %v", len(rep), rep)
	}
	// Ranking after the match: the mismatched provider last, the declared
	// one after the verified one of equal standing.
	ranked := req.RankOffers([]*orderbook.Order{offers["liar"], offers["declared"], offers["located"]})
	if got := fmt.Sprint(ranked[0].Maker, ranked[1].Maker, ranked[2].Maker); got != fmt.Sprint(located.Address(), declared.Address(), liar.Address()) {
		t.Fatalf("ranked %s", got)
	}
}

func mustLast(t *testing.T, n *node.Node) *orderbook.Order {
	t.Helper()
	own, err := n.Orders(t.Context(), orderbook.Query{Maker: n.Address()})
	if err != nil || len(own) == 0 {
		t.Fatalf("own orders: %v %d", err, len(own))
	}
	return own[len(own)-1]
}
