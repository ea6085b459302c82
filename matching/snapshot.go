package matching

import (
	"bytes"
	"cmp"
	"math/big"
	"slices"
	"sort"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// maxPriceBits is the width of the prices the EIP-712 encoding carries
// (uint256); a wider price has no id, so the order is left out.
const maxPriceBits = 256

// Snapshot is a prepared, immutable view of a set of orders: ids computed,
// superseded versions and duplicates dropped, requests sorted by priority
// and offers sorted by priority within their country. Build it once with
// NewSnapshot and use it for any number of Match and Candidates calls, also
// concurrently. The orders it points to must not be modified while it is in
// use.
type Snapshot struct {
	requests []entry           // sorted by request priority
	shards   map[string]*shard // by country; looked up, never iterated
	size     int
}

// entry is an order with what the matcher derives from it once.
type entry struct {
	o  *orderbook.Order
	id common.Hash
	// For an offer: the ranks of its prices among the distinct prices of
	// its shard's offers, so that the search compares integers.
	hourRank, gbRank uint32
	// For an offer: the shard's IP type, region, city and ASN lists it is
	// in (-1 for none) and its position in each.
	lists, at [4]int32
}

// shard is one country's offers, with lists of them (indexes into offers,
// in priority order) by IP type and location: list 0 holds every offer,
// and a request that names a type, region, city or ASN searches the
// shortest list that can hold its offers.
type shard struct {
	offers    []entry    // sorted by offer priority
	hourPrice []*big.Int // distinct prices per IP-hour of offers, ascending
	gbPrice   []*big.Int // distinct prices per GB of offers, ascending
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
			all = append(all, entry{o: o, id: o.ID()})
		}
	}
	// The best of each series by (version, lower id). Repeated ids keep
	// their first index, so exactly one copy survives below.
	best := make(map[series]int, len(all))
	for i := range all {
		k := series{all[i].o.Maker, all[i].o.Nonce}
		j, ok := best[k]
		if !ok || newer(&all[i], &all[j]) {
			best[k] = i
		}
	}
	s := &Snapshot{shards: make(map[string]*shard)}
	var offers []entry
	for i := range all {
		if best[series{all[i].o.Maker, all[i].o.Nonce}] != i {
			continue
		}
		if all[i].o.Kind == orderbook.KindRequest {
			s.requests = append(s.requests, all[i])
		} else {
			offers = append(offers, all[i])
		}
	}
	s.size = len(s.requests) + len(offers)
	slices.SortFunc(s.requests, compareRequests)

	// Sorting all offers by (country, priority) groups each country's
	// offers in a run already in priority order.
	slices.SortFunc(offers, func(a, b entry) int {
		if c := cmp.Compare(a.o.Location.Country, b.o.Location.Country); c != 0 {
			return c
		}
		return compareOffers(a, b)
	})
	for lo := 0; lo < len(offers); {
		hi := lo + 1
		for hi < len(offers) && offers[hi].o.Location.Country == offers[lo].o.Location.Country {
			hi++
		}
		sh := &shard{offers: offers[lo:hi:hi]}
		sh.index()
		s.shards[offers[lo].o.Location.Country] = sh
		lo = hi
	}
	return s
}

// Len is the number of orders the snapshot uses (after dropping duplicates,
// superseded versions and unusable orders).
func (s *Snapshot) Len() int { return s.size }

func (sh *shard) index() {
	sh.hourPrice = ranks(sh.offers, func(o *orderbook.Order) *big.Int { return o.PricePerHour }, func(e *entry, r uint32) { e.hourRank = r })
	sh.gbPrice = ranks(sh.offers, func(o *orderbook.Order) *big.Int { return o.PricePerGB }, func(e *entry, r uint32) { e.gbRank = r })

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
	}
}

// ranks sets each offer's rank of the price get picks among the distinct
// such prices, and returns those prices ascending.
func ranks(offers []entry, get func(*orderbook.Order) *big.Int, set func(*entry, uint32)) []*big.Int {
	ps := make([]*big.Int, len(offers))
	for i := range offers {
		ps[i] = get(offers[i].o)
	}
	slices.SortFunc(ps, (*big.Int).Cmp)
	ps = slices.CompactFunc(ps, func(a, b *big.Int) bool { return a.Cmp(b) == 0 })
	for i := range offers {
		r, _ := slices.BinarySearchFunc(ps, get(offers[i].o), (*big.Int).Cmp)
		set(&offers[i], uint32(r))
	}
	return ps
}

// bound is how many of the distinct prices ps are at most max: an offer is
// within max iff its rank is below the bound.
func bound(ps []*big.Int, max *big.Int) uint32 {
	return uint32(sort.Search(len(ps), func(i int) bool { return ps[i].Cmp(max) > 0 }))
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
	return bytes.Compare(a.id[:], b.id[:]) < 0
}

// compareRequests orders requests by priority: highest maximum prices
// first, then earlier Created, then lower id.
func compareRequests(a, b entry) int {
	if c := b.o.PricePerHour.Cmp(a.o.PricePerHour); c != 0 {
		return c
	}
	if c := b.o.PricePerGB.Cmp(a.o.PricePerGB); c != 0 {
		return c
	}
	if c := cmp.Compare(a.o.Created, b.o.Created); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// compareOffers orders offers by priority: cheapest first, then earlier
// Created, then lower id.
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
	return bytes.Compare(a.id[:], b.id[:])
}
