package matching

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

var (
	// ErrParams is returned for Params that fail validation.
	ErrParams = errors.New("matching: invalid params")
	// ErrNotRequest is returned by Candidates for an order that is not a
	// usable request.
	ErrNotRequest = errors.New("matching: not a request")
)

// Params tunes the matcher. The zero value is valid and is the default:
// orders are skipped only once expired, a request may be split across any
// number of offers, and Candidates returns every eligible offer.
type Params struct {
	// ExpiryMargin treats orders that expire within this long after now as
	// expired already: a deal needs a few round trips to be negotiated, so
	// an order about to lapse is not worth proposing. Not negative.
	ExpiryMargin time.Duration
	// MaxSplit caps how many offers Match fills one request from; 0 means
	// no cap. Not negative.
	MaxSplit int
	// MaxCandidates caps the length of Candidates' answer; 0 means no cap.
	// Not negative.
	MaxCandidates int
}

func (p Params) validate() error {
	switch {
	case p.ExpiryMargin < 0:
		return fmt.Errorf("%w: expiry margin %s is negative", ErrParams, p.ExpiryMargin)
	case p.MaxSplit < 0:
		return fmt.Errorf("%w: max split %d is negative", ErrParams, p.MaxSplit)
	case p.MaxCandidates < 0:
		return fmt.Errorf("%w: max candidates %d is negative", ErrParams, p.MaxCandidates)
	}
	return nil
}

// cutoff is the unix second at or before which an order counts as expired.
func (p Params) cutoff(now time.Time) uint64 {
	c := now.Add(p.ExpiryMargin).Unix()
	if c < 0 {
		return 0
	}
	return uint64(c)
}

// Fill is a candidate deal: IPs of Offer for Request at the offer's asking
// prices. Request and Offer point into the snapshot's orders and must not be
// modified; the prices are the caller's own copies.
type Fill struct {
	Request   *orderbook.Order
	Offer     *orderbook.Order
	RequestID common.Hash
	OfferID   common.Hash
	// IPs is how many of the offer's IPs go to the request.
	IPs uint32
	// PricePerHour and PricePerGB are the offer's asking prices, the prices
	// the deal is struck at (at most the request's maximums).
	PricePerHour *big.Int
	PricePerGB   *big.Int
}

func newFill(r, o *entry, ips uint32, pc *priceCopier) Fill {
	return Fill{
		Request:      r.o,
		Offer:        o.o,
		RequestID:    r.ID(),
		OfferID:      o.ID(),
		IPs:          ips,
		PricePerHour: pc.copy(o.o.PricePerHour),
		PricePerGB:   pc.copy(o.o.PricePerGB),
	}
}

// priceCopier hands out copies of prices carved from shared slabs: a Match
// copies two prices per fill, and one allocation for each copy and each of
// its words was a third of what a prepared Match cost. A copy's words are
// capped at its length, so arithmetic on one copy that needs more room
// reallocates instead of writing into a neighbour.
type priceCopier struct {
	ints  []big.Int
	words []big.Word
	slab  int // the next slab's length in ints; doubles up to 512
}

func (pc *priceCopier) copy(p *big.Int) *big.Int {
	if len(pc.ints) == 0 {
		pc.slab = min(512, max(8, 2*pc.slab))
		pc.ints = make([]big.Int, pc.slab)
	}
	z := &pc.ints[0]
	pc.ints = pc.ints[1:]
	w := p.Bits()
	if len(pc.words) < len(w) {
		pc.words = make([]big.Word, max(2*pc.slab, len(w)))
	}
	nw := pc.words[:len(w):len(w)]
	pc.words = pc.words[len(w):]
	copy(nw, w)
	return z.SetBits(nw) // prices are not negative (usable)
}

// Match matches the snapshot's live requests with its live offers at now
// and returns the fills, ranked: by request priority, then, within a
// request, by offer priority (see the package doc). The answer depends only
// on the set of orders, now and p. The error is non-nil only for invalid
// params.
func Match(s *Snapshot, now time.Time, p Params) ([]Fill, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	cut := p.cutoff(now)
	ledgers := make(map[string]*ledger) // by country; looked up, never iterated
	var fills []Fill
	var pc priceCopier
	for i := range s.requests {
		r := &s.requests[i]
		if r.o.Expires <= cut {
			continue
		}
		cc := r.o.Location.Country
		sh := s.shards[cc]
		if sh == nil {
			continue
		}
		b := ledgers[cc]
		if b == nil {
			b = newLedger(sh, cut)
			ledgers[cc] = b
		}
		id, ok := sh.list(r.o)
		if !ok {
			continue
		}
		l, t := sh.lists[id], b.tree(id)
		q := newQuery(sh, r, l)
		need, used := r.o.IPs, 0
		for pos := 0; need > 0 && (p.MaxSplit == 0 || used < p.MaxSplit); {
			k := t.find(pos, q)
			if k < 0 {
				break
			}
			j := l[k]
			take := min(need, b.left[j])
			fills = append(fills, newFill(r, &sh.offers[j], take, &pc))
			need -= take
			used++
			b.take(j, take)
			pos = k + 1
		}
	}
	return fills, nil
}

// ledger is the state of one shard during a Match: the IPs each offer has
// left, and the search trees of the lists requests have used so far, all
// kept in step with left.
type ledger struct {
	sh    *shard
	left  []uint32 // by offer; 0 for expired offers
	trees []*tree  // by list; nil until used
}

func newLedger(sh *shard, cut uint64) *ledger {
	lg := &ledger{sh: sh, left: make([]uint32, len(sh.offers)), trees: make([]*tree, len(sh.lists))}
	for j := range sh.offers {
		if o := sh.offers[j].o; o.Expires > cut {
			lg.left[j] = o.IPs
		}
	}
	return lg
}

// tree returns the tree of list l, building it on first use.
func (lg *ledger) tree(l int32) *tree {
	if lg.trees[l] == nil {
		lg.trees[l] = newTree(lg.sh, lg.sh.lists[l], lg.left)
	}
	return lg.trees[l]
}

// take removes k IPs from offer j, in every tree that holds it.
func (lg *ledger) take(j int32, k uint32) {
	lg.left[j] -= k
	if t := lg.trees[0]; t != nil {
		t.set(int(j), lg.left[j])
	}
	e := &lg.sh.offers[j]
	for kind, id := range e.lists {
		if id >= 0 && lg.trees[id] != nil {
			lg.trees[id].set(int(e.at[kind]), lg.left[j])
		}
	}
}

// Candidates returns the offers of the snapshot that could fill req at now,
// best first (offer priority), each as the Fill req would get from that
// offer alone, ignoring what other requests would take. A requester proposes
// to the first and moves down the list when a proposal is rejected. req need
// not be in the snapshot. It is ErrNotRequest if req is not a usable request
// (see the package doc), and no candidates if req is expired at now.
func Candidates(s *Snapshot, req *orderbook.Order, now time.Time, p Params) ([]Fill, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if !usable(req) || req.Kind != orderbook.KindRequest {
		return nil, ErrNotRequest
	}
	cut := p.cutoff(now)
	sh := s.shards[req.Location.Country]
	if req.Expires <= cut || sh == nil {
		return nil, nil
	}
	id, ok := sh.list(req)
	if !ok {
		return nil, nil
	}
	l := sh.lists[id]
	r := entry{o: req, id: req.ID(), hour: toU256(req.PricePerHour), gb: toU256(req.PricePerGB)}
	q := newQuery(sh, &r, l)
	var out []Fill
	var pc priceCopier
	for _, j := range l[:q.end] {
		o := &sh.offers[j]
		if o.o.Expires <= cut || !q.admits(o) {
			continue
		}
		out = append(out, newFill(&r, o, min(req.IPs, o.o.IPs), &pc))
		if len(out) == p.MaxCandidates {
			break
		}
	}
	return out, nil
}

// query is a request as the offer search sees it.
type query struct {
	r   *orderbook.Order
	end int // offers of the list at or after end are dearer per IP-hour than r allows

	types            uint8 // bit per acceptable IP type
	gbBound          uint32
	region, city, as uint64 // bloom bits; 0 when r leaves it open
}

func newQuery(sh *shard, re *entry, l []int32) *query {
	r := re.o
	hb := bound(sh.hourPrice, &re.hour)
	q := &query{
		r:       r,
		end:     sort.Search(len(l), func(k int) bool { return sh.offers[l[k]].hourRank >= hb }),
		gbBound: bound(sh.gbPrice, &re.gb),
	}
	if r.IPType == orderbook.IPAny {
		q.types = 1<<orderbook.IPResidential | 1<<orderbook.IPMobile | 1<<orderbook.IPDatacenter
	} else {
		q.types = 1 << r.IPType
	}
	if r.Location.Region != "" {
		q.region = bloomString(r.Location.Region)
	}
	if r.Location.City != "" {
		q.city = bloomString(r.Location.City)
	}
	if r.Location.ASN != 0 {
		q.as = bloomASN(r.Location.ASN)
	}
	return q
}

// admits is the exact test of one offer against the request, all filters
// but country (the shard) and price per IP-hour (q.end) and expiry (the
// caller's).
func (q *query) admits(o *entry) bool {
	r, of := q.r, o.o
	return of.Maker != r.Maker &&
		q.types&(1<<of.IPType) != 0 &&
		of.Protocols.Has(r.Protocols) &&
		of.MinDuration <= r.Duration && r.Duration <= of.MaxDuration &&
		of.Bandwidth >= r.Bandwidth &&
		o.gbRank < q.gbBound &&
		(r.Location.Region == "" || r.Location.Region == of.Location.Region) &&
		(r.Location.City == "" || r.Location.City == of.Location.City) &&
		(r.Location.ASN == 0 || r.Location.ASN == of.Location.ASN)
}

// bloomString and bloomASN map a location value to one of 64 bits (FNV-1a),
// so a subtree's OR of its offers' bits tells when no offer in it can have
// the value a request asks for.
func bloomString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return 1 << (h & 63)
}

func bloomASN(a uint32) uint64 {
	h := uint64(a) * 0x9e3779b97f4a7c15
	return 1 << (h >> 58)
}
