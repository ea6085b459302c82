package matching

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/big"
	"math/bits"
	"slices"
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
// most orders of a book never need theirs. A caller that holds the ids
// already hands them in with NewSnapshotWithIDs, and none is computed.
type Snapshot struct {
	// orders and ids are by entry.oi: entries hold no pointers, so that
	// the collector neither scans them nor runs write barriers as they are
	// copied into place.
	orders   []*orderbook.Order
	ids      []lazyID          // nil when known is set
	known    []common.Hash     // the caller's ids (NewSnapshotWithIDs), or nil
	requests []reqEntry        // sorted by request priority
	shards   map[string]*shard // by country; looked up, and iterated only in sorted order
	byNumber []*shard          // by shard.n
	// strs numbers the countries, regions and cities of the orders from 1
	// (0 is the empty string), so that the matcher compares and looks up
	// numbers; byCountry is the shard of each number that is a country.
	strs      map[string]uint32
	byCountry []*shard
	size      int
}

// entry is an order with what the matcher reads of it, copied out of the
// order in the one pass over the orders that NewSnapshot makes in their
// own order, so that matching, which visits them in priority order, does
// not chase a pointer per order.
type entry struct {
	oi                   int32 // the order's index in Snapshot.orders and .ids
	ips, bw              uint32
	minDur, maxDur, dur  uint32
	country, region, cty uint32 // numbers of Snapshot.strs
	asn                  uint32
	kind                 orderbook.Kind
	ipType               orderbook.IPType
	protos               orderbook.Protocols
	maker                common.Address
	created, expires     uint64
	// The prices as fixed-width numbers, so that sorting and bounds
	// compare words and fills copy them without reading the order.
	hour, gb u256
}

// offerMeta is what the matcher derives of an offer in its shard.
type offerMeta struct {
	// The rank of its price per GB among the distinct prices of its
	// shard's offers, so that the search compares integers.
	gbRank uint32
	// The shard's region, city, ASN and IP type lists it is in (-1 for
	// none), by kind, and its position in each.
	lists, at [4]int32
	// Its bounds as a leaf of a search tree.
	leaf agg
}

// lazyID computes an order id once.
type lazyID struct {
	once sync.Once
	h    common.Hash
}

// get is o's id, computed on first use, safely for concurrent readers of
// the snapshot.
func (l *lazyID) get(o *orderbook.Order) common.Hash {
	l.once.Do(func() { l.h = o.ID() })
	return l.h
}

// reqEntry is a request as Match reads it: its order, what it needs and
// until when, and its search.
type reqEntry struct {
	oi      int32
	ips     uint32
	expires uint64
	query
}

// order is the order of entry e.
func (s *Snapshot) order(e *entry) *orderbook.Order { return s.orders[e.oi] }

// id is the order id of entry e.
func (s *Snapshot) id(e *entry) common.Hash { return s.idAt(e.oi) }

// idAt is the id of order oi.
func (s *Snapshot) idAt(oi int32) common.Hash {
	if s.known != nil {
		return s.known[oi]
	}
	return s.ids[oi].get(s.orders[oi])
}

// u256 is a price as four 64-bit words, most significant first.
type u256 [4]uint64

// toU256 reads the words of p (usable checked its range) without going
// through bytes.
func toU256(p *big.Int) u256 {
	var u u256
	for i, w := range p.Bits() {
		if bits.UintSize == 64 {
			u[3-i] = uint64(w)
		} else {
			u[3-i/2] |= uint64(w) << (32 * (i % 2))
		}
	}
	return u
}

// narrow reports whether the price fits in its last word.
func (a *u256) narrow() bool { return a[0]|a[1]|a[2] == 0 }

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
	n         int         // the shard's number, from 0
	cc        string      // its country
	offers    []entry     // sorted by offer priority
	meta      []offerMeta // by offer
	hourPrice []u256      // distinct prices per IP-hour of offers, ascending
	// hourStart[r] is the first offer whose hourRank is r or more (offers
	// are sorted by price per IP-hour first); len(hourPrice)+1 of them.
	hourStart []int32
	gbPrice   []u256 // distinct prices per GB of offers, ascending
	lists     [][]int32
	byRegion  map[uint32]int32 // by number of Snapshot.strs; looked up, never iterated
	byCity    map[uint32]int32
	byASN     map[uint32]int32
	byType    [orderbook.IPDatacenter + 1]int32 // 0: no offer of the type
}

// NewSnapshot prepares orders for matching. orders is read as a set: its
// order does not matter and neither do repeated entries. It keeps the
// pointers, not copies.
func NewSnapshot(orders []*orderbook.Order) *Snapshot { return newSnapshot(orders, nil) }

// NewSnapshotWithIDs is NewSnapshot for a caller that holds the orders'
// ids already (a book keys its orders by id): ids[i] must be
// orders[i].ID(), and the snapshot uses it instead of computing it. The
// ids of the fills are most of what a first Match costs otherwise. A
// wrong id makes the snapshot disagree with other peers' on ties, on
// superseded versions and in the ids of its fills; it panics if the
// lengths differ.
func NewSnapshotWithIDs(orders []*orderbook.Order, ids []common.Hash) *Snapshot {
	if len(ids) != len(orders) {
		panic(fmt.Sprintf("matching: %d ids for %d orders", len(ids), len(orders)))
	}
	return newSnapshot(orders, ids)
}

func newSnapshot(orders []*orderbook.Order, ids []common.Hash) *Snapshot {
	s := &Snapshot{strs: map[string]uint32{}, orders: make([]*orderbook.Order, 0, len(orders))}
	all := make([]entry, 0, len(orders))
	if ids != nil {
		s.known = make([]common.Hash, 0, len(orders))
	}
	// The series keys of dropSuperseded are made here, while the order is
	// at hand: a pass of their own read every order again.
	seed := maphash.MakeSeed()
	series := make([]sortKey, 0, len(orders))
	for i, o := range orders {
		if usable(o) {
			all = append(all, entry{})
			s.fillEntry(&all[len(all)-1], o, int32(len(s.orders)), true)
			series = append(series, sortKey{k: [3]uint64{2: seriesHash(seed, o)}, i: int32(len(s.orders))})
			s.orders = append(s.orders, o)
			if ids != nil {
				s.known = append(s.known, ids[i])
			}
		}
	}
	if ids == nil {
		s.ids = make([]lazyID, len(all))
	}
	drop, buf, tmp := s.dropSuperseded(all, series)

	// The requests, and the offers by country, each group a run of buf:
	// a shard is sorted on its own, so an offer's country never enters its
	// sort key. tmp is the radix sorts' other buffer; each group is copied
	// out into entries as soon as it is sorted.
	start := make([]int, len(s.strs)+2) // by country number, offers after the requests
	for i := range all {
		if drop[i] {
			continue
		}
		if e := &all[i]; e.kind == orderbook.KindRequest {
			start[0]++
		} else {
			start[e.country+1]++
		}
	}
	n := 0
	for c, k := range start {
		start[c] = n
		n += k
	}
	next := slices.Clone(start)
	for i := range all {
		if drop[i] {
			continue
		}
		e := &all[i]
		if e.kind == orderbook.KindRequest {
			// Higher prices first: the complements sort ascending.
			buf[next[0]] = sortKey{k: [3]uint64{^e.hour[3], ^e.gb[3], e.created}, i: int32(i)}
			next[0]++
		} else {
			buf[next[e.country+1]] = sortKey{k: [3]uint64{e.hour[3], e.gb[3], e.created}, i: int32(i)}
			next[e.country+1]++
		}
	}
	group := func(c int) []sortKey { return buf[start[c]:next[c]:next[c]] }
	reqs, _ := s.sortEntries(all, group(0), tmp, s.requestOrder)
	byPriority := make([]int32, len(reqs)) // the requests' entries; reqs' room is needed again
	for j, k := range reqs {
		byPriority[j] = k.i
	}
	s.size = len(reqs)
	s.shards = make(map[string]*shard)
	s.byCountry = make([]*shard, len(s.strs)+1)
	// Countries in number order: the numbers follow the orders' order,
	// but a shard's contents do not depend on its number.
	for c := range s.byCountry {
		keys := group(c + 1)
		if len(keys) == 0 {
			continue
		}
		keys, _ = s.sortEntries(all, keys, tmp, s.offerOrder)
		sh := &shard{n: len(s.byNumber), offers: sorted(all, keys)}
		sh.cc = s.order(&sh.offers[0]).Location.Country
		sh.index(group(c+1), tmp) // the group's keys are copied out: its room is free
		s.byNumber = append(s.byNumber, sh)
		s.shards[sh.cc] = sh
		s.byCountry[c] = sh
		s.size += len(keys)
	}
	// A request's search depends on the offers only, not on the time.
	s.requests = make([]reqEntry, len(byPriority))
	for j, i := range byPriority {
		e := &all[i]
		s.requests[j] = reqEntry{oi: e.oi, ips: e.ips, expires: e.expires, query: s.query(e)}
	}
	return s
}

// fillEntry copies what the matcher reads of o, order oi, into e. It
// numbers o's strings when intern is set, and otherwise (a request from
// outside the snapshot) gives a string the snapshot does not know a number
// no order has.
func (s *Snapshot) fillEntry(e *entry, o *orderbook.Order, oi int32, intern bool) {
	*e = entry{
		oi:      oi,
		kind:    o.Kind,
		ips:     o.IPs,
		bw:      o.Bandwidth,
		minDur:  o.MinDuration,
		maxDur:  o.MaxDuration,
		dur:     o.Duration,
		asn:     o.Location.ASN,
		ipType:  o.IPType,
		protos:  o.Protocols,
		maker:   o.Maker,
		created: o.Created,
		expires: o.Expires,
		hour:    toU256(o.PricePerHour),
		gb:      toU256(o.PricePerGB),
	}
	loc := &o.Location
	e.country = s.number(loc.Country, intern)
	e.region = s.number(loc.Region, intern)
	e.cty = s.number(loc.City, intern)
}

// unknown is the number of a string the snapshot has not numbered.
const unknown = ^uint32(0)

func (s *Snapshot) number(str string, intern bool) uint32 {
	if str == "" {
		return 0
	}
	n, ok := s.strs[str]
	switch {
	case ok:
		return n
	case !intern:
		return unknown
	}
	n = uint32(len(s.strs) + 1)
	s.strs[str] = n
	return n
}

// dropSuperseded marks all but the best of each series, by (version, lower
// id); of repeated ids the first index stays, so exactly one copy survives.
// Only series seen more than once need ids. The orders are grouped by a
// hash of their series, sorted by radix: a map keyed by (maker, nonce), or
// a table probed at random, cost several times as much, all of it in
// cache misses. The hash is seeded per snapshot, so that no choice of
// nonces makes the groups large, and nothing depends on its values: orders
// with equal hashes are compared by series, in their index order. keys are
// the entries' series hashes (seriesHash), in index order.
func (s *Snapshot) dropSuperseded(all []entry, keys []sortKey) (drop []bool, buf, tmp []sortKey) {
	drop = make([]bool, len(all))
	keys, tmp = radixSort(keys, make([]sortKey, len(keys))) // stable: index order within a hash
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi].k == keys[lo].k {
			hi++
		}
		for x := lo + 1; x < hi; x++ {
			i := int(keys[x].i)
			e, o := &all[i], s.orders[all[i].oi]
			for y := lo; y < x; y++ {
				j := int(keys[y].i)
				b := &all[j]
				if drop[j] || b.maker != e.maker || s.orders[b.oi].Nonce != o.Nonce {
					continue
				}
				// j is the best of the series so far.
				if o != s.orders[b.oi] && s.newer(e, b) {
					drop[j] = true
				} else {
					drop[i] = true
				}
				break
			}
		}
		lo = hi
	}
	return drop, keys, tmp
}

// seriesHash is a hash of o's series (maker and nonce), in 32 bits, under
// a seed drawn per snapshot.
func seriesHash(seed maphash.Seed, o *orderbook.Order) uint64 {
	var key [28]byte
	copy(key[:20], o.Maker[:])
	binary.LittleEndian.PutUint64(key[20:], o.Nonce)
	return maphash.Bytes(seed, key[:]) >> 32
}

// sortKey is an order's priority as three words compared in turn (prices
// and created, the prices complemented for requests), and its index in
// the entries. It stands for the order only when its prices fit in a word;
// a group with a wider price is sorted by comparing the entries.
type sortKey struct {
	k [3]uint64
	i int32
}

// sortEntries sorts keys by the priority order cmp (requestOrder or
// offerOrder) of their entries, and returns them and a spare buffer.
// Sorting compact keys by radix takes a fraction of what comparing the
// orders through pointers took; equal keys are rare and are put in order
// by cmp, which then compares the ids.
func (s *Snapshot) sortEntries(all []entry, keys, tmp []sortKey, cmp func(a, b *entry) int) ([]sortKey, []sortKey) {
	narrow := true
	for _, k := range keys {
		e := &all[k.i]
		narrow = narrow && e.hour.narrow() && e.gb.narrow()
	}
	if !narrow {
		slices.SortFunc(keys, func(a, b sortKey) int { return cmp(&all[a.i], &all[b.i]) })
		return keys, tmp
	}
	if cap(tmp) < len(keys) {
		tmp = make([]sortKey, len(keys))
	}
	keys, tmp = radixSort(keys, tmp[:len(keys)])
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi].k == keys[lo].k {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(keys[lo:hi], func(a, b sortKey) int { return cmp(&all[a.i], &all[b.i]) })
		}
		lo = hi
	}
	return keys, tmp
}

// radixSort sorts keys by k, stably, a byte at a time from the least
// significant, skipping the bytes that all keys share (most of a price's
// word, most of a created time). It returns the sorted keys and the other
// buffer, which is what tmp was.
func radixSort(keys, tmp []sortKey) ([]sortKey, []sortKey) {
	var or, and [3]uint64
	and = [3]uint64{^uint64(0), ^uint64(0), ^uint64(0)}
	for i := range keys {
		for w := range or {
			or[w] |= keys[i].k[w]
			and[w] &= keys[i].k[w]
		}
	}
	var count [256]int
	for w := len(or) - 1; w >= 0; w-- {
		vary := or[w] ^ and[w]
		for shift := 0; shift < 64; shift += 8 {
			if byte(vary>>shift) == 0 {
				continue
			}
			clear(count[:])
			for i := range keys {
				count[byte(keys[i].k[w]>>shift)]++
			}
			sum := 0
			for b, c := range count {
				count[b] = sum
				sum += c
			}
			for i := range keys {
				d := byte(keys[i].k[w] >> shift)
				tmp[count[d]] = keys[i]
				count[d]++
			}
			keys, tmp = tmp, keys
		}
	}
	return keys, tmp
}

// sorted is the entries of keys, in their order.
func sorted(all []entry, keys []sortKey) []entry {
	es := make([]entry, len(keys))
	for j, k := range keys {
		es[j] = all[k.i]
	}
	return es
}

// Len is the number of orders the snapshot uses (after dropping duplicates,
// superseded versions and unusable orders).
func (s *Snapshot) Len() int { return s.size }

func (sh *shard) index(buf, tmp []sortKey) {
	sh.meta = make([]offerMeta, len(sh.offers))
	sh.hourRanks()
	sh.gbRanks(buf, tmp)

	all := make([]int32, len(sh.offers))
	sh.lists = [][]int32{all}
	sh.byRegion = map[uint32]int32{}
	sh.byCity = map[uint32]int32{}
	sh.byASN = map[uint32]int32{}
	// add puts offer i on list l (made on first use) of the given kind.
	add := func(i int, kind int, l int32, ok bool) int32 {
		if !ok {
			l = int32(len(sh.lists))
			sh.lists = append(sh.lists, nil)
		}
		sh.meta[i].lists[kind] = l
		sh.meta[i].at[kind] = int32(len(sh.lists[l]))
		sh.lists[l] = append(sh.lists[l], int32(i))
		return l
	}
	for i := range sh.offers {
		all[i] = int32(i)
		e, m := &sh.offers[i], &sh.meta[i]
		m.lists = [4]int32{-1, -1, -1, -1}
		l := sh.byType[e.ipType]
		sh.byType[e.ipType] = add(i, kindType, l, l != 0)
		if e.region != 0 {
			l, ok := sh.byRegion[e.region]
			sh.byRegion[e.region] = add(i, kindRegion, l, ok)
		}
		if e.cty != 0 {
			l, ok := sh.byCity[e.cty]
			sh.byCity[e.cty] = add(i, kindCity, l, ok)
		}
		if e.asn != 0 {
			l, ok := sh.byASN[e.asn]
			sh.byASN[e.asn] = add(i, kindASN, l, ok)
		}
		m.leaf = leafOf(e, m)
	}
}

// The kinds of list an offer is on besides list 0, as indexes of
// entry.lists and entry.at.
const (
	kindRegion = iota
	kindCity
	kindASN
	kindType
)

// hourRanks lists the distinct prices per IP-hour of the offers and where
// each starts, which the sorted offers give in a scan.
func (sh *shard) hourRanks() {
	for i := range sh.offers {
		e := &sh.offers[i]
		if n := len(sh.hourPrice); n == 0 || sh.hourPrice[n-1] != e.hour {
			sh.hourPrice = append(sh.hourPrice, e.hour)
			sh.hourStart = append(sh.hourStart, int32(i))
		}
	}
	sh.hourStart = append(sh.hourStart, int32(len(sh.offers)))
}

// gbRanks sets each offer's rank of its price per GB among the distinct
// such prices, sorting them by radix when they fit in a word; buf and tmp
// have room for the offers' keys.
func (sh *shard) gbRanks(buf, tmp []sortKey) {
	keys := buf[:len(sh.offers)]
	narrow := true
	for i := range sh.offers {
		e := &sh.offers[i]
		keys[i] = sortKey{k: [3]uint64{e.gb[3]}, i: int32(i)}
		narrow = narrow && e.gb.narrow()
	}
	if narrow {
		keys, _ = radixSort(keys, tmp[:len(keys)])
	} else {
		slices.SortFunc(keys, func(a, b sortKey) int { return sh.offers[a.i].gb.cmp(&sh.offers[b.i].gb) })
	}
	for _, k := range keys {
		e := &sh.offers[k.i]
		if n := len(sh.gbPrice); n == 0 || sh.gbPrice[n-1] != e.gb {
			sh.gbPrice = append(sh.gbPrice, e.gb)
		}
		sh.meta[k.i].gbRank = uint32(len(sh.gbPrice) - 1)
	}
}

// bound is how many of the distinct prices ps are at most max: an offer is
// within max iff its rank is below the bound.
func bound(ps []u256, max *u256) uint32 {
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ps[m].cmp(max) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return uint32(lo)
}

// list returns the shortest of the shard's lists that holds every offer
// that can suit r's type and location, or false if none can.
func (sh *shard) list(r *entry) (int32, bool) {
	var best int32
	pick := func(l int32, ok bool) bool {
		if ok && len(sh.lists[l]) < len(sh.lists[best]) {
			best = l
		}
		return ok
	}
	if r.ipType != orderbook.IPAny && !pick(sh.byType[r.ipType], sh.byType[r.ipType] != 0) {
		return 0, false
	}
	if r.region != 0 && !pick(lookup(sh.byRegion, r.region)) ||
		r.cty != 0 && !pick(lookup(sh.byCity, r.cty)) ||
		r.asn != 0 && !pick(lookup(sh.byASN, r.asn)) {
		return 0, false
	}
	return best, true
}

func lookup(m map[uint32]int32, k uint32) (int32, bool) {
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
func (s *Snapshot) newer(a, b *entry) bool {
	if va, vb := s.order(a).Version, s.order(b).Version; va != vb {
		return va > vb
	}
	ia, ib := s.id(a), s.id(b)
	return bytes.Compare(ia[:], ib[:]) < 0
}

// requestOrder orders requests by priority: highest maximum prices first,
// then earlier Created, then lower id.
func (s *Snapshot) requestOrder(a, b *entry) int {
	if c := b.hour.cmp(&a.hour); c != 0 {
		return c
	}
	if c := b.gb.cmp(&a.gb); c != 0 {
		return c
	}
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c
	}
	return s.compareIDs(a, b)
}

// offerOrder orders offers by priority: cheapest first, then earlier
// Created, then lower id.
func (s *Snapshot) offerOrder(a, b *entry) int {
	if c := a.hour.cmp(&b.hour); c != 0 {
		return c
	}
	if c := a.gb.cmp(&b.gb); c != 0 {
		return c
	}
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c
	}
	return s.compareIDs(a, b)
}

func (s *Snapshot) compareIDs(a, b *entry) int {
	if a.oi == b.oi {
		return 0
	}
	ia, ib := s.id(a), s.id(b)
	return bytes.Compare(ia[:], ib[:])
}

// compareOffers is offerOrder on orders and their ids (the quick test's
// and Explain's).
func compareOffers(a, b *orderbook.Order, ia, ib common.Hash) int {
	if c := a.PricePerHour.Cmp(b.PricePerHour); c != 0 {
		return c
	}
	if c := a.PricePerGB.Cmp(b.PricePerGB); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Created, b.Created); c != 0 {
		return c
	}
	return bytes.Compare(ia[:], ib[:])
}
