package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// dealTestConfig shortens the deal protocol's clocks so a whole deal runs
// in seconds.
var dealTestConfig = node.DealConfig{
	IntervalSeconds:    2,
	ProposalTimeout:    3 * time.Second,
	ReservationTimeout: 20 * time.Second,
	FundingTimeout:     15 * time.Second,
	PaymentGrace:       2 * time.Second,
	TxRetry:            2 * time.Second,
	TrafficBudgetGB:    1,
	Tick:               200 * time.Millisecond,
}

const graceSeconds = 3

func startDealNet(t *testing.T, nodes int, countries ...string) (*chain.DevChain, *testnet.Testnet) {
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
		MaxPricePerHour: perSecond(1_000_000_000_000), MaxPricePerGB: "1000000"}
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

// TestDealHappyPath: a request is matched, negotiated, funded, run, paid by
// vouchers and settled; the chain's balances match the last voucher
// exactly, commission included.
func TestDealHappyPath(t *testing.T) {
	dc, tn := startDealNet(t, 2)
	ctx := awaitCtx(t)
	prov, req := tn.Members[0].Node, tn.Members[1].Node
	provBefore, reqBefore := balances(t, ctx, dc, prov), balances(t, ctx, dc, req)
	if _, err := prov.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if prov.Book().Count() == 0 || req.Book().Count() == 0 {
			return fmt.Errorf("offer not spread")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r, err := req.CreateRequest(ctx, dealRequest("DE", 8))
	if err != nil {
		t.Fatal(err)
	}
	active := awaitDeal(t, ctx, req, r.ID().Hex(), "active", "completed", "settled")
	t.Logf("deal %s %s", active.ID, active.Status)
	settledR := awaitDeal(t, ctx, req, r.ID().Hex(), "settled")
	settledP := awaitDeal(t, ctx, prov, r.ID().Hex(), "settled")
	if settledP.Voucher == nil {
		t.Fatal("provider settled without a voucher")
	}
	paid, _ := new(big.Int).SetString(settledP.Voucher.Amount, 10)
	if paid.Sign() <= 0 {
		t.Fatalf("paid %s", paid)
	}
	if settledP.Settled != paid.String() || settledR.Settled != paid.String() {
		t.Errorf("settled %s (provider) / %s (requester), last voucher %s", settledP.Settled, settledR.Settled, paid)
	}
	commission, _ := new(big.Int).SetString(settledP.Commission, 10)
	provAfter, reqAfter := balances(t, ctx, dc, prov), balances(t, ctx, dc, req)
	gotProv := new(big.Int).Sub(provAfter.Escrow, provBefore.Escrow)
	if want := new(big.Int).Sub(paid, commission); gotProv.Cmp(want) != 0 {
		t.Errorf("provider earned %s, want voucher %s - commission %s", gotProv, paid, commission)
	}
	gotReq := new(big.Int).Sub(reqBefore.Escrow, reqAfter.Escrow)
	if gotReq.Cmp(paid) != 0 {
		t.Errorf("requester paid %s, last voucher says %s", gotReq, paid)
	}
	if reqAfter.Reserved.Sign() != 0 {
		t.Errorf("requester still has %s reserved", reqAfter.Reserved)
	}
	t.Logf("paid %s (commission %s) for an 8 s deal; history:", paid, commission)
	for _, e := range settledP.History {
		t.Logf("  %s %-22s %s->%s (%s) %s", e.At.Format("15:04:05"), e.Event, e.From, e.To, e.Status, e.Reason)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
