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
