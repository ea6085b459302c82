package node_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/testnet"
)

// TestConnLogCoSigned: 40 connections opened at once and closed in a
// scattered order leave both sides with the same connection log (the
// provider numbers connections as it accepts them and both chain them in
// that order; logging each side's closes in its own order made the two
// differ), so the requester's vouchers co-sign heads the provider's log
// had and the deal goes on. A requester whose voucher carries a head the
// provider never had is cut off: its connections fail from then on.
func TestConnLogCoSigned(t *testing.T) {
	prov, req, target := flowDeal(t)
	ctx := awaitCtx(t)
	ds, err := req.Deals(ctx)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deals %v %v", ds, err)
	}
	id := common.HexToHash(ds[0].ID)
	conns, errs := runFlows(t, req, target, 40, true)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
	}
	for _, i := range rand.Perm(len(conns)) {
		conns[i].Close()
	}
	if err := testnet.Await(ctx, func() error {
		ph, pl, _ := prov.ConnLogHead(id)
		rh, rl, _ := req.ConnLogHead(id)
		if pl != 40 || rl != 40 || ph != rh {
			return fmt.Errorf("provider's log %d %s, requester's %d %s", pl, ph.Hex(), rl, rh.Hex())
		}
		d, err := req.Deal(ctx, id)
		if err != nil || d.Voucher == nil || common.HexToHash(d.Voucher.ConnLogHash) != rh {
			return fmt.Errorf("no voucher over the 40 connections yet: %+v %v", d.Voucher, err)
		}
		if !prov.ConnLogMatches(id, rh) {
			return fmt.Errorf("the provider's log never had %s", rh.Hex())
		}
		return nil
	}); err != nil {
		logDeals(t, prov, req)
		t.Fatal(err)
	}
	if d, err := prov.Deal(ctx, id); err != nil || d.Status != "active" {
		t.Fatalf("the provider's deal after the flows: %s %v", d.Status, err)
	}

	// A forged head: the next voucher carries it, the provider stops
	// serving the deal.
	req.ForgeConnLog(id)
	if err := testnet.Await(ctx, func() error {
		// Traffic makes the requester sign its next voucher soon.
		if _, errs := runFlows(t, req, target, 1, false); errs[0] == nil {
			return fmt.Errorf("the provider still serves the deal")
		}
		return nil
	}); err != nil {
		logDeals(t, prov, req)
		t.Fatal(err)
	}
	if prov.ConnLogMatches(id, common.HexToHash("0xbad")) {
		t.Fatal("the forged head matches the provider's log")
	}
}

// TestVoucherAfterProviderRestart: a provider restarted after a deal
// carried traffic has no meter for it until the next connection; a voucher
// arriving before that carries a connection-log head the provider cannot
// check (its log of the earlier run is not loaded) and is taken, not
// refused: the deal settles for the requester's last voucher.
func TestVoucherAfterProviderRestart(t *testing.T) {
	_, tn := startDealNet(t, 2)
	ctx := awaitCtx(t)
	prov, req := tn.Members[0], tn.Members[1].Node
	if _, err := prov.Node.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	r, err := req.CreateRequest(ctx, dealRequest("DE", 15))
	if err != nil {
		t.Fatal(err)
	}
	d := awaitDeal(t, ctx, req, r.ID().Hex(), "active")
	id := common.HexToHash(d.ID)
	if got := curl(t, "--socks5-hostname", req.SOCKSAddr().String(), "--proxy-user", ":"+req.ProxyPassword(), "http://"+whoami(t)+"/"); got != prov.IP {
		t.Fatalf("server saw %q, want %s", got, prov.IP)
	}
	head, n, ok := req.ConnLogHead(id)
	if !ok || n == 0 {
		t.Fatalf("requester's log of the deal: %d entries (%v)", n, ok)
	}
	// The provider's record must hold the traffic before it stops.
	if err := testnet.Await(ctx, func() error {
		pd, err := prov.Node.Deal(ctx, id)
		if err != nil {
			return err
		}
		if pd.Bytes == 0 {
			return fmt.Errorf("provider's record shows no bytes yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := prov.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := tn.Restart(ctx, prov); err != nil {
		t.Fatal(err)
	}
	if !prov.Node.ConnLogMatches(id, head) {
		t.Fatalf("restarted provider refuses the requester's head %s (%d entries) before any new connection", head.Hex(), n)
	}
	pd := awaitDeal(t, ctx, prov.Node, r.ID().Hex(), "settled")
	rd := awaitDeal(t, ctx, req, r.ID().Hex(), "settled")
	if rd.Voucher == nil || pd.Settled != rd.Voucher.Amount {
		t.Fatalf("settled %s, requester's last voucher %+v", pd.Settled, rd.Voucher)
	}
}
