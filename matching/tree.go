package matching

import "math"

// tree is a segment tree over one of a shard's lists of offers, in
// priority order. Each node holds the most IPs any offer of its subtree has
// left and, for every filter, a bound that no offer in the subtree can
// beat; search skips a subtree whose bounds already rule out the request.
// The bounds are necessary conditions only: a leaf is admitted by the exact
// test. Offers with nothing left (expired or sold out) get the identity
// bounds, so they loosen no ancestor's.
type tree struct {
	offers []entry
	leaf   []int32 // leaf k is offers[leaf[k]]
	size   int     // leaves, a power of two
	agg    []agg   // bounds; identity for padding and expired or sold-out offers
}

// agg is a node's bounds. rem, the most IPs any offer of the subtree has
// left, lives in the same struct (in its padding, as it were) so that a
// search reads one cache line per node.
type agg struct {
	maxBW, maxMaxDur   uint32
	minMinDur, minGB   uint32
	rem                uint32
	types, protos      uint8
	region, city, asns uint64 // OR of bloom bits
}

var identity = agg{minMinDur: math.MaxUint32, minGB: math.MaxUint32}

func (a agg) join(b agg) agg {
	return agg{
		maxBW:     max(a.maxBW, b.maxBW),
		maxMaxDur: max(a.maxMaxDur, b.maxMaxDur),
		minMinDur: min(a.minMinDur, b.minMinDur),
		minGB:     min(a.minGB, b.minGB),
		rem:       max(a.rem, b.rem),
		types:     a.types | b.types,
		protos:    a.protos | b.protos,
		region:    a.region | b.region,
		city:      a.city | b.city,
		asns:      a.asns | b.asns,
	}
}

// newTree builds the tree of list l of sh, with the IPs left per offer.
func newTree(sh *shard, l []int32, left []uint32) *tree {
	size := 1
	for size < len(l) {
		size <<= 1
	}
	t := &tree{offers: sh.offers, leaf: l, size: size, agg: make([]agg, 2*size)}
	for k := range t.agg[size:] {
		t.agg[size+k] = identity
	}
	for k, j := range l {
		if left[j] == 0 {
			continue
		}
		t.agg[size+k] = sh.offers[j].leaf
		t.agg[size+k].rem = left[j]
	}
	for n := size - 1; n >= 1; n-- {
		t.agg[n] = t.agg[2*n].join(t.agg[2*n+1])
	}
	return t
}

// leafOf is the bounds of offer e alone.
func leafOf(e *entry) agg {
	o := e.o
	return agg{
		maxBW:     o.Bandwidth,
		maxMaxDur: o.MaxDuration,
		minMinDur: o.MinDuration,
		minGB:     e.gbRank,
		types:     1 << o.IPType,
		protos:    uint8(o.Protocols),
		region:    bloomString(o.Location.Region),
		city:      bloomString(o.Location.City),
		asns:      bloomASN(o.Location.ASN),
	}
}

// may reports whether node n's subtree can hold an offer for q.
func (t *tree) may(n int, q *query) bool {
	a, r := &t.agg[n], q.r
	return a.rem > 0 &&
		a.types&q.types != 0 &&
		uint8(r.Protocols)&a.protos == uint8(r.Protocols) &&
		a.maxBW >= r.Bandwidth &&
		a.minMinDur <= r.Duration && a.maxMaxDur >= r.Duration &&
		a.minGB < q.gbBound &&
		a.region&q.region == q.region &&
		a.city&q.city == q.city &&
		a.asns&q.as == q.as
}

// find returns the first leaf at or after lo whose offer has IPs left and
// admits q, or -1.
func (t *tree) find(lo int, q *query) int {
	if lo >= q.end {
		return -1
	}
	return t.search(1, 0, t.size, lo, q)
}

func (t *tree) search(n, nl, nr, lo int, q *query) int {
	if nr <= lo || nl >= q.end || !t.may(n, q) {
		return -1
	}
	if n >= t.size {
		if q.admits(&t.offers[t.leaf[nl]]) {
			return nl
		}
		return -1
	}
	mid := (nl + nr) / 2
	if j := t.search(2*n, nl, mid, lo, q); j >= 0 {
		return j
	}
	return t.search(2*n+1, mid, nr, lo, q)
}

// set records that the offer at leaf k has v IPs left. A sold-out offer
// stops counting in its ancestors' bounds, so that searches skip the
// leftovers among sold-out offers instead of descending to them.
func (t *tree) set(k int, v uint32) {
	n := t.size + k
	if v == 0 {
		t.agg[n] = identity
		for n > 1 {
			n >>= 1
			t.agg[n] = t.agg[2*n].join(t.agg[2*n+1])
		}
		return
	}
	t.agg[n].rem = v
	for n > 1 {
		n >>= 1
		m := max(t.agg[2*n].rem, t.agg[2*n+1].rem)
		if t.agg[n].rem == m {
			break
		}
		t.agg[n].rem = m
	}
}
