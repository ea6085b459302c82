package matching

import (
	"math/big"
	"math/rand"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/ipsx/ipsx/orderbook"
)

// TestExplainReasons: each check, failed on its own, is the reason given,
// with the numbers in the detail; when several fail, the first in
// Reason's order is named.
func TestExplainReasons(t *testing.T) {
	unix := uint64(now.Unix())
	tests := []struct {
		name   string
		off    []mut
		req    []mut
		want   Reason
		detail string
	}{
		{name: "candidate", want: ReasonNone},
		{name: "expired", off: []mut{func(o *orderbook.Order) { o.Expires = unix }}, want: ReasonExpired},
		{name: "own offer", off: []mut{func(o *orderbook.Order) { o.Maker = maker(2) }}, want: ReasonOwnOffer},
		{name: "country", off: []mut{func(o *orderbook.Order) { o.Location.Country = "FR" }}, want: ReasonCountry, detail: "in FR, the request wants DE"},
		{name: "ip type", req: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPMobile }}, want: ReasonIPType, detail: "offers residential, the request wants mobile"},
		{name: "region", req: []mut{func(o *orderbook.Order) { o.Location.Region = "BY" }}, want: ReasonRegion},
		{name: "city", req: []mut{func(o *orderbook.Order) { o.Location.City = "Munich" }}, want: ReasonCity},
		{name: "asn", req: []mut{func(o *orderbook.Order) { o.Location.ASN = 3320 }}, want: ReasonASN},
		{name: "protocols", req: []mut{func(o *orderbook.Order) { o.Protocols = orderbook.ProtoTCP | orderbook.ProtoUDP }}, want: ReasonProtocols},
		{name: "duration short", req: []mut{func(o *orderbook.Order) { o.Duration = 59 }}, want: ReasonDuration, detail: "rents for 60 to 86400 s, the request wants 59 s"},
		{name: "duration long", req: []mut{func(o *orderbook.Order) { o.Duration = 86401 }}, want: ReasonDuration},
		{name: "bandwidth", req: []mut{func(o *orderbook.Order) { o.Bandwidth = 101 }}, want: ReasonBandwidth, detail: "100 Mbit/s per IP, the request wants at least 101"},
		{name: "price per hour", req: []mut{func(o *orderbook.Order) { o.PricePerHour = big.NewInt(9) }}, want: ReasonPricePerHour, detail: "asks 10 per IP-hour, the request allows at most 9"},
		{name: "price per GB", req: []mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(4) }}, want: ReasonPricePerGB, detail: "asks 5 per GB, the request allows at most 4"},
		{name: "country before price",
			off:  []mut{func(o *orderbook.Order) { o.Location.Country = "FR"; o.PricePerHour = big.NewInt(1000) }},
			want: ReasonCountry},
		{name: "duration before price",
			req:  []mut{func(o *orderbook.Order) { o.Duration = 10; o.PricePerGB = big.NewInt(0) }},
			want: ReasonDuration},
		// The README's example before it was fixed: 50 per GB asked, 0 allowed.
		{name: "readme",
			off: []mut{func(o *orderbook.Order) { o.PricePerHour = big.NewInt(1000); o.PricePerGB = big.NewInt(50) }},
			req: []mut{func(o *orderbook.Order) {
				o.PricePerHour = big.NewInt(5_000_000_000_000_000)
				o.PricePerGB = big.NewInt(0)
				o.Duration = 3600
			}},
			want: ReasonPricePerGB, detail: "asks 50 per GB, the request allows at most 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, req := offer(tt.off...), request(tt.req...)
			for _, in := range [][]*orderbook.Order{{off}, {off, req}} { // req outside the snapshot, and in it
				vs, err := Explain(NewSnapshot(in), req, now, Params{})
				if err != nil {
					t.Fatal(err)
				}
				if len(vs) != 1 || vs[0].Offer != off || vs[0].OfferID != off.ID() {
					t.Fatalf("verdicts %+v, want one for the offer", vs)
				}
				if vs[0].Reason != tt.want || !strings.Contains(vs[0].Detail, tt.detail) {
					t.Fatalf("reason %q (%s), want %q (%s)", vs[0].Reason, vs[0].Detail, tt.want, tt.detail)
				}
				if (vs[0].IPs == 1) != (tt.want == ReasonNone) {
					t.Fatalf("IPs %d for reason %q", vs[0].IPs, vs[0].Reason)
				}
			}
		})
	}
}

// TestExplainOrderAndCapacity: candidates first in offer priority, then
// the misses that came closest; an offer whose only IP goes to a request
// of higher priority is marked capacity when the request is in the
// snapshot; MaxCandidates caps the list; bad input is an error.
func TestExplainOrderAndCapacity(t *testing.T) {
	cheap := offer(func(o *orderbook.Order) { o.PricePerHour = big.NewInt(5) })
	dear := offer(func(o *orderbook.Order) { o.PricePerHour = big.NewInt(9) })
	gb := offer(func(o *orderbook.Order) { o.PricePerGB = big.NewInt(500) })
	fr := offer(func(o *orderbook.Order) { o.Location.Country = "FR" })
	short := offer(func(o *orderbook.Order) { o.MaxDuration = 60 })
	req := request(func(o *orderbook.Order) { o.Duration = 600 })
	rival := request(func(o *orderbook.Order) { o.Maker = maker(3); o.Duration = 600; o.PricePerHour = big.NewInt(200) })

	s := NewSnapshot([]*orderbook.Order{fr, short, gb, dear, cheap, req})
	vs, err := Explain(s, req, now, Params{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		o *orderbook.Order
		r Reason
	}{{cheap, ReasonNone}, {dear, ReasonNone}, {gb, ReasonPricePerGB}, {short, ReasonDuration}, {fr, ReasonCountry}}
	if len(vs) != len(want) {
		t.Fatalf("%d verdicts, want %d", len(vs), len(want))
	}
	for i, w := range want {
		if vs[i].Offer != w.o || vs[i].Reason != w.r {
			t.Fatalf("verdict %d: %s %q, want %s %q", i, vs[i].OfferID.Hex()[:10], vs[i].Reason, w.o.ID().Hex()[:10], w.r)
		}
	}
	cands, err := Candidates(s, req, now, Params{})
	if err != nil || len(cands) != 2 || cands[0].Offer != cheap || cands[1].Offer != dear {
		t.Fatalf("Candidates: %+v %v", cands, err)
	}

	// The rival outbids req for the cheap offer's one IP, and then the dear one's.
	s = NewSnapshot([]*orderbook.Order{cheap, dear, req, rival, func() *orderbook.Order {
		r := *rival
		r.Nonce++
		return &r
	}()})
	vs, err = Explain(s, req, now, Params{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Reason != ReasonCapacity || !strings.Contains(v.Detail, "higher priority") {
			t.Fatalf("with two rivals of higher priority: %s %q (%s), want capacity", v.OfferID.Hex()[:10], v.Reason, v.Detail)
		}
	}

	if vs, _ := Explain(NewSnapshot([]*orderbook.Order{fr, short, gb, dear, cheap}), req, now, Params{MaxCandidates: 2}); len(vs) != 2 {
		t.Fatalf("MaxCandidates 2: %d verdicts", len(vs))
	}
	if _, err := Explain(s, cheap, now, Params{}); err != ErrNotRequest {
		t.Fatalf("an offer as the request: %v", err)
	}
	if _, err := Explain(s, req, now, Params{MaxCandidates: -1}); err == nil {
		t.Fatal("bad params accepted")
	}
	if vs, err := Explain(s, req, now.Add(2*time.Hour), Params{}); err != nil || vs != nil {
		t.Fatalf("expired request: %+v %v", vs, err)
	}
}

// TestExplainQuick: on random books, Explain's candidates and capacity
// misses are exactly Candidates' offers, in the same order, and its
// answer does not depend on the order of the book.
func TestExplainQuick(t *testing.T) {
	cfg := &quick.Config{MaxCount: 60, Rand: rand.New(rand.NewSource(2))}
	i := 0
	f := func(b book) bool {
		i++
		p := quickParams[i%len(quickParams)]
		p.MaxCandidates = 0
		at := now.Add(time.Duration(i%4) * time.Second)
		s := NewSnapshot(b)
		shuffled := append(book(nil), b...)
		rand.New(rand.NewSource(int64(i))).Shuffle(len(shuffled), func(x, y int) { shuffled[x], shuffled[y] = shuffled[y], shuffled[x] })
		s2 := NewSnapshot(shuffled)
		for _, r := range refSet(b) {
			if r.Kind != orderbook.KindRequest {
				continue
			}
			vs, err := Explain(s, r, at, p)
			if err != nil {
				t.Fatal(err)
			}
			cands, err := Candidates(s, r, at, p)
			if err != nil {
				t.Fatal(err)
			}
			var got []Verdict
			for _, v := range vs {
				if v.Reason == ReasonNone || v.Reason == ReasonCapacity {
					got = append(got, v)
				}
			}
			// Candidates' order is offer priority; Explain puts capacity
			// misses after the candidates, so compare as sets plus order
			// within each group.
			if len(got) != len(cands) {
				t.Errorf("request %s: %d candidates and capacity misses, Candidates %d", r.ID().Hex()[:10], len(got), len(cands))
				return false
			}
			in := map[[32]byte]bool{}
			for _, c := range cands {
				in[c.OfferID] = true
			}
			for _, v := range got {
				if !in[v.OfferID] {
					t.Errorf("request %s: Explain names %s, Candidates does not", r.ID().Hex()[:10], v.OfferID.Hex()[:10])
					return false
				}
			}
			vs2, _ := Explain(s2, r, at, p)
			if len(vs2) != len(vs) {
				t.Errorf("shuffled: %d verdicts, %d before", len(vs2), len(vs))
				return false
			}
			for k := range vs {
				if vs[k].OfferID != vs2[k].OfferID || vs[k].Reason != vs2[k].Reason {
					t.Errorf("shuffled: verdict %d differs", k)
					return false
				}
			}
		}
		return true
	}
	if err := quick.Check(f, cfg); err != nil {
		t.Fatal(err)
	}
}
