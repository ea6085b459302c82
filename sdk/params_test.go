package sdk_test

import (
	"errors"
	"math/big"
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

// TestPricesInTokens: prices take the tok suffix as wallet amounts do
// (before, "1tok" was "not a decimal integer").
func TestPricesInTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r, err := sdk.RequestParams{Country: "DE", IPType: "any", IPs: 1, Duration: 60,
		MaxPricePerHour: "1tok", MaxPricePerGB: "0.000000000000000029tok"}.Order(now)
	if err != nil {
		t.Fatal(err)
	}
	if r.PricePerHour.String() != "1000000000000000000" || r.PricePerGB.Int64() != 29 {
		t.Fatalf("prices %s %s", r.PricePerHour, r.PricePerGB)
	}
	o, err := sdk.OfferParams{Country: "DE", IPType: "residential", IPs: 1, PricePerHour: "0.0036tok", PricePerGB: "0tok"}.Order(now)
	if err != nil {
		t.Fatal(err)
	}
	if o.PricePerHour.String() != "3600000000000000" || o.PricePerGB.Sign() != 0 {
		t.Fatalf("prices %s %s", o.PricePerHour, o.PricePerGB)
	}
	for _, bad := range []string{"1.0000000000000000001tok", "tok", ".tok", "1e3tok", "1..2tok", "-1tok", "0x10", "1 tok2"} {
		p := sdk.OfferParams{Country: "DE", IPType: "residential", IPs: 1, PricePerHour: bad, PricePerGB: "0"}
		if _, err := p.Order(now); err == nil || !strings.Contains(err.Error(), "pricePerHour") {
			t.Errorf("price %q: %v, want an error naming pricePerHour", bad, err)
		}
	}
}

func TestAmounts(t *testing.T) {
	for in, want := range map[string]string{
		"29": "29", "0": "0", "2.5tok": "2500000000000000000", "250tok": "250000000000000000000", "0tok": "0",
	} {
		v, err := sdk.ParseAmount(in)
		if err != nil || v.String() != want {
			t.Errorf("ParseAmount(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for in, want := range map[string]string{
		"29": "0.000000000000000029 tok", "0": "0 tok", "2500000000000000000": "2.5 tok",
		"1000000000000000000000001": "1000000.000000000000000001 tok",
	} {
		v, _ := new(big.Int).SetString(in, 10)
		if got := sdk.FormatAmount(v); got != want {
			t.Errorf("FormatAmount(%s) = %q, want %q", in, got, want)
		}
	}
}
