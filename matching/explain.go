package matching

import (
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// Reason is why an offer cannot fill a request: the first of the checks
// of the package doc, in the order below, that it fails. Later reasons
// mean the offer came closer.
type Reason uint8

const (
	// ReasonNone: the offer can fill the request (it is a candidate).
	ReasonNone Reason = iota
	// ReasonExpired: the offer is expired at now (or within ExpiryMargin).
	ReasonExpired
	// ReasonOwnOffer: the offer's maker is the request's (no self-deals).
	ReasonOwnOffer
	// ReasonCountry: the offer is in another country.
	ReasonCountry
	// ReasonIPType: the request asks for another IP type.
	ReasonIPType
	// ReasonRegion, ReasonCity, ReasonASN: the request names a region,
	// city or ASN the offer does not have.
	ReasonRegion
	ReasonCity
	ReasonASN
	// ReasonProtocols: the offer lacks a protocol the request needs.
	ReasonProtocols
	// ReasonDuration: the request's duration is outside the offer's
	// minimum and maximum rental.
	ReasonDuration
	// ReasonBandwidth: the offer's bandwidth is below the request's
	// minimum.
	ReasonBandwidth
	// ReasonPricePerHour, ReasonPricePerGB: the offer asks more than the
	// request's maximum.
	ReasonPricePerHour
	ReasonPricePerGB
	// ReasonCapacity: the offer suits the request, but Match gives all its
	// IPs to requests of higher priority while the request stays short.
	// Only reported for a request that is in the snapshot, since only
	// then does Match see it.
	ReasonCapacity
)

var reasonNames = [...]string{
	ReasonNone:         "",
	ReasonExpired:      "expired",
	ReasonOwnOffer:     "own_offer",
	ReasonCountry:      "country",
	ReasonIPType:       "ip_type",
	ReasonRegion:       "region",
	ReasonCity:         "city",
	ReasonASN:          "asn",
	ReasonProtocols:    "protocols",
	ReasonDuration:     "duration",
	ReasonBandwidth:    "bandwidth",
	ReasonPricePerHour: "price_per_hour",
	ReasonPricePerGB:   "price_per_gb",
	ReasonCapacity:     "capacity",
}

// String is the reason's stable name (the API's): "price_per_gb", ...;
// "" for ReasonNone.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Verdict is what Explain says of one offer.
type Verdict struct {
	// Offer points into the snapshot and must not be modified.
	Offer   *orderbook.Order
	OfferID common.Hash
	// Reason is ReasonNone for a candidate, else the first check failed;
	// Detail says it with the numbers, e.g. "asks 50 per GB, the request
	// allows at most 0".
	Reason Reason
	Detail string
	// IPs is what the offer alone could give the request (a candidate's
	// Fill.IPs); 0 when Reason is set.
	IPs uint32
}

// Explain says, for every offer of the snapshot, whether it can fill req
// at now and, if not, the first reason why: the candidates first, in
// Candidates' order, then the others, closest first (the later the check
// they fail, the closer), each group in offer priority. p.MaxCandidates
// caps the answer. Like Candidates, it is ErrNotRequest if req is not a
// usable request, and nothing if req is expired at now. The candidates it
// names are exactly Candidates' offers, except those it marks
// ReasonCapacity.
func Explain(s *Snapshot, req *orderbook.Order, now time.Time, p Params) ([]Verdict, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if !usable(req) || req.Kind != orderbook.KindRequest {
		return nil, ErrNotRequest
	}
	cut := p.cutoff(now)
	if req.Expires <= cut {
		return nil, nil
	}
	// When req is in s and Match leaves it short: the offers whose IPs
	// Match hands out to the last one.
	reqID := req.ID()
	var soldOut map[common.Hash]bool
	if s.has(req, reqID) {
		fills, err := Match(s, now, p)
		if err != nil {
			return nil, err
		}
		var got uint32
		taken := map[common.Hash]uint32{}
		for _, f := range fills {
			taken[f.OfferID] += f.IPs
			if f.RequestID == reqID {
				got += f.IPs
			}
		}
		if got < req.IPs {
			soldOut = map[common.Hash]bool{}
			for _, f := range fills {
				if taken[f.OfferID] == f.Offer.IPs {
					soldOut[f.OfferID] = true
				}
			}
			for _, f := range fills {
				if f.RequestID == reqID {
					delete(soldOut, f.OfferID) // req has its share of it
				}
			}
		}
	}
	countries := make([]string, 0, len(s.shards))
	for cc := range s.shards {
		countries = append(countries, cc)
	}
	slices.Sort(countries) // the map's order must not show
	type ranked struct {
		v    Verdict
		home bool // in req's country
	}
	var all []ranked
	for _, cc := range countries {
		sh := s.shards[cc]
		for i := range sh.offers {
			e := &sh.offers[i]
			o, id := s.order(e), s.id(e)
			r, detail := check(o, req, cut)
			if r == ReasonNone && soldOut[id] {
				r, detail = ReasonCapacity, "requests of higher priority take all its IPs"
			}
			v := Verdict{Offer: o, OfferID: id, Reason: r, Detail: detail}
			if r == ReasonNone {
				v.IPs = min(req.IPs, o.IPs)
			}
			all = append(all, ranked{v, cc == req.Location.Country})
		}
	}
	slices.SortStableFunc(all, func(a, b ranked) int {
		// Candidates first; then the closest misses.
		ca, cb := a.v.Reason == ReasonNone, b.v.Reason == ReasonNone
		switch {
		case ca != cb:
			if ca {
				return -1
			}
			return 1
		case a.v.Reason != b.v.Reason:
			return int(b.v.Reason) - int(a.v.Reason)
		case a.home != b.home:
			if a.home {
				return -1
			}
			return 1
		}
		return compareOffers(a.v.Offer, b.v.Offer, a.v.OfferID, b.v.OfferID)
	})
	n := len(all)
	if p.MaxCandidates > 0 {
		n = min(n, p.MaxCandidates)
	}
	out := make([]Verdict, n)
	for i := range out {
		out[i] = all[i].v
	}
	return out, nil
}

// has reports whether the snapshot holds the request r with this id. Only
// requests of r's series can have its id, so only theirs are computed.
func (s *Snapshot) has(r *orderbook.Order, id common.Hash) bool {
	for i := range s.requests {
		e := &s.requests[i]
		if e.maker == r.Maker && s.orders[e.oi].Nonce == r.Nonce && s.idAt(e.oi) == id {
			return true
		}
	}
	return false
}

// check runs the match checks of offer o against request r in Reason's
// order. It must agree with query.admits (and the price bound and expiry
// that Candidates applies around it); a quick test holds them together.
func check(o, r *orderbook.Order, cut uint64) (Reason, string) {
	switch {
	case o.Expires <= cut:
		return ReasonExpired, fmt.Sprintf("expires at %d", o.Expires)
	case o.Maker == r.Maker:
		return ReasonOwnOffer, "the request's own maker offers it"
	case o.Location.Country != r.Location.Country:
		return ReasonCountry, fmt.Sprintf("in %s, the request wants %s", o.Location.Country, r.Location.Country)
	case r.IPType != orderbook.IPAny && r.IPType != o.IPType:
		return ReasonIPType, fmt.Sprintf("offers %s, the request wants %s", o.IPType, r.IPType)
	case r.Location.Region != "" && r.Location.Region != o.Location.Region:
		return ReasonRegion, fmt.Sprintf("region %q, the request wants %q", o.Location.Region, r.Location.Region)
	case r.Location.City != "" && r.Location.City != o.Location.City:
		return ReasonCity, fmt.Sprintf("city %q, the request wants %q", o.Location.City, r.Location.City)
	case r.Location.ASN != 0 && r.Location.ASN != o.Location.ASN:
		return ReasonASN, fmt.Sprintf("AS%d, the request wants AS%d", o.Location.ASN, r.Location.ASN)
	case !o.Protocols.Has(r.Protocols):
		return ReasonProtocols, fmt.Sprintf("carries %s, the request needs %s", o.Protocols, r.Protocols)
	case r.Duration < o.MinDuration || r.Duration > o.MaxDuration:
		return ReasonDuration, fmt.Sprintf("rents for %d to %d s, the request wants %d s", o.MinDuration, o.MaxDuration, r.Duration)
	case o.Bandwidth < r.Bandwidth:
		return ReasonBandwidth, fmt.Sprintf("%d Mbit/s per IP, the request wants at least %d", o.Bandwidth, r.Bandwidth)
	case o.PricePerHour.Cmp(r.PricePerHour) > 0:
		return ReasonPricePerHour, fmt.Sprintf("asks %s per IP-hour, the request allows at most %s", o.PricePerHour, r.PricePerHour)
	case o.PricePerGB.Cmp(r.PricePerGB) > 0:
		return ReasonPricePerGB, fmt.Sprintf("asks %s per GB, the request allows at most %s", o.PricePerGB, r.PricePerGB)
	}
	return ReasonNone, ""
}
