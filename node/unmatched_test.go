package node_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// TestRequestUnmatched: a request that the book's offers cannot fill (the
// offer asks 50 per GB, the request allows 0, as the README's example did)
// fires request.unmatched after the unmatched delay, once, naming the
// offer and the reason; GET /v1/requests/{id} says the same.
func TestRequestUnmatched(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2, Countries: []string{"DE"},
		NodeOptions: []node.Option{node.WithUnmatchedAfter(300 * time.Millisecond)}})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	provider, requester := tn.Members[0].Node, tn.Members[1].Node
	pc := sdk.NewClient("http://"+provider.APIAddr().String(), provider.Token())
	rc := sdk.NewClient("http://"+requester.APIAddr().String(), requester.Token())
	off, err := pc.CreateOffer(ctx, offerParams("DE")) // 1000 per hour, 50 per GB
	if err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if !requester.Book().Has(off.ID()) {
			return fmt.Errorf("offer not at the requester yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	events, err := rc.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, err := rc.CreateRequest(ctx, sdk.RequestParams{Country: "DE", IPType: "any", IPs: 1, Duration: 3600,
		MaxPricePerHour: "0.005tok", MaxPricePerGB: "0"})
	if err != nil {
		t.Fatal(err)
	}
	var got *sdk.UnmatchedEvent
	deadline := time.After(30 * time.Second)
	for got == nil {
		select {
		case ev := <-events:
			if ev.Type != "request.unmatched" {
				continue
			}
			var u sdk.UnmatchedEvent
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				t.Fatal(err)
			}
			got = &u
		case <-deadline:
			t.Fatal("no request.unmatched event")
		}
	}
	if got.Request.ID() != req.ID() || len(got.Candidates) != 1 || got.Candidates[0].Offer.ID() != off.ID() ||
		got.Candidates[0].Reason != "price_per_gb" {
		t.Fatalf("event %+v", got)
	}
	d, err := rc.RequestDetail(ctx, req.ID())
	if err != nil {
		t.Fatal(err)
	}
	if d.Matched || len(d.Candidates) != 1 || d.Candidates[0].Reason != "price_per_gb" ||
		d.Candidates[0].Detail != "asks 50 per GB, the request allows at most 0" {
		t.Fatalf("detail %+v", d)
	}
	// Once per spell: no second event while nothing changes.
	quiet := time.After(time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type == "request.unmatched" {
				t.Fatalf("a second request.unmatched: %s", ev.Data)
			}
		case <-quiet:
			return
		}
	}
}
