package sdk

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ipsx/ipsx/orderbook"
)

// DefaultTTL is the lifetime of an order whose params leave TTL at zero, in
// seconds.
const DefaultTTL = 24 * 3600

// Order builds the unsigned offer that p describes, created at now. Prices
// are amounts as ParseAmount reads them: base units, or tokens ("1tok"). Maker,
// Nonce, Version and the domain (ChainID, VerifyingContract) are left for
// the node to fill in before it signs. Errors wrap orderbook's ErrMalformed,
// ErrOutOfRange or ErrUnknownCountry and name the JSON field at fault; the
// ranges themselves are orderbook.CheckFields' business.
//
// The API server and the node both use it, so the two agree on defaults
// (protocols ["tcp"], TTL DefaultTTL) and on what a bad field is called.
func (p OfferParams) Order(now time.Time) (*orderbook.Order, error) {
	o, err := baseOrder(orderbook.KindOffer, p.Country, p.Region, p.City, p.ASN, p.IPType, p.IPs, p.Protocols, p.TTL, now)
	if err != nil {
		return nil, err
	}
	if o.IPType == orderbook.IPAny {
		return nil, fmt.Errorf("%w: ipType: an offer is residential, mobile or datacenter, not any", orderbook.ErrOutOfRange)
	}
	if o.PricePerHour, err = parseAmount("pricePerHour", p.PricePerHour); err != nil {
		return nil, err
	}
	if o.PricePerGB, err = parseAmount("pricePerGB", p.PricePerGB); err != nil {
		return nil, err
	}
	o.MinDuration, o.MaxDuration, o.Bandwidth = p.MinDuration, p.MaxDuration, p.Bandwidth
	return o, nil
}

// Order builds the unsigned request that p describes, created at now; see
// OfferParams.Order.
func (p RequestParams) Order(now time.Time) (*orderbook.Order, error) {
	o, err := baseOrder(orderbook.KindRequest, p.Country, p.Region, p.City, p.ASN, p.IPType, p.IPs, p.Protocols, p.TTL, now)
	if err != nil {
		return nil, err
	}
	if o.PricePerHour, err = parseAmount("maxPricePerHour", p.MaxPricePerHour); err != nil {
		return nil, err
	}
	if o.PricePerGB, err = parseAmount("maxPricePerGB", p.MaxPricePerGB); err != nil {
		return nil, err
	}
	o.Duration, o.Bandwidth = p.Duration, p.MinBandwidth
	return o, nil
}

func baseOrder(kind orderbook.Kind, country, region, city string, asn uint32, ipType string, ips uint32, protocols []string, ttl uint32, now time.Time) (*orderbook.Order, error) {
	if country == "" {
		return nil, fmt.Errorf("%w: country is required (an ISO 3166-1 alpha-2 code such as DE)", orderbook.ErrUnknownCountry)
	}
	if !orderbook.ValidCountry(country) {
		return nil, fmt.Errorf("%w: country %q is not an upper-case ISO 3166-1 alpha-2 code such as DE", orderbook.ErrUnknownCountry, country)
	}
	if ipType == "" {
		return nil, fmt.Errorf("%w: ipType is required (residential, mobile, datacenter; requests also any)", orderbook.ErrMalformed)
	}
	t, err := orderbook.ParseIPType(ipType)
	if err != nil {
		return nil, err
	}
	if len(protocols) == 0 {
		protocols = []string{"tcp"}
	}
	protos, err := orderbook.ParseProtocols(protocols)
	if err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl > orderbook.MaxLifetime {
		return nil, fmt.Errorf("%w: ttl %d s (max %d)", orderbook.ErrOutOfRange, ttl, orderbook.MaxLifetime)
	}
	created := uint64(max(now.Unix(), 0))
	return &orderbook.Order{
		Kind:      kind,
		Created:   created,
		Expires:   created + uint64(ttl),
		Location:  orderbook.Location{Country: country, Region: region, City: city, ASN: asn},
		IPType:    t,
		IPs:       ips,
		Protocols: protos,
	}, nil
}

func parseAmount(field, s string) (*big.Int, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: %s is required (a decimal string of token base units, e.g. \"1000\", or tokens, e.g. \"0.5tok\")", orderbook.ErrMalformed, field)
	}
	if s[0] == '+' || s[0] == '-' {
		return nil, fmt.Errorf("%w: %s %q must be a non-negative amount without sign", orderbook.ErrOutOfRange, field, s)
	}
	v, err := ParseAmount(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", orderbook.ErrMalformed, field, err)
	}
	if v.BitLen() > 256 {
		return nil, fmt.Errorf("%w: %s %q exceeds 2^256-1", orderbook.ErrOutOfRange, field, s)
	}
	return v, nil
}

// TokenDecimals is the IPSX token's number of decimals: 1 tok is 10^18
// base units.
const TokenDecimals = 18

var oneToken = new(big.Int).Exp(big.NewInt(10), big.NewInt(TokenDecimals), nil)

// ParseAmount reads an amount of tokens, as everything that takes one
// does (prices, wallet amounts): a decimal integer of base units
// ("250000000000000000000") or a decimal number of whole tokens with the
// suffix "tok" ("250tok", "0.0036tok"), with at most 18 decimals. It
// refuses signs, exponents and negative amounts; zero is allowed.
func ParseAmount(s string) (*big.Int, error) {
	if t, ok := strings.CutSuffix(s, "tok"); ok {
		t = strings.TrimSpace(t)
		if t == "" || strings.Trim(t, "0123456789.") != "" || strings.Count(t, ".") > 1 || t == "." {
			return nil, fmt.Errorf("amount %q: want a number of tokens such as 2.5tok", s)
		}
		r, ok := new(big.Rat).SetString(t)
		if !ok {
			return nil, fmt.Errorf("amount %q: want a number of tokens such as 2.5tok", s)
		}
		r.Mul(r, new(big.Rat).SetInt(oneToken))
		if !r.IsInt() {
			return nil, fmt.Errorf("amount %q has more than %d decimals", s, TokenDecimals)
		}
		return new(big.Int).Set(r.Num()), nil
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return nil, fmt.Errorf("amount %q is neither a decimal integer of token base units nor tokens with the suffix tok", s)
	}
	v, _ := new(big.Int).SetString(s, 10) // digits only: cannot fail
	return v, nil
}

// FormatAmount writes base units as tokens, exactly: every non-zero
// decimal is kept ("0.000000000000000029 tok"), none is rounded away.
func FormatAmount(base *big.Int) string {
	if base == nil {
		return "0 tok"
	}
	neg := base.Sign() < 0
	q, r := new(big.Int).QuoRem(new(big.Int).Abs(base), oneToken, new(big.Int))
	s := q.String()
	if r.Sign() != 0 {
		frac := fmt.Sprintf("%0*s", TokenDecimals, r.String())
		s += "." + strings.TrimRight(frac, "0")
	}
	if neg {
		s = "-" + s
	}
	return s + " tok"
}

// DevOffer is the offer of a testnet's provider (ipsx testnet up, the
// docker-compose testnet): 2 residential IPs in country cc at 0.001 token
// per IP-hour and 0.01 token per GB, rentable from 5 s to 1 day.
func DevOffer(cc string) OfferParams {
	return OfferParams{
		Country: cc, IPType: "residential", IPs: 2,
		PricePerHour: "1000000000000000", PricePerGB: "10000000000000000",
		MinDuration: 5, MaxDuration: 86400, Bandwidth: 100,
	}
}
