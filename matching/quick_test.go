package matching

import (
	"math/big"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// book is a random order book for testing/quick. Its values come from small
// domains so that ties on price and created time, self-deals, superseded
// versions, duplicates, expired orders and every filter happen often.
type book []*orderbook.Order

func (book) Generate(rng *rand.Rand, size int) reflect.Value {
	return reflect.ValueOf(randomBook(rng, 1+rng.Intn(3*size+1)))
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.Intn(len(xs))] }

// randomBook returns n orders (some of them repeated or superseded).
func randomBook(rng *rand.Rand, n int) book {
	unix := uint64(now.Unix())
	makers := 2 + rng.Intn(n/4+2)
	b := make(book, 0, n)
	for len(b) < n {
		if len(b) > 0 && rng.Intn(40) == 0 { // a repeat: same pointer or a copy
			prev := b[rng.Intn(len(b))]
			if rng.Intn(2) == 0 {
				cp := *prev
				prev = &cp
			}
			b = append(b, prev)
			continue
		}
		o := &orderbook.Order{
			Maker:        maker(rng.Intn(makers)),
			Nonce:        uint64(rng.Int63()),
			Created:      unix - uint64(rng.Intn(4)),
			Expires:      unix - 2 + uint64(rng.Intn(40)),
			Location:     randomLocation(rng),
			IPs:          uint32(1 + rng.Intn(pick(rng, 2, 4, 12))),
			Protocols:    pick(rng, orderbook.ProtoTCP, orderbook.ProtoTCP, orderbook.ProtoTCP|orderbook.ProtoUDP),
			PricePerHour: big.NewInt(int64(rng.Intn(8))),
			PricePerGB:   big.NewInt(int64(rng.Intn(5))),
			Bandwidth:    uint32(pick(rng, 1, 10, 50, 100)),
		}
		if rng.Intn(50) == 0 {
			o.PricePerHour.Lsh(o.PricePerHour, 190) // beyond 64 bits
		}
		if rng.Intn(2) == 0 {
			o.Kind = orderbook.KindOffer
			o.IPType = orderbook.IPType(1 + rng.Intn(3))
			o.MinDuration = uint32(pick(rng, 5, 60, 3600))
			o.MaxDuration = o.MinDuration + uint32(pick(rng, 0, 600, 86400))
		} else {
			o.Kind = orderbook.KindRequest
			o.IPType = orderbook.IPType(pick(rng, 0, 0, 1, 2, 3))
			o.Duration = uint32(pick(rng, 5, 60, 600, 3600, 7200))
			o.Bandwidth = uint32(pick(rng, 0, 1, 10, 50, 100))
			o.PricePerHour.Add(o.PricePerHour, big.NewInt(int64(rng.Intn(4))))
			if rng.Intn(2) == 0 {
				o.Protocols = orderbook.ProtoTCP
			}
		}
		if len(b) > 0 && rng.Intn(20) == 0 { // another version of a series
			prev := b[rng.Intn(len(b))]
			o.Maker, o.Nonce = prev.Maker, prev.Nonce
			o.Version = prev.Version + uint32(rng.Intn(3)) - 1
		}
		b = append(b, o)
	}
	return b
}

func randomLocation(rng *rand.Rand) orderbook.Location {
	l := orderbook.Location{Country: pick(rng, "DE", "DE", "FR", "US")}
	if rng.Intn(3) == 0 {
		l.Region = pick(rng, "BY", "BE")
	}
	if rng.Intn(4) == 0 {
		l.City = pick(rng, "Munich", "Berlin")
	}
	if rng.Intn(4) == 0 {
		l.ASN = uint32(pick(rng, 3320, 6805))
	}
	return l
}

var quickParams = []Params{
	{},
	{MaxSplit: 2},
	{ExpiryMargin: 10 * time.Second},
}

// TestMatchQuick: the fast matcher equals the reference on random books,
// keeps every invariant, and does not depend on the order of its input.
func TestMatchQuick(t *testing.T) {
	cfg := &quick.Config{MaxCount: 300, Rand: rand.New(rand.NewSource(1))}
	i := 0
	f := func(b book) bool {
		i++
		p := quickParams[i%len(quickParams)]
		checkBook(t, rand.New(rand.NewSource(int64(i))), b, p, 4)
		return !t.Failed()
	}
	if err := quick.Check(f, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestMatchLarge is TestMatchQuick on books of up to 10,000 orders.
func TestMatchLarge(t *testing.T) {
	for i, n := range []int{1000, 3000, 10000} {
		rng := rand.New(rand.NewSource(int64(100 + i)))
		b := randomBook(rng, n)
		checkBook(t, rng, b, quickParams[i%len(quickParams)], 3)
		if t.Failed() {
			return
		}
	}
}

// checkBook compares Match on b with the reference, checks the invariants,
// then matches perms shuffled copies of b (and b doubled) and wants the
// same answer each time.
func checkBook(t *testing.T, rng *rand.Rand, b book, p Params, perms int) {
	t.Helper()
	at := now.Add(time.Duration(rng.Intn(4)) * time.Second)
	got := mustMatch(t, b, at, p)
	checkInvariants(t, b, at, p, got)
	want := keys(refMatch(b, at, p))
	if d := diffKeys(keys(got), want); d != "" {
		t.Errorf("book of %d orders, params %+v: differs from the reference: %s", len(b), p, d)
		return
	}
	shuffled := append(book(nil), b...)
	for range perms {
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if d := diffKeys(keys(mustMatch(t, shuffled, at, p)), want); d != "" {
			t.Errorf("book of %d orders, shuffled: %s", len(b), d)
			return
		}
	}
	doubled := append(append(book(nil), shuffled...), b...)
	if d := diffKeys(keys(mustMatch(t, doubled, at, p)), want); d != "" {
		t.Errorf("book of %d orders, doubled: %s", len(b), d)
	}
	// The ids handed in change nothing but who computes them.
	ids := make([]common.Hash, len(doubled))
	for i, o := range doubled {
		if refUsable(o) {
			ids[i] = o.ID()
		}
	}
	fs, err := Match(NewSnapshotWithIDs(doubled, ids), at, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffKeys(keys(fs), want); d != "" {
		t.Errorf("book of %d orders, doubled, with ids: %s", len(b), d)
	}
	checkCandidates(t, b, at, p)
}

// checkCandidates checks Candidates for a few requests of b against the
// reference filter: every eligible live offer of the set, in offer priority.
func checkCandidates(t *testing.T, b book, at time.Time, p Params) {
	t.Helper()
	s := NewSnapshot(b)
	set := refSet(b)
	n := 0
	for _, r := range set {
		if r.Kind != orderbook.KindRequest || n == 5 {
			continue
		}
		n++
		got, err := Candidates(s, r, at, p)
		if err != nil {
			t.Fatal(err)
		}
		var want []*orderbook.Order
		if refLive(r, at, p) {
			for _, o := range set {
				if o.Kind == orderbook.KindOffer && refLive(o, at, p) && refEligible(r, o) {
					want = append(want, o)
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("Candidates: %d, want %d", len(got), len(want))
		}
		for i, f := range got {
			if f.IPs != min(r.IPs, f.Offer.IPs) || f.Request != r {
				t.Fatalf("candidate %d: %+v", i, f)
			}
			if i > 0 && compareOffers(got[i-1].Offer, f.Offer, got[i-1].OfferID, f.OfferID) >= 0 {
				t.Fatalf("candidates %d and %d out of order", i-1, i)
			}
		}
	}
}
