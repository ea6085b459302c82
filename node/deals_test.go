package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ipsx/ipsx/tunnel"
	"github.com/libp2p/go-libp2p"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// dealTestConfig shortens the deal protocol's clocks so a whole deal runs
// in seconds.
var dealTestConfig = node.DealConfig{
	IntervalSeconds:    3,
	ProposalTimeout:    3 * time.Second,
	ReservationTimeout: 20 * time.Second,
	FundingTimeout:     15 * time.Second,
	PaymentGrace:       4 * time.Second, // room for a loaded CI machine
	TxRetry:            2 * time.Second,
	TrafficBudgetGB:    1,
	Tick:               200 * time.Millisecond,
}

const graceSeconds = 3

func startDealNet(t *testing.T, nodes int, countries ...string) (*chain.DevChain, *testnet.Testnet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dc := startGraceChain(t)
	if len(countries) == 0 {
		countries = []string{"DE"}
	}
	tn := startTestnet(t, testnet.Config{Nodes: nodes, Countries: countries, DevChain: dc,
		NodeOptions: []node.Option{node.WithDeals(dealTestConfig)}, Logger: testLogger(t)})
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return dc, tn
}

// perSecond is a price per IP-hour of `wei` per second.
func perSecond(wei int64) string { return new(big.Int).Mul(big.NewInt(wei), big.NewInt(3600)).String() }

func dealOffer(cc string, ips uint32, pricePerSec int64) sdk.OfferParams {
	return sdk.OfferParams{Country: cc, IPType: "residential", IPs: ips, PricePerHour: perSecond(pricePerSec),
		PricePerGB: "1000", MinDuration: 5, MaxDuration: 3600, Bandwidth: 100}
}

func dealRequest(cc string, secs uint32) sdk.RequestParams {
	return sdk.RequestParams{Country: cc, IPType: "any", IPs: 1, Duration: secs,
		MaxPricePerHour: perSecond(10_000_000_000_000), MaxPricePerGB: "1000000"}
}

// awaitDeal waits until the node has a deal for the request in one of the
// wanted statuses.
func awaitDeal(t *testing.T, ctx context.Context, n *node.Node, requestID string, want ...string) sdk.Deal {
	t.Helper()
	var got sdk.Deal
	err := testnet.Await(ctx, func() error {
		deals, err := n.Deals(ctx)
		if err != nil {
			return err
		}
		var seen []string
		for _, d := range deals {
			if d.RequestID != requestID {
				continue
			}
			seen = append(seen, d.Status)
			for _, w := range want {
				if d.Status == w {
					got = d
					return nil
				}
			}
		}
		return fmt.Errorf("deals for %s: %v, want one %v", requestID, seen, want)
	})
	if err != nil {
		t.Fatal(err)
	}
	full, err := n.Deal(ctx, common.HexToHash(got.ID))
	if err != nil {
		t.Fatal(err)
	}
	return full
}

func balances(t *testing.T, ctx context.Context, dc *chain.DevChain, n *node.Node) chain.Balances {
	t.Helper()
	b, err := n.Escrow().Balances(ctx, n.Address())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeals: on a testnet of 3 providers in 2 countries and 2 requesters,
// two requests race for the cheapest provider's last IP: it makes one deal,
// the other requester moves on to the next provider. Both deals are
// negotiated, funded, run, paid by vouchers and settled, and the chain's
// balances match the last vouchers exactly, commission included.
func TestDeals(t *testing.T) {
	dc, tn := startDealNet(t, 5, "DE", "DE", "US")
	ctx := awaitCtx(t)
	cheap, dear, us, reqA, reqB := tn.Members[0].Node, tn.Members[1].Node, tn.Members[2].Node, tn.Members[3].Node, tn.Members[4].Node
	before := map[*node.Node]chain.Balances{}
	for _, n := range []*node.Node{cheap, dear, reqA, reqB} {
		before[n] = balances(t, ctx, dc, n)
	}
	// The requests come first, then the 1-IP offer: both requesters see it
	// at the same moment and race for it. The next provider's offer comes
	// once the first deal is accepted.
	rA, err := reqA.CreateRequest(ctx, dealRequest("DE", 8))
	if err != nil {
		t.Fatal(err)
	}
	rB, err := reqB.CreateRequest(ctx, dealRequest("DE", 8))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := us.CreateOffer(ctx, dealOffer("US", 4, 500_000_000_000)); err != nil {
		t.Fatal(err)
	}
	if _, err := cheap.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		ds, _ := cheap.Deals(ctx)
		if len(ds) == 0 {
			return fmt.Errorf("no deal at the 1-IP provider yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := dear.CreateOffer(ctx, dealOffer("DE", 2, 2_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	dA := awaitDeal(t, ctx, reqA, rA.ID().Hex(), "settled")
	dB := awaitDeal(t, ctx, reqB, rB.ID().Hex(), "settled")
	providers := map[string]bool{dA.Provider: true, dB.Provider: true}
	if !providers[cheap.Address().Hex()] || !providers[dear.Address().Hex()] {
		t.Fatalf("deals with %s and %s; want one with the cheap provider (1 IP) and one with the next", dA.Provider, dB.Provider)
	}
	cheapDeals, err := cheap.Deals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	funded := 0
	for _, d := range cheapDeals {
		switch d.Status {
		case "funded", "active", "completed", "settled":
			funded++
		}
	}
	if funded != 1 {
		t.Errorf("the 1-IP provider ran %d deals, want exactly 1", funded)
	}
	var lost []string
	for _, d := range []sdk.Deal{dA, dB} {
		if d.Provider == dear.Address().Hex() {
			all, _ := map[bool]*node.Node{true: reqA, false: reqB}[d.ID == dA.ID].Deals(ctx)
			for _, x := range all {
				if x.ID != d.ID {
					lost = append(lost, x.Status+"/"+x.Reason)
				}
			}
		}
	}
	t.Logf("the requester that lost the race first had: %v", lost)

	// Money: per deal, the requester's escrow paid exactly its last
	// voucher, the provider got it less the commission.
	for _, d := range []sdk.Deal{dA, dB} {
		prov := map[string]*node.Node{cheap.Address().Hex(): cheap, dear.Address().Hex(): dear}[d.Provider]
		req := map[string]*node.Node{reqA.Address().Hex(): reqA, reqB.Address().Hex(): reqB}[d.Requester]
		pd := awaitDeal(t, ctx, prov, d.RequestID, "settled")
		if pd.Voucher == nil || d.Voucher == nil || pd.Voucher.Amount != d.Voucher.Amount {
			t.Fatalf("vouchers differ: provider %+v, requester %+v", pd.Voucher, d.Voucher)
		}
		paid, _ := new(big.Int).SetString(pd.Voucher.Amount, 10)
		commission, _ := new(big.Int).SetString(pd.Commission, 10)
		if paid.Sign() <= 0 || pd.Settled != paid.String() || d.Settled != paid.String() {
			t.Errorf("deal %s: settled %s / %s, voucher %s", d.ID, pd.Settled, d.Settled, paid)
		}
		after := balances(t, ctx, dc, prov)
		if got, want := new(big.Int).Sub(after.Escrow, before[prov].Escrow), new(big.Int).Sub(paid, commission); got.Cmp(want) != 0 {
			t.Errorf("provider earned %s, want voucher %s - commission %s", got, paid, commission)
		}
		ra := balances(t, ctx, dc, req)
		if got := new(big.Int).Sub(before[req].Escrow, ra.Escrow); got.Cmp(paid) != 0 || ra.Reserved.Sign() != 0 {
			t.Errorf("requester paid %s with %s still reserved; last voucher %s", got, ra.Reserved, paid)
		}
		if want := new(big.Int).Div(new(big.Int).Mul(paid, big.NewInt(100)), big.NewInt(10_000)); commission.Cmp(want) != 0 {
			t.Errorf("commission %s, want 1%% of %s = %s", commission, paid, want)
		}
		t.Logf("deal %s: %s -> %s paid %s (commission %s)", d.ID[:10], d.Requester[:8], d.Provider[:8], paid, commission)
	}
	for _, e := range dA.History {
		t.Logf("  %s %-22s %s->%s (%s) %s", e.At.Format("15:04:05"), e.Event, e.From, e.To, e.Status, e.Reason)
	}
}

// TestProviderVanishes: the provider disappears after the deal is funded;
// the requester gets everything back by refund after the deadline and the
// escrow's grace.
func TestProviderVanishes(t *testing.T) {
	dc, tn := startDealNet(t, 2)
	ctx := awaitCtx(t)
	prov, req := tn.Members[0], tn.Members[1].Node
	before := balances(t, ctx, dc, req)
	if _, err := prov.Node.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	r, err := req.CreateRequest(ctx, dealRequest("DE", 6))
	if err != nil {
		t.Fatal(err)
	}
	awaitDeal(t, ctx, req, r.ID().Hex(), "funded", "active")
	if err := prov.Stop(); err != nil {
		t.Fatal(err)
	}
	d := awaitDeal(t, ctx, req, r.ID().Hex(), "refunded")
	after := balances(t, ctx, dc, req)
	if after.Escrow.Cmp(before.Escrow) != 0 || after.Reserved.Sign() != 0 {
		t.Errorf("after refund: free %s (before %s), reserved %s", after.Escrow, before.Escrow, after.Reserved)
	}
	if d.Refunded != d.MaxAmount {
		t.Errorf("refunded %s of %s locked", d.Refunded, d.MaxAmount)
	}
}

// TestRequesterStopsPaying: the requester disappears mid-deal; the provider
// stops serving once the paid-ahead interval is used up and settles what
// was paid.
func TestRequesterStopsPaying(t *testing.T) {
	dc, tn := startDealNet(t, 2)
	ctx := awaitCtx(t)
	prov, req := tn.Members[0].Node, tn.Members[1]
	before := balances(t, ctx, dc, prov)
	if _, err := prov.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req.Node, 1)
	r, err := req.Node.CreateRequest(ctx, dealRequest("DE", 600))
	if err != nil {
		t.Fatal(err)
	}
	active := awaitDeal(t, ctx, prov, r.ID().Hex(), "active")
	// The deal is persisted as active before the tunnel is opened for it.
	if err := testnet.Await(ctx, func() error {
		if _, ok := prov.DealServing(common.HexToHash(active.ID)); !ok {
			return fmt.Errorf("active deal not served")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reqKey := req.Node.Key()
	if err := req.Stop(); err != nil {
		t.Fatal(err)
	}
	// Once the paid-ahead interval is used up the provider stops serving;
	// the requester's own identity can no longer open a tunnel for the deal.
	if err := testnet.Await(ctx, func() error {
		if _, ok := prov.DealServing(common.HexToHash(active.ID)); ok {
			return fmt.Errorf("provider still serves the unpaid deal")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pk, err := node.P2PKey(reqKey)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(pk), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Connect(ctx, prov.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, prov.PeerID(), tunnel.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tunnel.OpenStream(ctx, s, tunnel.Header{DealID: common.HexToHash(active.ID), Time: time.Now(), Target: "127.0.0.1:9"})
	if !errors.Is(err, tunnel.ErrNotPaid) && !errors.Is(err, tunnel.ErrDealInactive) {
		t.Errorf("tunnel from the requester that stopped paying: %v, want refused (not paid or inactive)", err)
	}
	t.Logf("requester that stopped paying: %v", err)
	d := awaitDeal(t, ctx, prov, r.ID().Hex(), "settled")
	if d.Reason != "payment-stalled" {
		t.Errorf("deal ended for %q, want payment-stalled", d.Reason)
	}
	if _, ok := prov.DealServing(common.HexToHash(d.ID)); ok {
		t.Error("provider still serves a deal nobody pays for")
	}
	paid, _ := new(big.Int).SetString(d.Voucher.Amount, 10)
	commission, _ := new(big.Int).SetString(d.Commission, 10)
	if d.Settled != paid.String() {
		t.Errorf("settled %s, last voucher %s", d.Settled, paid)
	}
	after := balances(t, ctx, dc, prov)
	if got := new(big.Int).Sub(after.Escrow, before.Escrow); got.Cmp(new(big.Int).Sub(paid, commission)) != 0 {
		t.Errorf("provider earned %s, want %s - %s", got, paid, commission)
	}
	// Paid ahead at most one interval beyond what was served: the
	// provider's loss is bounded by the same interval.
	max := new(big.Int).SetUint64(uint64(d.Deadline.Sub(d.Start).Seconds()))
	max.Mul(max, big.NewInt(1_000_000_000_000))
	if paid.Cmp(max) >= 0 {
		t.Errorf("paid %s for a deal cut short, the whole deal costs %s", paid, max)
	}
	for _, e := range d.History {
		t.Logf("  %s %-22s %s->%s (%s) %s", e.At.Format("15:04:05"), e.Event, e.From, e.To, e.Status, e.Reason)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()}))
}

// TestDealSurvivesRestart: a provider restarted mid-deal comes back with
// the deal from its database, keeps serving it, and settles it at the end
// with the requester's last voucher.
func TestDealSurvivesRestart(t *testing.T) {
	_, tn := startDealNet(t, 2)
	ctx := awaitCtx(t)
	prov, req := tn.Members[0], tn.Members[1].Node
	if _, err := prov.Node.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	r, err := req.CreateRequest(ctx, dealRequest("DE", 12))
	if err != nil {
		t.Fatal(err)
	}
	active := awaitDeal(t, ctx, prov.Node, r.ID().Hex(), "active")
	if err := prov.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := tn.Restart(ctx, prov); err != nil {
		t.Fatal(err)
	}
	back, err := prov.Node.Deal(ctx, common.HexToHash(active.ID))
	if err != nil {
		t.Fatalf("deal lost in the restart: %v", err)
	}
	if back.Status != "active" && back.Status != "completed" && back.Status != "settled" {
		t.Fatalf("deal came back %s", back.Status)
	}
	d := awaitDeal(t, ctx, prov.Node, r.ID().Hex(), "settled")
	rd := awaitDeal(t, ctx, req, r.ID().Hex(), "settled")
	if d.Voucher == nil || d.Settled != d.Voucher.Amount || rd.Settled != d.Settled {
		t.Fatalf("settled %s / %s, provider's last voucher %+v", d.Settled, rd.Settled, d.Voucher)
	}
	if len(d.History) < len(active.History) {
		t.Errorf("history shrank from %d to %d entries", len(active.History), len(d.History))
	}
	for _, e := range d.History {
		t.Logf("  %s %-22s %s->%s (%s) %s", e.At.Format("15:04:05"), e.Event, e.From, e.To, e.Status, e.Reason)
	}
}

// startGraceChain starts a dev chain whose escrow refunds graceSeconds
// after a deal's deadline.
func startGraceChain(t *testing.T) *chain.DevChain {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := chain.DefaultDevChainConfig()
	cfg.GraceSeconds = graceSeconds
	dc, err := chain.StartDevChain(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	return dc
}

// awaitOffers waits until n holds at least want orders in its book.
func awaitOffers(t *testing.T, ctx context.Context, n *node.Node, want int) {
	t.Helper()
	if err := testnet.Await(ctx, func() error {
		if got := n.Book().Count(); got < want {
			return fmt.Errorf("%d orders in the book, want %d", got, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestDealActiveWithoutTick: with the deal tick an hour long, a deal still
// goes from request to active on both sides, because what the set-up waits
// for wakes the driver: a new request the proposer, the requester's mined
// open transaction and the provider's first voucher of a deal not yet
// seen funded the chain watcher.
func TestDealActiveWithoutTick(t *testing.T) {
	cfg := dealTestConfig
	cfg.Tick = time.Hour
	dc := startGraceChain(t)
	tn := startTestnet(t, testnet.Config{Nodes: 2, Countries: []string{"DE"}, DevChain: dc,
		NodeOptions: []node.Option{node.WithDeals(cfg)}, Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	prov, req := tn.Members[0].Node, tn.Members[1].Node
	if _, err := prov.CreateOffer(ctx, dealOffer("DE", 2, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if n := req.Book().Count(); n < 1 {
			return fmt.Errorf("requester sees %d offers", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r, err := req.CreateRequest(ctx, dealRequest("DE", 600))
	if err != nil {
		t.Fatal(err)
	}
	d := awaitDeal(t, ctx, req, r.ID().Hex(), "active")
	awaitDeal(t, ctx, prov, r.ID().Hex(), "active")
	t.Logf("deal %s active on both sides", d.ID)
}

// testLogLevel is info, or debug with IPSX_TEST_DEBUG set.
func testLogLevel() slog.Level {
	if os.Getenv("IPSX_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
