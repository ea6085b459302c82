package sdk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

func TestParamsOrder(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	o, err := sdk.OfferParams{Country: "DE", IPType: "datacenter", IPs: 4, PricePerHour: "10", PricePerGB: "0",
		MinDuration: 5, MaxDuration: 60, Bandwidth: 1}.Order(now)
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != orderbook.KindOffer || o.Protocols != orderbook.ProtoTCP || o.Created != 1_800_000_000 ||
		o.Expires != o.Created+sdk.DefaultTTL || o.IPType != orderbook.IPDatacenter || o.PricePerHour.Int64() != 10 {
		t.Fatalf("offer %+v", o)
	}
	r, err := sdk.RequestParams{Country: "FR", IPType: "any", IPs: 1, Duration: 60, MaxPricePerHour: "5", MaxPricePerGB: "6",
		MinBandwidth: 3, TTL: 60, Protocols: []string{"tcp", "udp"}}.Order(now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != orderbook.KindRequest || r.Expires != r.Created+60 || r.Bandwidth != 3 || r.Duration != 60 ||
		r.PricePerGB.Int64() != 6 || r.Protocols != orderbook.ProtoTCP|orderbook.ProtoUDP {
		t.Fatalf("request %+v", r)
	}

	good := sdk.OfferParams{Country: "DE", IPType: "residential", IPs: 1, PricePerHour: "1", PricePerGB: "1"}
	for _, tc := range []struct {
		name   string
		mutate func(p *sdk.OfferParams)
		err    error
		field  string
	}{
		{"no country", func(p *sdk.OfferParams) { p.Country = "" }, orderbook.ErrUnknownCountry, "country"},
		{"bad country", func(p *sdk.OfferParams) { p.Country = "Germany" }, orderbook.ErrUnknownCountry, "country"},
		{"no ipType", func(p *sdk.OfferParams) { p.IPType = "" }, orderbook.ErrMalformed, "ipType"},
		{"any offer", func(p *sdk.OfferParams) { p.IPType = "any" }, orderbook.ErrOutOfRange, "ipType"},
		{"protocol", func(p *sdk.OfferParams) { p.Protocols = []string{"sctp"} }, orderbook.ErrMalformed, "protocol"},
		{"ttl", func(p *sdk.OfferParams) { p.TTL = orderbook.MaxLifetime + 1 }, orderbook.ErrOutOfRange, "ttl"},
		{"price empty", func(p *sdk.OfferParams) { p.PricePerHour = "" }, orderbook.ErrMalformed, "pricePerHour"},
		{"price sign", func(p *sdk.OfferParams) { p.PricePerGB = "+1" }, orderbook.ErrOutOfRange, "pricePerGB"},
		{"price text", func(p *sdk.OfferParams) { p.PricePerGB = "1e3" }, orderbook.ErrMalformed, "pricePerGB"},
		{"price huge", func(p *sdk.OfferParams) { p.PricePerGB = strings.Repeat("9", 78) }, orderbook.ErrOutOfRange, "pricePerGB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			tc.mutate(&p)
			_, err := p.Order(now)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want %v naming %s", err, tc.err, tc.field)
			}
		})
	}
}
