package matching

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
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

// hit is a fill as Match finds it: the request (nil for Candidates'
// request) and the offer. Match collects hits and makes the Fills at the
// end, when it knows how many: growing a slice of Fills, with their
// pointers and ids, was a tenth of a prepared Match.
type hit struct {
	r   *reqEntry
	o   *entry
	ips uint32
}

// fillsOf makes the Fills of hits, with their ids and copies of their
// prices carved from one allocation each; req and reqID are the request
// of the hits without one.
func (s *Snapshot) fillsOf(hits []hit, req *orderbook.Order, reqID common.Hash) []Fill {
	if len(hits) == 0 {
		return nil
	}
	nw := 0
	for _, h := range hits {
		nw += h.o.hour.words() + h.o.gb.words()
	}
	fills := make([]Fill, len(hits))
	ints := make([]big.Int, 2*len(hits))
	words := make([]big.Word, nw)
	// cp sets z to p, its words capped at their length, so that
	// arithmetic on one copy that needs more room reallocates instead of
	// writing into a neighbour's.
	cp := func(z *big.Int, p *u256) *big.Int {
		n := p.words()
		w := words[:n:n]
		words = words[n:]
		p.put(w)
		return z.SetBits(w)
	}
	for i, h := range hits {
		r, rid := req, reqID
		if h.r != nil {
			r, rid = s.orders[h.r.oi], s.idAt(h.r.oi)
		}
		fills[i] = Fill{
			Request:      r,
			Offer:        s.order(h.o),
			RequestID:    rid,
			OfferID:      s.id(h.o),
			IPs:          h.ips,
			PricePerHour: cp(&ints[2*i], &h.o.hour),
			PricePerGB:   cp(&ints[2*i+1], &h.o.gb),
		}
	}
	return fills
}

// words is how many big.Words the price takes, as big.Int.Bits has them
// (no leading zero word).
func (a *u256) words() int {
	for i, w := range a {
		if w != 0 {
			n := (4 - i) * 64 / bits.UintSize
			if bits.UintSize == 32 && w>>32 == 0 {
				n--
			}
			return n
		}
	}
	return 0
}

// put writes the price into w, least significant word first, as
// big.Int.SetBits reads it; w is a.words() long.
func (a *u256) put(w []big.Word) {
	for i := range w {
		if bits.UintSize == 64 {
			w[i] = big.Word(a[3-i])
		} else {
			w[i] = big.Word(a[3-i/2] >> (32 * (i % 2)))
		}
	}
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
	ledgers := make([]*ledger, len(s.byNumber))
	var hits []hit
	for i := range s.requests {
		r := &s.requests[i]
		q := &r.query
		if r.expires <= cut || q.sh == 0 {
			continue
		}
		sh := s.byNumber[q.sh-1]
		b := ledgers[sh.n]
		if b == nil {
			b = newLedger(sh, cut)
			ledgers[sh.n] = b
		}
		l, t := sh.lists[q.list], b.tree(q.list)
		need, used := r.ips, 0
		for pos := 0; need > 0 && (p.MaxSplit == 0 || used < p.MaxSplit); {
			k := t.find(pos, q)
			if k < 0 {
				break
			}
			j := l[k]
			take := min(need, b.left[j])
			hits = append(hits, hit{r, &sh.offers[j], take})
			need -= take
			used++
			b.take(j, take)
			pos = k + 1
		}
	}
	return s.fillsOf(hits, nil, common.Hash{}), nil
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
		if o := &sh.offers[j]; o.expires > cut {
			lg.left[j] = o.ips
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
	m := &lg.sh.meta[j]
	for kind, id := range m.lists {
		if id >= 0 && lg.trees[id] != nil {
			lg.trees[id].set(int(m.at[kind]), lg.left[j])
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
	if req.Expires <= cut {
		return nil, nil
	}
	var r entry
	s.fillEntry(&r, req, -1, false)
	q := s.query(&r)
	if q.sh == 0 {
		return nil, nil
	}
	sh := s.byNumber[q.sh-1]
	var hits []hit
	for _, j := range sh.lists[q.list][:q.end] {
		o := &sh.offers[j]
		if o.expires <= cut || !q.admitsAll(o, &sh.meta[j]) {
			continue
		}
		hits = append(hits, hit{nil, o, min(req.IPs, o.ips)})
		if len(hits) == p.MaxCandidates {
			break
		}
	}
	return s.fillsOf(hits, req, req.ID()), nil
}

// query is a request as the offer search sees it: its shard and list,
// and its filters in the tree's terms.
type query struct {
	sh   int32 // the shard's number plus 1; 0 when no offer can suit the request
	list int32
	end  int // offers of the list at or after end are dearer per IP-hour than the request allows

	maker            common.Address
	region, cty, asn uint32 // what it names of the location; 0 for any
	types, protos    uint8  // bit per acceptable IP type; the protocols needed
	bw, dur          uint32
	gbBound          uint32
	loc              uint64 // bloom bits of region, cty and asn
}

// query is r's query in the snapshot.
func (s *Snapshot) query(r *entry) query {
	if int(r.country) >= len(s.byCountry) || s.byCountry[r.country] == nil {
		return query{}
	}
	sh := s.byCountry[r.country]
	list, ok := sh.list(r)
	if !ok {
		return query{}
	}
	// The offers within r's price per IP-hour are a prefix of each list.
	l, first := sh.lists[list], sh.hourStart[bound(sh.hourPrice, &r.hour)]
	end, _ := slices.BinarySearch(l, first)
	q := query{
		sh:      int32(sh.n + 1),
		list:    list,
		end:     end,
		maker:   r.maker,
		region:  r.region,
		cty:     r.cty,
		asn:     r.asn,
		protos:  uint8(r.protos),
		bw:      r.bw,
		dur:     r.dur,
		gbBound: bound(sh.gbPrice, &r.gb),
		loc:     bloomLocation(r.region, r.cty, r.asn),
	}
	if r.ipType == orderbook.IPAny {
		q.types = 1<<orderbook.IPResidential | 1<<orderbook.IPMobile | 1<<orderbook.IPDatacenter
	} else {
		q.types = 1 << r.ipType
	}
	return q
}

// admits is the exact test of an offer whose leaf may already passed: its
// maker, and its location (equal numbers are equal strings).
func (q *query) admits(o *entry) bool {
	return (q.region == 0 || q.region == o.region) &&
		(q.cty == 0 || q.cty == o.cty) &&
		(q.asn == 0 || q.asn == o.asn) &&
		o.maker != q.maker
}

// admitsAll is the exact test of one offer against the request, all
// filters but country (the shard) and price per IP-hour (q.end) and expiry
// (the caller's).
func (q *query) admitsAll(o *entry, m *offerMeta) bool {
	return q.admits(o) &&
		q.types&(1<<o.ipType) != 0 &&
		o.protos&orderbook.Protocols(q.protos) == orderbook.Protocols(q.protos) &&
		o.minDur <= q.dur && q.dur <= o.maxDur &&
		o.bw >= q.bw &&
		m.gbRank < q.gbBound
}

// bloomLocation maps the numbers of a location's region and city and its
// ASN to bits of a word, one of 64 per value, so that a subtree's OR of
// its offers' bits tells when no offer in it can have the values a request
// asks for. 0 (none) sets no bit.
func bloomLocation(region, city, asn uint32) uint64 {
	return bloom(region, 0x9e3779b97f4a7c15) | bloom(city, 0x9e3779b97f4a7c15) | bloom(asn, 0xc2b2ae3d27d4eb4f)
}

func bloom(v uint32, k uint64) uint64 {
	if v == 0 {
		return 0
	}
	return 1 << ((uint64(v) * k) >> 58)
}
