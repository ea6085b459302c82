package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

func TestDeals(t *testing.T) {
	c, b := newClient(t)
	ctx := t.Context()

	deals, err := c.Deals(ctx)
	if err != nil || len(deals) != 0 {
		t.Fatalf("no deals yet: %v: %v", deals, err)
	}
	active := b.ActiveDeal(common.Hash{1})
	over := b.ActiveDeal(common.Hash{2})
	over.Status, over.Reason = "settled", "deadline"
	b.PutDeal(active)
	b.PutDeal(over)

	deals, err = c.Deals(ctx)
	if err != nil || len(deals) != 2 || deals[0].ID != over.ID || deals[1].ID != active.ID {
		t.Fatalf("deals %+v: %v", deals, err)
	}
	d, err := c.Deal(ctx, common.Hash{1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "active" || d.Role != "requester" || d.Requester != b.Maker().Hex() || len(d.History) != 3 ||
		d.Voucher == nil || d.Voucher.Bytes != 1<<20 || !d.Deadline.Equal(active.Deadline) {
		t.Fatalf("deal %+v", d)
	}

	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := c.CloseDeal(ctx, common.Hash{1})
	if err != nil || closed.Status != "completed" || len(closed.History) != 4 {
		t.Fatalf("close: %+v: %v", closed, err)
	}
	select {
	case ev := <-events:
		var ed sdk.Deal
		if ev.Type != "deal.updated" || json.Unmarshal(ev.Data, &ed) != nil || ed.ID != active.ID || ed.Status != "completed" {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no deal.updated event")
	}
}

func TestDealErrors(t *testing.T) {
	c, b := newClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	over := b.ActiveDeal(common.Hash{2})
	over.Status = "expired"
	b.PutDeal(over)
	done := b.ActiveDeal(common.Hash{3})
	done.Status = "completed"
	b.PutDeal(done)

	var ae *sdk.APIError
	_, err := c.Deal(ctx, common.Hash{9})
	if !errors.As(err, &ae) || ae.StatusCode != 404 || !errors.Is(err, agreement.ErrUnknownDeal) || errors.Is(err, orderbook.ErrNotFound) {
		t.Fatalf("unknown deal: %v", err)
	}
	if _, err := c.CloseDeal(ctx, common.Hash{9}); !errors.Is(err, agreement.ErrUnknownDeal) {
		t.Fatalf("close unknown deal: %v", err)
	}
	if _, err := c.CloseDeal(ctx, common.Hash{2}); !errors.As(err, &ae) || ae.StatusCode != 409 || !errors.Is(err, agreement.ErrDealOver) {
		t.Fatalf("close an expired deal: %v", err)
	}
	if _, err := c.CloseDeal(ctx, common.Hash{3}); !errors.As(err, &ae) || ae.Code != "not_now" || !errors.Is(err, agreement.ErrUnexpected) {
		t.Fatalf("close a completed deal: %v", err)
	}
	// An order's 404 stays an orderbook error.
	if _, err := c.Order(ctx, common.Hash{9}); !errors.Is(err, orderbook.ErrNotFound) || errors.Is(err, agreement.ErrUnknownDeal) {
		t.Fatalf("unknown order: %v", err)
	}
}
