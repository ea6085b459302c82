package matching

import (
	"bytes"
	"fmt"
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// now is the time tests match at.
var now = time.Unix(1_700_000_000, 0)

var nonces uint64

func maker(i int) common.Address { return common.BigToAddress(big.NewInt(int64(1000 + i))) }

// offer returns a live offer in DE that the default request accepts, with
// its own nonce (so its own id), changed by muts.
func offer(muts ...func(*orderbook.Order)) *orderbook.Order {
	nonces++
	o := &orderbook.Order{
		Kind:         orderbook.KindOffer,
		Maker:        maker(1),
		Nonce:        nonces,
		Created:      uint64(now.Unix()) - 100,
		Expires:      uint64(now.Unix()) + 3600,
		Location:     orderbook.Location{Country: "DE"},
		IPType:       orderbook.IPResidential,
		IPs:          1,
		Protocols:    orderbook.ProtoTCP,
		PricePerHour: big.NewInt(10),
		PricePerGB:   big.NewInt(5),
		MinDuration:  60,
		MaxDuration:  86400,
		Bandwidth:    100,
	}
	for _, m := range muts {
		m(o)
	}
	return o
}

// request returns a live request in DE for one IP of any type, with its own
// nonce, changed by muts.
func request(muts ...func(*orderbook.Order)) *orderbook.Order {
	nonces++
	o := &orderbook.Order{
		Kind:         orderbook.KindRequest,
		Maker:        maker(2),
		Nonce:        nonces,
		Created:      uint64(now.Unix()) - 100,
		Expires:      uint64(now.Unix()) + 3600,
		Location:     orderbook.Location{Country: "DE"},
		IPType:       orderbook.IPAny,
		IPs:          1,
		Protocols:    orderbook.ProtoTCP,
		PricePerHour: big.NewInt(100),
		PricePerGB:   big.NewInt(100),
		Duration:     3600,
		Bandwidth:    10,
	}
	for _, m := range muts {
		m(o)
	}
	return o
}

// fillKey is a Fill in comparable form.
type fillKey struct {
	Req, Off    common.Hash
	IPs         uint32
	Hour, PerGB string
}

func keys(fs []Fill) []fillKey {
	out := make([]fillKey, len(fs))
	for i, f := range fs {
		out[i] = fillKey{f.RequestID, f.OfferID, f.IPs, f.PricePerHour.String(), f.PricePerGB.String()}
	}
	return out
}

func (k fillKey) String() string {
	return fmt.Sprintf("%x<-%x ips=%d price=%s/%s", k.Req[:4], k.Off[:4], k.IPs, k.Hour, k.PerGB)
}

func diffKeys(a, b []fillKey) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			return fmt.Sprintf("fill %d: missing, want %v", i, b[i])
		case i >= len(b):
			return fmt.Sprintf("fill %d: %v, want none", i, a[i])
		case a[i] != b[i]:
			return fmt.Sprintf("fill %d: %v, want %v", i, a[i], b[i])
		}
	}
	return ""
}

func mustMatch(t testing.TB, orders []*orderbook.Order, at time.Time, p Params) []Fill {
	t.Helper()
	fs, err := Match(NewSnapshot(orders), at, p)
	if err != nil {
		t.Fatalf("Match: %v", err)
	}
	return fs
}

// The reference matcher: the rules of the package doc written out plainly,
// quadratic, with no index and no tree. The fast matcher must agree with it
// exactly.

func refUsable(o *orderbook.Order) bool {
	if o == nil || o.IPs == 0 {
		return false
	}
	for _, p := range []*big.Int{o.PricePerHour, o.PricePerGB} {
		if p == nil || p.Sign() < 0 || p.BitLen() > 256 {
			return false
		}
	}
	if o.Kind == orderbook.KindOffer {
		return o.IPType == orderbook.IPResidential || o.IPType == orderbook.IPMobile || o.IPType == orderbook.IPDatacenter
	}
	if o.Kind == orderbook.KindRequest {
		return o.IPType == orderbook.IPAny || o.IPType == orderbook.IPResidential ||
			o.IPType == orderbook.IPMobile || o.IPType == orderbook.IPDatacenter
	}
	return false
}

func refLive(o *orderbook.Order, at time.Time, p Params) bool {
	cut := at.Add(p.ExpiryMargin).Unix()
	if cut < 0 {
		cut = 0
	}
	return o.Expires > uint64(cut)
}

// refEligible says whether offer o may fill request r, both live.
func refEligible(r, o *orderbook.Order) bool {
	if r.Kind != orderbook.KindRequest || o.Kind != orderbook.KindOffer {
		return false
	}
	if r.Maker == o.Maker {
		return false
	}
	if r.Location.Country != o.Location.Country {
		return false
	}
	if r.Location.Region != "" && r.Location.Region != o.Location.Region {
		return false
	}
	if r.Location.City != "" && r.Location.City != o.Location.City {
		return false
	}
	if r.Location.ASN != 0 && r.Location.ASN != o.Location.ASN {
		return false
	}
	if r.IPType != orderbook.IPAny && r.IPType != o.IPType {
		return false
	}
	if r.Protocols&o.Protocols != r.Protocols {
		return false
	}
	if r.Duration < o.MinDuration || r.Duration > o.MaxDuration {
		return false
	}
	if o.Bandwidth < r.Bandwidth {
		return false
	}
	if o.PricePerHour.Cmp(r.PricePerHour) > 0 || o.PricePerGB.Cmp(r.PricePerGB) > 0 {
		return false
	}
	return true
}

// refSet is the snapshot's set rule: usable orders, one per id, the highest
// version of each (maker, nonce), ties to the lower id.
func refSet(orders []*orderbook.Order) []*orderbook.Order {
	type series struct {
		m common.Address
		n uint64
	}
	best := map[series]*orderbook.Order{}
	bestID := map[series]common.Hash{}
	for _, o := range orders {
		if !refUsable(o) {
			continue
		}
		k := series{o.Maker, o.Nonce}
		id := o.ID()
		b, ok := best[k]
		bid := bestID[k]
		if !ok || o.Version > b.Version || (o.Version == b.Version && bytes.Compare(id[:], bid[:]) < 0) {
			best[k], bestID[k] = o, id
		}
	}
	var out []*orderbook.Order
	for _, o := range best {
		out = append(out, o)
	}
	return out
}

func refMatch(orders []*orderbook.Order, at time.Time, p Params) []Fill {
	set := refSet(orders)
	ids := map[*orderbook.Order]common.Hash{}
	for _, o := range set {
		ids[o] = o.ID()
	}
	var reqs, offs []*orderbook.Order
	for _, o := range set {
		if !refLive(o, at, p) {
			continue
		}
		if o.Kind == orderbook.KindRequest {
			reqs = append(reqs, o)
		} else {
			offs = append(offs, o)
		}
	}
	sort.Slice(reqs, func(i, j int) bool {
		a, b := reqs[i], reqs[j]
		if c := a.PricePerHour.Cmp(b.PricePerHour); c != 0 {
			return c > 0
		}
		if c := a.PricePerGB.Cmp(b.PricePerGB); c != 0 {
			return c > 0
		}
		if a.Created != b.Created {
			return a.Created < b.Created
		}
		ia, ib := ids[a], ids[b]
		return bytes.Compare(ia[:], ib[:]) < 0
	})
	sort.Slice(offs, func(i, j int) bool {
		a, b := offs[i], offs[j]
		if c := a.PricePerHour.Cmp(b.PricePerHour); c != 0 {
			return c < 0
		}
		if c := a.PricePerGB.Cmp(b.PricePerGB); c != 0 {
			return c < 0
		}
		if a.Created != b.Created {
			return a.Created < b.Created
		}
		ia, ib := ids[a], ids[b]
		return bytes.Compare(ia[:], ib[:]) < 0
	})
	left := map[*orderbook.Order]uint32{}
	for _, o := range offs {
		left[o] = o.IPs
	}
	var out []Fill
	for _, r := range reqs {
		need, used := r.IPs, 0
		for _, o := range offs {
			if need == 0 || (p.MaxSplit > 0 && used == p.MaxSplit) {
				break
			}
			if left[o] == 0 || !refEligible(r, o) {
				continue
			}
			n := min(need, left[o])
			left[o] -= n
			need -= n
			used++
			out = append(out, Fill{Request: r, Offer: o, RequestID: ids[r], OfferID: ids[o], IPs: n,
				PricePerHour: o.PricePerHour, PricePerGB: o.PricePerGB})
		}
	}
	return out
}

// checkInvariants checks fills against the rules alone, with no reference
// to how they were chosen: every fill is eligible, live and struck at the
// offer's prices; no offer is oversold, no request overfilled, no pair
// repeated, no request split beyond MaxSplit, no superseded order used.
func checkInvariants(t testing.TB, orders []*orderbook.Order, at time.Time, p Params, fills []Fill) {
	t.Helper()
	inSet := map[common.Hash]bool{}
	for _, o := range refSet(orders) {
		inSet[o.ID()] = true
	}
	sold := map[common.Hash]uint64{}
	got := map[common.Hash]uint64{}
	splits := map[common.Hash]int{}
	pairs := map[[2]common.Hash]bool{}
	for i, f := range fills {
		r, o := f.Request, f.Offer
		switch {
		case r.ID() != f.RequestID || o.ID() != f.OfferID:
			t.Fatalf("fill %d: ids do not match the orders", i)
		case !inSet[f.RequestID] || !inSet[f.OfferID]:
			t.Fatalf("fill %d: uses an order outside the snapshot's set (superseded or unusable)", i)
		case !refLive(r, at, p) || !refLive(o, at, p):
			t.Fatalf("fill %d: expired order (request expires %d, offer %d, now %d)", i, r.Expires, o.Expires, at.Unix())
		case !refEligible(r, o):
			t.Fatalf("fill %d: offer %+v is not eligible for request %+v", i, *o, *r)
		case f.IPs == 0:
			t.Fatalf("fill %d: zero IPs", i)
		case f.PricePerHour.Cmp(o.PricePerHour) != 0 || f.PricePerGB.Cmp(o.PricePerGB) != 0:
			t.Fatalf("fill %d: price %s/%s, offer asks %s/%s", i, f.PricePerHour, f.PricePerGB, o.PricePerHour, o.PricePerGB)
		case f.PricePerHour.Cmp(r.PricePerHour) > 0 || f.PricePerGB.Cmp(r.PricePerGB) > 0:
			t.Fatalf("fill %d: price above the request's limit", i)
		case pairs[[2]common.Hash{f.RequestID, f.OfferID}]:
			t.Fatalf("fill %d: pair repeated", i)
		}
		pairs[[2]common.Hash{f.RequestID, f.OfferID}] = true
		sold[f.OfferID] += uint64(f.IPs)
		got[f.RequestID] += uint64(f.IPs)
		splits[f.RequestID]++
		if sold[f.OfferID] > uint64(o.IPs) {
			t.Fatalf("fill %d: offer oversold: %d of %d IPs", i, sold[f.OfferID], o.IPs)
		}
		if got[f.RequestID] > uint64(r.IPs) {
			t.Fatalf("fill %d: request overfilled: %d of %d IPs", i, got[f.RequestID], r.IPs)
		}
		if p.MaxSplit > 0 && splits[f.RequestID] > p.MaxSplit {
			t.Fatalf("fill %d: request split across %d offers, max %d", i, splits[f.RequestID], p.MaxSplit)
		}
	}
}
