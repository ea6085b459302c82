package matching

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/big"
	"slices"
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// maxPriceBits is the width of the prices the EIP-712 encoding carries
// (uint256); a wider price has no id, so the order is left out.
const maxPriceBits = 256

// Snapshot is a prepared, immutable view of a set of orders: superseded
// versions and duplicates dropped, requests sorted by priority and offers
// sorted by priority within their country. Build it once with NewSnapshot
// and use it for any number of Match and Candidates calls, also
// concurrently. The orders it points to must not be modified while it is in
// use.
//
// Order ids are computed when first needed (a tie on prices and created
// time, two orders of one series, a fill, a candidate) and then kept: the
// EIP-712 digest is most of what preparing a snapshot used to cost, and
// most orders of a book never need theirs.
type Snapshot struct {
	requests []entry           // sorted by request priority
	shards   map[string]*shard // by country; looked up, never iterated
	size     int
}

// entry is an order with what the matcher derives from it once.
type entry struct {
	o *orderbook.Order
	// id is the order id when lazy is nil; otherwise lazy computes it on
	// first use, safely for concurrent readers of the snapshot.
	id   common.Hash
	lazy *lazyID
	// The prices as fixed-width numbers, so that sorting compares words.
	hour, gb u256
	// For an offer: the ranks of its prices among the distinct prices of
	// its shard's offers, so that the search compares integers.
	hourRank, gbRank uint32
	// For an offer: the shard's IP type, region, city and ASN lists it is
	// in (-1 for none) and its position in each.
	lists, at [4]int32
	// For an offer: its bounds as a leaf of a search tree.
	leaf agg
}

// lazyID computes an order id once.
type lazyID struct {
	once sync.Once
	h    common.Hash
}

// ID is the entry's order id.
func (e *entry) ID() common.Hash {
	l := e.lazy
	if l == nil {
		return e.id
	}
	o := e.o
	l.once.Do(func() { l.h = o.ID() })
	return l.h
}

// u256 is a price as four 64-bit words, most significant first.
type u256 [4]uint64

func toU256(p *big.Int) u256 {
	var b [32]byte
	p.FillBytes(b[:]) // usable checked the range
	return u256{binary.BigEndian.Uint64(b[0:]), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:]), binary.BigEndian.Uint64(b[24:])}
}

func (a *u256) cmp(b *u256) int {
	for i := range a {
		if a[i] != b[i] {
			return cmp.Compare(a[i], b[i])
		}
	}
	return 0
}

// shard is one country's offers, with lists of them (indexes into offers,
// in priority order) by IP type and location: list 0 holds every offer,
// and a request that names a type, region, city or ASN searches the
// shortest list that can hold its offers.
type shard struct {
	offers    []entry // sorted by offer priority
	hourPrice []u256  // distinct prices per IP-hour of offers, ascending
	gbPrice   []u256  // distinct prices per GB of offers, ascending
	lists     [][]int32
	byRegion  map[string]int32 // looked up, never iterated
	byCity    map[string]int32
	byASN     map[uint32]int32
	byType    [orderbook.IPDatacenter + 1]int32 // 0: no offer of the type
}

// NewSnapshot prepares orders for matching. orders is read as a set: its
// order does not matter and neither do repeated entries. It keeps the
// pointers, not copies.
func NewSnapshot(orders []*orderbook.Order) *Snapshot {
	type series struct {
		maker common.Address
		nonce uint64
	}
	all := make([]entry, 0, len(orders))
	for _, o := range orders {
		if usable(o) {
			all = append(all, entry{o: o, hour: toU256(o.PricePerHour), gb: toU256(o.PricePerGB)})
		}
	}
	ids := make([]lazyID, len(all))
	for i := range all {
		all[i].lazy = &ids[i]
	}
	// The best of each series by (version, lower id). Repeated ids keep
	// their first index, so exactly one copy survives below. Only series
	// seen more than once need ids.
	best := make(map[series]int32, len(all))
	drop := make([]bool, len(all))
	for i := range all {
		k := series{all[i].o.Maker, all[i].o.Nonce}
		j, ok := best[k]
		switch {
		case !ok:
			best[k] = int32(i)
		case all[i].o != all[j].o && newer(&all[i], &all[j]):
			best[k] = int32(i)
			drop[j] = true
		default:
			drop[i] = true
		}
	}
	s := &Snapshot{shards: make(map[string]*shard)}
	var reqs, offers []*entry
	for i := range all {
		if drop[i] {
			continue
		}
		if all[i].o.Kind == orderbook.KindRequest {
			reqs = append(reqs, &all[i])
		} else {
			offers = append(offers, &all[i])
		}
	}
	s.size = len(reqs) + len(offers)
	slices.SortFunc(reqs, requestOrder)
	s.requests = make([]entry, len(reqs))
	for i, e := range reqs {
		s.requests[i] = *e
	}

	// Sorting all offers by (country, priority) groups each country's
	// offers in a run already in priority order.
	slices.SortFunc(offers, func(a, b *entry) int {
		if c := cmp.Compare(a.o.Location.Country, b.o.Location.Country); c != 0 {
			return c
		}
		return offerOrder(a, b)
	})
	sorted := make([]entry, len(offers))
	for i, e := range offers {
		sorted[i] = *e
	}
	for lo := 0; lo < len(sorted); {
		hi := lo + 1
		for hi < len(sorted) && sorted[hi].o.Location.Country == sorted[lo].o.Location.Country {
			hi++
		}
		sh := &shard{offers: sorted[lo:hi:hi]}
		sh.index()
		s.shards[sorted[lo].o.Location.Country] = sh
		lo = hi
	}
	return s
}

// Len is the number of orders the snapshot uses (after dropping duplicates,
// superseded versions and unusable orders).
func (s *Snapshot) Len() int { return s.size }

func (sh *shard) index() {
	sh.hourPrice = ranks(sh.offers, func(e *entry) *u256 { return &e.hour }, func(e *entry, r uint32) { e.hourRank = r })
	sh.gbPrice = ranks(sh.offers, func(e *entry) *u256 { return &e.gb }, func(e *entry, r uint32) { e.gbRank = r })

	all := make([]int32, len(sh.offers))
	sh.lists = [][]int32{all}
	sh.byRegion = map[string]int32{}
	sh.byCity = map[string]int32{}
	sh.byASN = map[uint32]int32{}
	// add puts offer i on list l (made on first use) of the given kind.
	add := func(i int, kind int, l int32, ok bool) int32 {
		if !ok {
			l = int32(len(sh.lists))
			sh.lists = append(sh.lists, nil)
		}
		sh.offers[i].lists[kind] = l
		sh.offers[i].at[kind] = int32(len(sh.lists[l]))
		sh.lists[l] = append(sh.lists[l], int32(i))
		return l
	}
	for i := range sh.offers {
		all[i] = int32(i)
		e := &sh.offers[i]
		e.lists = [4]int32{-1, -1, -1, -1}
		l := sh.byType[e.o.IPType]
		sh.byType[e.o.IPType] = add(i, 3, l, l != 0)
		loc := e.o.Location
		if loc.Region != "" {
			l, ok := sh.byRegion[loc.Region]
			sh.byRegion[loc.Region] = add(i, 0, l, ok)
		}
		if loc.City != "" {
			l, ok := sh.byCity[loc.City]
			sh.byCity[loc.City] = add(i, 1, l, ok)
		}
		if loc.ASN != 0 {
			l, ok := sh.byASN[loc.ASN]
			sh.byASN[loc.ASN] = add(i, 2, l, ok)
		}
		e.leaf = leafOf(e)
	}
}

// ranks sets each offer's rank of the price get picks among the distinct
// such prices, and returns those prices ascending.
func ranks(offers []entry, get func(*entry) *u256, set func(*entry, uint32)) []u256 {
	ps := make([]u256, len(offers))
	for i := range offers {
		ps[i] = *get(&offers[i])
	}
	slices.SortFunc(ps, func(a, b u256) int { return a.cmp(&b) })
	ps = slices.Compact(ps)
	for i := range offers {
		r, _ := slices.BinarySearchFunc(ps, get(&offers[i]), func(a u256, b *u256) int { return a.cmp(b) })
		set(&offers[i], uint32(r))
	}
	return ps
}

// bound is how many of the distinct prices ps are at most max: an offer is
// within max iff its rank is below the bound.
func bound(ps []u256, max *u256) uint32 {
	return uint32(sort.Search(len(ps), func(i int) bool { return ps[i].cmp(max) > 0 }))
}

// list returns the id of the shortest of the shard's lists that holds every
// offer that can suit r's location, or false if none can.
func (sh *shard) list(r *orderbook.Order) (int32, bool) {
	var best int32
	pick := func(l int32, ok bool) bool {
		if ok && len(sh.lists[l]) < len(sh.lists[best]) {
			best = l
		}
		return ok
	}
	if r.IPType != orderbook.IPAny && !pick(sh.byType[r.IPType], sh.byType[r.IPType] != 0) {
		return 0, false
	}
	loc := r.Location
	if loc.Region != "" && !pick(lookup(sh.byRegion, loc.Region)) ||
		loc.City != "" && !pick(lookup(sh.byCity, loc.City)) ||
		loc.ASN != 0 && !pick(lookup(sh.byASN, loc.ASN)) {
		return 0, false
	}
	return best, true
}

func lookup[K comparable](m map[K]int32, k K) (int32, bool) {
	l, ok := m[k]
	return l, ok
}

// usable reports whether the matcher can make sense of o at all.
func usable(o *orderbook.Order) bool {
	if o == nil || o.IPs == 0 || !price(o.PricePerHour) || !price(o.PricePerGB) {
		return false
	}
	switch o.Kind {
	case orderbook.KindOffer:
		return o.IPType >= orderbook.IPResidential && o.IPType <= orderbook.IPDatacenter
	case orderbook.KindRequest:
		return o.IPType <= orderbook.IPDatacenter
	}
	return false
}

func price(p *big.Int) bool { return p != nil && p.Sign() >= 0 && p.BitLen() <= maxPriceBits }

// newer reports whether a supersedes b in their series.
func newer(a, b *entry) bool {
	if a.o.Version != b.o.Version {
		return a.o.Version > b.o.Version
	}
	ia, ib := a.ID(), b.ID()
	return bytes.Compare(ia[:], ib[:]) < 0
}

// requestOrder orders requests by priority: highest maximum prices first,
// then earlier Created, then lower id.
func requestOrder(a, b *entry) int {
	if c := b.hour.cmp(&a.hour); c != 0 {
		return c
	}
	if c := b.gb.cmp(&a.gb); c != 0 {
		return c
	}
	if c := cmp.Compare(a.o.Created, b.o.Created); c != 0 {
		return c
	}
	return compareIDs(a, b)
}

// offerOrder orders offers by priority: cheapest first, then earlier
// Created, then lower id.
func offerOrder(a, b *entry) int {
	if c := a.hour.cmp(&b.hour); c != 0 {
		return c
	}
	if c := a.gb.cmp(&b.gb); c != 0 {
		return c
	}
	if c := cmp.Compare(a.o.Created, b.o.Created); c != 0 {
		return c
	}
	return compareIDs(a, b)
}

func compareIDs(a, b *entry) int {
	if a.o == b.o {
		return 0
	}
	ia, ib := a.ID(), b.ID()
	return bytes.Compare(ia[:], ib[:])
}

// compareOffers is offerOrder on entries that need not have their prices
// converted (the quick test's and Explain's).
func compareOffers(a, b entry) int {
	if c := a.o.PricePerHour.Cmp(b.o.PricePerHour); c != 0 {
		return c
	}
	if c := a.o.PricePerGB.Cmp(b.o.PricePerGB); c != 0 {
		return c
	}
	if c := cmp.Compare(a.o.Created, b.o.Created); c != 0 {
		return c
	}
	return compareIDs(&a, &b)
}
