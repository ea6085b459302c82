package matching

import "math"

// tree is a search tree over one of a shard's lists of offers, in priority
// order: the offers' bounds (leaves) in blocks of blockSize, and a segment
// tree over the blocks. Each node holds the most IPs any offer of its
// subtree has left and, for every filter, a bound that no offer in the
// subtree can beat; search skips a subtree whose bounds already rule out
// the request, and scans the leaves of a block it cannot rule out. The
// bounds are necessary conditions only: a leaf is admitted by the exact
// test. Offers with nothing left (expired or sold out) get the identity
// bounds, so they loosen no ancestor's.
//
// Bounds taken filter by filter rule out less the smaller a subtree is
// (in a few offers, each filter is likely met by one offer or another, and
// all of them by none), so the last levels of a tree down to single offers
// cost more visits than they save; a block's leaves are contiguous, and
// reading them in a row is cheaper than walking the nodes above them.
type tree struct {
	offers []entry
	list   []int32 // leaf k is offers[list[k]]
	leaves []agg   // by position in list, padded with identity to whole blocks
	blocks int     // a power of two
	agg    []agg   // nodes from 1; node blocks+b is block b
}

// blockBits is log2 of the leaves per block.
const (
	blockBits = 3
	blockSize = 1 << blockBits
)

// agg is a node's bounds, in 32 bytes so that two nodes share a cache line
// and a Match builds half the memory it did with a bloom word per location
// field. rem, the most IPs any offer of the subtree has left, lives in the
// same struct so that a search reads one place per node.
type agg struct {
	rem                  uint32
	maxBW                uint32
	minMinDur, maxMaxDur uint32
	minGB                uint32
	types, protos        uint8
	loc                  uint64 // OR of the bloom bits of region, city and ASN
}

var identity = agg{minMinDur: math.MaxUint32, minGB: math.MaxUint32}

func (a *agg) join(b, c *agg) {
	*a = agg{
		rem:       max(b.rem, c.rem),
		maxBW:     max(b.maxBW, c.maxBW),
		minMinDur: min(b.minMinDur, c.minMinDur),
		maxMaxDur: max(b.maxMaxDur, c.maxMaxDur),
		minGB:     min(b.minGB, c.minGB),
		types:     b.types | c.types,
		protos:    b.protos | c.protos,
		loc:       b.loc | c.loc,
	}
}

// newTree builds the tree of list l of sh, with the IPs left per offer.
func newTree(sh *shard, l []int32, left []uint32) *tree {
	blocks := 1
	for blocks*blockSize < len(l) {
		blocks <<= 1
	}
	t := &tree{offers: sh.offers, list: l, blocks: blocks, agg: make([]agg, 2*blocks)}
	t.leaves = make([]agg, (len(l)+blockSize-1)&^(blockSize-1))
	for k, j := range l {
		if left[j] == 0 {
			t.leaves[k] = identity
			continue
		}
		t.leaves[k] = sh.meta[j].leaf
		t.leaves[k].rem = left[j]
	}
	for k := len(l); k < len(t.leaves); k++ {
		t.leaves[k] = identity
	}
	for b := range blocks {
		t.joinBlock(b)
	}
	for n := blocks - 1; n >= 1; n-- {
		t.agg[n].join(&t.agg[2*n], &t.agg[2*n+1])
	}
	return t
}

// joinBlock sets the node of block b from its leaves.
func (t *tree) joinBlock(b int) {
	n := &t.agg[t.blocks+b]
	*n = identity
	lo := b << blockBits
	if lo >= len(t.leaves) {
		return
	}
	for k := lo; k < lo+blockSize; k++ {
		n.join(n, &t.leaves[k])
	}
}

// leafOf is the bounds of offer e alone.
func leafOf(e *entry, m *offerMeta) agg {
	return agg{
		maxBW:     e.bw,
		maxMaxDur: e.maxDur,
		minMinDur: e.minDur,
		minGB:     m.gbRank,
		types:     1 << e.ipType,
		protos:    uint8(e.protos),
		loc:       bloomLocation(e.region, e.cty, e.asn),
	}
}

// may reports whether a subtree with bounds a can hold an offer for q. For
// a leaf it is exact for everything but the maker and the location (the
// bloom bits), which admits checks.
func (q *query) may(a *agg) bool {
	return a.rem > 0 &&
		a.types&q.types != 0 &&
		a.protos&q.protos == q.protos &&
		a.maxBW >= q.bw &&
		a.minMinDur <= q.dur && a.maxMaxDur >= q.dur &&
		a.minGB < q.gbBound &&
		a.loc&q.loc == q.loc
}

// find returns the first leaf at or after lo, and before q.end, whose offer
// has IPs left and admits q, or -1. It scans the rest of lo's block, then
// walks the blocks after it in order, from the largest subtree that starts
// there: down into the subtrees may admits (scanning a block's leaves at
// the bottom), up and right past the others, so that a request that goes
// on after a fill does not come down from the root again.
func (t *tree) find(lo int, q *query) int {
	if lo >= q.end {
		return -1
	}
	b := lo >> blockBits
	if lo&(blockSize-1) != 0 {
		if k := t.scan(lo, (b+1)<<blockBits, q); k >= 0 {
			return k
		}
		if b++; b<<blockBits >= q.end {
			return -1
		}
	}
	n, h := t.blocks+b, 0 // a node and its height (blocks are 0)
	for n&1 == 0 && n > 1 {
		n, h = n>>1, h+1
	}
	for {
		first := (n<<h - t.blocks) << blockBits // its first leaf
		if first >= q.end {
			return -1
		}
		if q.may(&t.agg[n]) {
			if h > 0 {
				n, h = 2*n, h-1
				continue
			}
			if k := t.scan(first, first+blockSize, q); k >= 0 {
				return k
			}
		}
		for n&1 == 1 { // up while a right child; then to the right
			n, h = n>>1, h+1
		}
		if n == 0 {
			return -1
		}
		n++
	}
}

// scan returns the first leaf in [lo, hi), and before q.end, that admits
// q, or -1.
func (t *tree) scan(lo, hi int, q *query) int {
	hi = min(hi, q.end)
	for k := lo; k < hi; k++ {
		if q.may(&t.leaves[k]) && q.admits(&t.offers[t.list[k]]) {
			return k
		}
	}
	return -1
}

// set records that the offer at leaf k has v IPs left. A sold-out offer
// stops counting in its ancestors' bounds, so that searches skip the
// leftovers among sold-out offers instead of descending to them.
func (t *tree) set(k int, v uint32) {
	b := k >> blockBits
	n := t.blocks + b
	if v == 0 {
		// Once a node's bounds come out as they were, so do its
		// ancestors': without one offer, a large subtree's bounds are
		// mostly those of others.
		t.leaves[k] = identity
		old := t.agg[n]
		if t.joinBlock(b); t.agg[n] == old {
			return
		}
		for n > 1 {
			n >>= 1
			old = t.agg[n]
			if t.agg[n].join(&t.agg[2*n], &t.agg[2*n+1]); t.agg[n] == old {
				return
			}
		}
		return
	}
	t.leaves[k].rem = v
	m := uint32(0)
	for _, l := range t.leaves[b<<blockBits : (b+1)<<blockBits] {
		m = max(m, l.rem)
	}
	for t.agg[n].rem != m {
		t.agg[n].rem = m
		if n == 1 {
			break
		}
		n >>= 1
		m = max(t.agg[2*n].rem, t.agg[2*n+1].rem)
	}
}
