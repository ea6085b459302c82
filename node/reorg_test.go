package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// TestReorgedDealEvents runs a deal on a dev chain that reorganises twice
// (DevChain.Fork, with sealing paused so that nothing is mined again by
// itself): an Opened event reorged away stops the provider serving and
// takes both sides back to accepted until the requester's resubmitted open
// is mined; a Settled event reorged away takes the provider back to
// completed and its settle is resubmitted and mined again. The chain ends
// with the deal settled once, for the requester's last voucher.
func TestReorgedDealEvents(t *testing.T) {
	dc, tn := startDealNet(t, 2)
	ctx := awaitCtx(t)
	prov, req := tn.Members[0].Node, tn.Members[1].Node
	if _, err := prov.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	beforeOpen := dc.Commit()
	r, err := req.CreateRequest(ctx, dealRequest("DE", 600))
	if err != nil {
		t.Fatal(err)
	}
	d := awaitDeal(t, ctx, prov, r.ID().Hex(), "active")
	id := common.HexToHash(d.ID)
	awaitServing(t, ctx, prov, id, true)

	// The open's block is replaced: the provider stops serving.
	dc.PauseSealing()
	fork(t, dc, beforeOpen)
	awaitServing(t, ctx, prov, id, false)
	awaitDeal(t, ctx, prov, r.ID().Hex(), "accepted")
	awaitDeal(t, ctx, req, r.ID().Hex(), "accepted")
	if s, err := req.Escrow().DealStatus(ctx, id); err != nil || s != chain.StatusNone {
		t.Fatalf("deal on chain after the reorg: %v %v, want none", s, err)
	}
	// The requester's open goes again; mined, the deal runs again.
	awaitPending(t, ctx, req, id, "open")
	dc.ResumeSealing()
	awaitDeal(t, ctx, prov, r.ID().Hex(), "active")
	awaitServing(t, ctx, prov, id, true)

	// The settle's block is replaced: the provider settles again.
	dc.PauseSealing()
	if _, err := req.CloseDeal(ctx, id); err != nil {
		t.Fatal(err)
	}
	awaitPending(t, ctx, prov, id, "settle")
	head, err := dc.Client().HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.ResumeSealing()
	awaitDeal(t, ctx, prov, r.ID().Hex(), "settled")
	dc.PauseSealing()
	fork(t, dc, head.Hash())
	if s, err := req.Escrow().DealStatus(ctx, id); err != nil || s != chain.StatusOpen {
		t.Fatalf("deal on chain after the second reorg: %v %v, want open", s, err)
	}
	awaitHistory(t, ctx, prov, id, "completed")
	awaitPending(t, ctx, prov, id, "settle")
	dc.ResumeSealing()
	pd := awaitDeal(t, ctx, prov, r.ID().Hex(), "settled")
	rd := awaitDeal(t, ctx, req, r.ID().Hex(), "settled")
	if s, err := req.Escrow().DealStatus(ctx, id); err != nil || s != chain.StatusSettled {
		t.Fatalf("deal on chain at the end: %v %v, want settled", s, err)
	}
	if pd.Settled == "" || pd.Settled != rd.Settled || rd.Voucher == nil || pd.Settled != rd.Voucher.Amount {
		t.Fatalf("settled %q (provider) and %q (requester), last voucher %+v: want both the voucher's amount", pd.Settled, rd.Settled, rd.Voucher)
	}
}

// fork replaces the chain after parent with three empty blocks (longer
// than what it replaces only if that was shorter; the dev chain's fork
// choice is the newest head regardless).
func fork(t *testing.T, dc *chain.DevChain, parent common.Hash) {
	t.Helper()
	if err := dc.Fork(parent); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		dc.Commit()
	}
}

func awaitServing(t *testing.T, ctx context.Context, n *node.Node, id common.Hash, want bool) {
	t.Helper()
	if err := testnet.Await(ctx, func() error {
		if _, ok := n.DealServing(id); ok != want {
			return fmt.Errorf("deal %s serving: %v, want %v", id.Hex(), ok, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func awaitPending(t *testing.T, ctx context.Context, n *node.Node, id common.Hash, tx string) {
	t.Helper()
	if err := testnet.Await(ctx, func() error {
		d, err := n.Deal(ctx, id)
		if err != nil {
			return err
		}
		if d.Pending != tx {
			return fmt.Errorf("deal %s pending %q (status %s), want %q", id.Hex(), d.Pending, d.Status, tx)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// awaitHistory waits for an unwound entry in the deal's history that took
// the local side to `to`.
func awaitHistory(t *testing.T, ctx context.Context, n *node.Node, id common.Hash, to string) {
	t.Helper()
	if err := testnet.Await(ctx, func() error {
		d, err := n.Deal(ctx, id)
		if err != nil {
			return err
		}
		for _, e := range d.History {
			if strings.HasSuffix(e.Event, "unwound") && e.To == to {
				return nil
			}
		}
		return fmt.Errorf("deal %s: no unwound entry to %s in %s", id.Hex(), to, historyOf(d))
	}); err != nil {
		t.Fatal(err)
	}
}

func historyOf(d sdk.Deal) string {
	var b strings.Builder
	for _, e := range d.History {
		fmt.Fprintf(&b, "[%s %s->%s] ", e.Event, e.From, e.To)
	}
	return b.String()
}
