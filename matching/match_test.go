package matching

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ipsx/ipsx/orderbook"
)

type mut = func(*orderbook.Order)

func TestFilters(t *testing.T) {
	unix := uint64(now.Unix())
	tests := []struct {
		name string
		off  []mut
		req  []mut
		p    Params
		want bool
	}{
		{name: "defaults match", want: true},

		{name: "country differs", off: []mut{func(o *orderbook.Order) { o.Location.Country = "FR" }}},

		{name: "region equal", want: true,
			off: []mut{func(o *orderbook.Order) { o.Location.Region = "BY" }},
			req: []mut{func(o *orderbook.Order) { o.Location.Region = "BY" }}},
		{name: "region differs",
			off: []mut{func(o *orderbook.Order) { o.Location.Region = "BE" }},
			req: []mut{func(o *orderbook.Order) { o.Location.Region = "BY" }}},
		{name: "region open in request", want: true,
			off: []mut{func(o *orderbook.Order) { o.Location.Region = "BE" }}},
		{name: "region asked, offer has none",
			req: []mut{func(o *orderbook.Order) { o.Location.Region = "BY" }}},
		{name: "region is case-sensitive",
			off: []mut{func(o *orderbook.Order) { o.Location.Region = "by" }},
			req: []mut{func(o *orderbook.Order) { o.Location.Region = "BY" }}},

		{name: "city equal", want: true,
			off: []mut{func(o *orderbook.Order) { o.Location.City = "Munich" }},
			req: []mut{func(o *orderbook.Order) { o.Location.City = "Munich" }}},
		{name: "city differs",
			off: []mut{func(o *orderbook.Order) { o.Location.City = "Berlin" }},
			req: []mut{func(o *orderbook.Order) { o.Location.City = "Munich" }}},
		{name: "city open in request", want: true,
			off: []mut{func(o *orderbook.Order) { o.Location.City = "Berlin" }}},

		{name: "asn equal", want: true,
			off: []mut{func(o *orderbook.Order) { o.Location.ASN = 3320 }},
			req: []mut{func(o *orderbook.Order) { o.Location.ASN = 3320 }}},
		{name: "asn differs",
			off: []mut{func(o *orderbook.Order) { o.Location.ASN = 6805 }},
			req: []mut{func(o *orderbook.Order) { o.Location.ASN = 3320 }}},
		{name: "asn open in request", want: true,
			off: []mut{func(o *orderbook.Order) { o.Location.ASN = 6805 }}},

		{name: "any type takes mobile", want: true,
			off: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPMobile }}},
		{name: "any type takes datacenter", want: true,
			off: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPDatacenter }}},
		{name: "type equal", want: true,
			off: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPMobile }},
			req: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPMobile }}},
		{name: "type differs",
			off: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPResidential }},
			req: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPMobile }}},
		{name: "offer of type any is unusable",
			off: []mut{func(o *orderbook.Order) { o.IPType = orderbook.IPAny }}},

		{name: "offer lacks udp",
			req: []mut{func(o *orderbook.Order) { o.Protocols = orderbook.ProtoTCP | orderbook.ProtoUDP }}},
		{name: "offer has more protocols", want: true,
			off: []mut{func(o *orderbook.Order) { o.Protocols = orderbook.ProtoTCP | orderbook.ProtoUDP }}},
		{name: "both protocols", want: true,
			off: []mut{func(o *orderbook.Order) { o.Protocols = orderbook.ProtoTCP | orderbook.ProtoUDP }},
			req: []mut{func(o *orderbook.Order) { o.Protocols = orderbook.ProtoTCP | orderbook.ProtoUDP }}},

		{name: "duration at offer's min", want: true,
			req: []mut{func(o *orderbook.Order) { o.Duration = 60 }}},
		{name: "duration at offer's max", want: true,
			req: []mut{func(o *orderbook.Order) { o.Duration = 86400 }}},
		{name: "duration below offer's min",
			req: []mut{func(o *orderbook.Order) { o.Duration = 59 }}},
		{name: "duration above offer's max",
			req: []mut{func(o *orderbook.Order) { o.Duration = 86401 }}},

		{name: "bandwidth equal", want: true,
			req: []mut{func(o *orderbook.Order) { o.Bandwidth = 100 }}},
		{name: "bandwidth short",
			req: []mut{func(o *orderbook.Order) { o.Bandwidth = 101 }}},

		{name: "price per hour at the max", want: true,
			req: []mut{func(o *orderbook.Order) { o.PricePerHour = big.NewInt(10) }}},
		{name: "price per hour above the max",
			req: []mut{func(o *orderbook.Order) { o.PricePerHour = big.NewInt(9) }}},
		{name: "price per GB at the max", want: true,
			req: []mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(5) }}},
		{name: "price per GB above the max",
			req: []mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(4) }}},
		{name: "free per GB", want: true,
			off: []mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(0) }},
			req: []mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(0) }}},
		{name: "prices beyond 64 bits", want: true,
			off: []mut{func(o *orderbook.Order) { o.PricePerHour = new(big.Int).Lsh(big.NewInt(3), 200) }},
			req: []mut{func(o *orderbook.Order) { o.PricePerHour = new(big.Int).Lsh(big.NewInt(3), 200) }}},
		{name: "price beyond 256 bits is unusable",
			off: []mut{func(o *orderbook.Order) { o.PricePerHour = new(big.Int).Lsh(big.NewInt(1), 256) }},
			req: []mut{func(o *orderbook.Order) { o.PricePerHour = new(big.Int).Lsh(big.NewInt(1), 257) }}},
		{name: "missing price is unusable",
			off: []mut{func(o *orderbook.Order) { o.PricePerGB = nil }}},
		{name: "negative price is unusable",
			off: []mut{func(o *orderbook.Order) { o.PricePerHour = big.NewInt(-1) }}},

		{name: "offer expires at now",
			off: []mut{func(o *orderbook.Order) { o.Expires = unix }}},
		{name: "offer expires a second after now", want: true,
			off: []mut{func(o *orderbook.Order) { o.Expires = unix + 1 }}},
		{name: "request expires at now",
			req: []mut{func(o *orderbook.Order) { o.Expires = unix }}},
		{name: "request expired before now",
			req: []mut{func(o *orderbook.Order) { o.Expires = unix - 10 }}},
		{name: "offer expires within the margin",
			off: []mut{func(o *orderbook.Order) { o.Expires = unix + 30 }},
			p:   Params{ExpiryMargin: 30 * time.Second}},
		{name: "offer expires after the margin", want: true,
			off: []mut{func(o *orderbook.Order) { o.Expires = unix + 31 }},
			p:   Params{ExpiryMargin: 30 * time.Second}},
		{name: "request expires within the margin",
			req: []mut{func(o *orderbook.Order) { o.Expires = unix + 30 }},
			p:   Params{ExpiryMargin: 30 * time.Second}},

		{name: "self-deal",
			off: []mut{func(o *orderbook.Order) { o.Maker = maker(7) }},
			req: []mut{func(o *orderbook.Order) { o.Maker = maker(7) }}},

		{name: "offer without IPs",
			off: []mut{func(o *orderbook.Order) { o.IPs = 0 }}},
		{name: "request without IPs",
			req: []mut{func(o *orderbook.Order) { o.IPs = 0 }}},
		{name: "unknown kind",
			off: []mut{func(o *orderbook.Order) { o.Kind = 9 }}},
		{name: "two offers do not match",
			req: []mut{func(o *orderbook.Order) {
				*o = *offer()
				o.Maker = maker(2)
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, req := offer(tt.off...), request(tt.req...)
			orders := []*orderbook.Order{off, req}
			fills := mustMatch(t, orders, now, tt.p)
			checkInvariants(t, orders, now, tt.p, fills)
			if got := len(fills) == 1; got != tt.want || len(fills) > 1 {
				t.Fatalf("Match: %d fills, want match %v", len(fills), tt.want)
			}
			if tt.want && (fills[0].Offer != off || fills[0].Request != req || fills[0].IPs != 1) {
				t.Fatalf("Match: %+v", fills[0])
			}
			if req.Kind != orderbook.KindRequest || !usable(req) {
				return
			}
			cands, err := Candidates(NewSnapshot(orders), req, now, tt.p)
			if err != nil {
				t.Fatalf("Candidates: %v", err)
			}
			if got := len(cands) == 1; got != tt.want || len(cands) > 1 {
				t.Fatalf("Candidates: %d, want match %v", len(cands), tt.want)
			}
		})
	}
}

// TestOfferPriority exercises each tie-break between two offers on its own:
// a must come before b although b wins every later criterion.
func TestOfferPriority(t *testing.T) {
	tests := []struct {
		name string
		a, b []mut // a is to come first
	}{
		{"cheaper per hour",
			[]mut{func(o *orderbook.Order) { o.PricePerHour = big.NewInt(9); o.PricePerGB = big.NewInt(50) }},
			[]mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(0); o.Created -= 50 }}},
		{"equal per hour, cheaper per GB",
			[]mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(4) }},
			[]mut{func(o *orderbook.Order) { o.Created -= 50 }}},
		{"equal prices, earlier created",
			[]mut{func(o *orderbook.Order) { o.Created -= 1 }},
			nil},
		{"all equal, lower id", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := offer(tt.a...), offer(tt.b...)
			if tt.a == nil && tt.b == nil && lessID(b, a) {
				a, b = b, a
			}
			req := request()
			for _, orders := range [][]*orderbook.Order{{a, b, req}, {req, b, a}} {
				fills := mustMatch(t, orders, now, Params{})
				if len(fills) != 1 || fills[0].Offer != a {
					t.Fatalf("Match took %v, want the first offer", fills)
				}
				cands, err := Candidates(NewSnapshot(orders), req, now, Params{})
				if err != nil || len(cands) != 2 || cands[0].Offer != a || cands[1].Offer != b {
					t.Fatalf("Candidates = %v, %v; want a then b", cands, err)
				}
			}
		})
	}
}

func TestRequestPriority(t *testing.T) {
	tests := []struct {
		name string
		a, b []mut // a is to be served first
	}{
		{"higher max per hour",
			[]mut{func(o *orderbook.Order) { o.PricePerHour = big.NewInt(101); o.PricePerGB = big.NewInt(6) }},
			[]mut{func(o *orderbook.Order) { o.Created -= 50 }}},
		{"equal per hour, higher max per GB",
			[]mut{func(o *orderbook.Order) { o.PricePerGB = big.NewInt(101) }},
			[]mut{func(o *orderbook.Order) { o.Created -= 50 }}},
		{"equal prices, earlier created",
			[]mut{func(o *orderbook.Order) { o.Created -= 1 }},
			nil},
		{"all equal, lower id", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := request(tt.a...), request(tt.b...)
			if tt.a == nil && tt.b == nil && lessID(b, a) {
				a, b = b, a
			}
			off := offer()
			for _, orders := range [][]*orderbook.Order{{a, b, off}, {off, b, a}} {
				fills := mustMatch(t, orders, now, Params{})
				if len(fills) != 1 || fills[0].Request != a {
					t.Fatalf("Match served %v, want the first request", fills)
				}
			}
		})
	}
}

func lessID(a, b *orderbook.Order) bool {
	x, y := a.ID(), b.ID()
	return string(x[:]) < string(y[:])
}

func ips(n uint32) mut { return func(o *orderbook.Order) { o.IPs = n } }

func hour(p int64) mut { return func(o *orderbook.Order) { o.PricePerHour = big.NewInt(p) } }

func TestSplitting(t *testing.T) {
	type want struct {
		req, off int // indexes into reqs and offs
		ips      uint32
	}
	tests := []struct {
		name string
		reqs [][]mut
		offs [][]mut
		p    Params
		want []want
	}{
		{name: "request from several offers",
			reqs: [][]mut{{ips(5)}},
			offs: [][]mut{{ips(2), hour(3)}, {ips(2), hour(1)}, {ips(2), hour(2)}},
			want: []want{{0, 1, 2}, {0, 2, 2}, {0, 0, 1}}},
		{name: "offer across several requests",
			reqs: [][]mut{{ips(2), hour(50)}, {ips(2), hour(70)}, {ips(2), hour(60)}},
			offs: [][]mut{{ips(5)}},
			want: []want{{1, 0, 2}, {2, 0, 2}, {0, 0, 1}}},
		{name: "partial fill kept",
			reqs: [][]mut{{ips(10)}},
			offs: [][]mut{{ips(3)}},
			want: []want{{0, 0, 3}}},
		{name: "max split",
			reqs: [][]mut{{ips(5)}},
			offs: [][]mut{{ips(1), hour(1)}, {ips(1), hour(2)}, {ips(1), hour(3)}},
			p:    Params{MaxSplit: 2},
			want: []want{{0, 0, 1}, {0, 1, 1}}},
		{name: "dearer request does not starve when it cannot use the cheap offer",
			reqs: [][]mut{
				{ips(2), hour(90), func(o *orderbook.Order) { o.IPType = orderbook.IPMobile }},
				{ips(2), hour(80)},
			},
			offs: [][]mut{
				{ips(2), hour(1)},
				{ips(3), hour(5), func(o *orderbook.Order) { o.IPType = orderbook.IPMobile }},
			},
			want: []want{{0, 1, 2}, {1, 0, 2}}},
		{name: "exhausted offer is skipped",
			reqs: [][]mut{{ips(3), hour(90)}, {ips(2), hour(80)}},
			offs: [][]mut{{ips(3), hour(1)}, {ips(4), hour(2)}},
			want: []want{{0, 0, 3}, {1, 1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reqs, offs, all []*orderbook.Order
			for _, m := range tt.reqs {
				reqs = append(reqs, request(m...))
			}
			for _, m := range tt.offs {
				offs = append(offs, offer(m...))
			}
			all = append(append(all, offs...), reqs...)
			fills := mustMatch(t, all, now, tt.p)
			checkInvariants(t, all, now, tt.p, fills)
			if len(fills) != len(tt.want) {
				t.Fatalf("got %d fills %v, want %d", len(fills), fills, len(tt.want))
			}
			for i, w := range tt.want {
				f := fills[i]
				if f.Request != reqs[w.req] || f.Offer != offs[w.off] || f.IPs != w.ips {
					t.Fatalf("fill %d: %+v, want request %d offer %d ips %d", i, f, w.req, w.off, w.ips)
				}
			}
			if d := diffKeys(keys(fills), keys(refMatch(all, now, tt.p))); d != "" {
				t.Fatalf("differs from the reference: %s", d)
			}
		})
	}
}

func TestSnapshotSet(t *testing.T) {
	t.Run("duplicates count once", func(t *testing.T) {
		off := offer(ips(1))
		cp := *off
		reqs := []*orderbook.Order{request(), request()}
		fills := mustMatch(t, []*orderbook.Order{off, reqs[0], off, &cp, reqs[1], reqs[0]}, now, Params{})
		if len(fills) != 1 {
			t.Fatalf("got %d fills, want 1 (the offer has one IP)", len(fills))
		}
	})
	t.Run("newest version supersedes", func(t *testing.T) {
		v1 := offer(ips(5))
		v2 := offer(ips(2))
		v2.Nonce, v2.Version = v1.Nonce, v1.Version+1
		for _, orders := range [][]*orderbook.Order{{v1, v2, request(ips(5))}, {request(ips(5)), v2, v1}} {
			fills := mustMatch(t, orders, now, Params{})
			if len(fills) != 1 || fills[0].Offer != v2 || fills[0].IPs != 2 {
				t.Fatalf("got %v, want 2 IPs of version 2", fills)
			}
		}
	})
	t.Run("equal versions: lower id", func(t *testing.T) {
		a := offer(ips(5))
		b := offer(ips(2))
		b.Nonce = a.Nonce
		if lessID(b, a) {
			a, b = b, a
		}
		for _, orders := range [][]*orderbook.Order{{a, b, request(ips(5))}, {request(ips(5)), b, a}} {
			fills := mustMatch(t, orders, now, Params{})
			if len(fills) != 1 || fills[0].Offer != a {
				t.Fatalf("got %v, want only the lower id", fills)
			}
		}
	})
	t.Run("len", func(t *testing.T) {
		off := offer()
		s := NewSnapshot([]*orderbook.Order{off, off, nil, offer(func(o *orderbook.Order) { o.IPs = 0 }), request()})
		if s.Len() != 2 {
			t.Fatalf("Len = %d, want 2", s.Len())
		}
	})
	t.Run("fill prices are copies", func(t *testing.T) {
		off := offer()
		fills := mustMatch(t, []*orderbook.Order{off, request()}, now, Params{})
		fills[0].PricePerHour.SetInt64(999)
		if off.PricePerHour.Int64() != 10 {
			t.Fatal("changing a fill's price changed the offer's")
		}
	})
	t.Run("empty", func(t *testing.T) {
		if fills := mustMatch(t, nil, now, Params{}); len(fills) != 0 {
			t.Fatalf("got %v", fills)
		}
	})
}

func TestCandidates(t *testing.T) {
	cheap := offer(ips(1), hour(1))
	dear := offer(ips(8), hour(2))
	mobile := offer(ips(8), hour(1), func(o *orderbook.Order) { o.IPType = orderbook.IPMobile })
	first := request(ips(1), hour(99))
	second := request(ips(4), hour(50), func(o *orderbook.Order) { o.IPType = orderbook.IPResidential })
	s := NewSnapshot([]*orderbook.Order{cheap, dear, mobile, first, second})

	// first takes cheap in Match, but second still sees it as a candidate.
	got, err := Candidates(s, second, now, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Offer != cheap || got[0].IPs != 1 || got[1].Offer != dear || got[1].IPs != 4 {
		t.Fatalf("Candidates = %+v", got)
	}
	if got[0].RequestID != second.ID() || got[0].OfferID != cheap.ID() {
		t.Fatal("ids wrong")
	}
	got, _ = Candidates(s, second, now, Params{MaxCandidates: 1})
	if len(got) != 1 || got[0].Offer != cheap {
		t.Fatalf("MaxCandidates 1: %+v", got)
	}
	// A request outside the snapshot works too.
	got, _ = Candidates(s, request(ips(3)), now, Params{})
	if len(got) != 3 {
		t.Fatalf("outside request: %d candidates, want 3", len(got))
	}
	if got, _ := Candidates(s, request(func(o *orderbook.Order) { o.Location.Country = "FR" }), now, Params{}); len(got) != 0 {
		t.Fatalf("other country: %v", got)
	}
	if got, _ := Candidates(s, first, time.Unix(int64(first.Expires), 0), Params{}); len(got) != 0 {
		t.Fatalf("expired request: %v", got)
	}
	if _, err := Candidates(s, cheap, now, Params{}); !errors.Is(err, ErrNotRequest) {
		t.Fatalf("offer: err %v, want ErrNotRequest", err)
	}
	if _, err := Candidates(s, nil, now, Params{}); !errors.Is(err, ErrNotRequest) {
		t.Fatalf("nil: err %v, want ErrNotRequest", err)
	}
}

func TestParams(t *testing.T) {
	s := NewSnapshot(nil)
	for _, p := range []Params{
		{ExpiryMargin: -time.Second},
		{MaxSplit: -1},
		{MaxCandidates: -1},
	} {
		if _, err := Match(s, now, p); !errors.Is(err, ErrParams) {
			t.Errorf("Match(%+v): err %v, want ErrParams", p, err)
		}
		if _, err := Candidates(s, request(), now, p); !errors.Is(err, ErrParams) {
			t.Errorf("Candidates(%+v): err %v, want ErrParams", p, err)
		}
	}
	if _, err := Match(s, now, Params{}); err != nil {
		t.Errorf("zero Params: %v", err)
	}
}

func TestTimeBeforeEpoch(t *testing.T) {
	orders := []*orderbook.Order{offer(), request()}
	fills := mustMatch(t, orders, time.Unix(-100, 0), Params{})
	if len(fills) != 1 {
		t.Fatalf("got %d fills", len(fills))
	}
}
