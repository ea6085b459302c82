package matching

import (
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/ipsx/ipsx/orderbook"
)

// orderBytes is how many fuzz bytes make one order.
const orderBytes = 11

// decodeBook turns fuzz bytes into a time, params and a small book. Every
// field comes from a small domain so that matches are likely; the decoder
// also makes orders the validator would reject (an offer of type any, no
// IPs, equal makers), which the matcher must survive.
func decodeBook(data []byte) (time.Time, Params, book) {
	if len(data) < 2 {
		return now, Params{}, nil
	}
	at := now.Add(time.Duration(data[0]%8) * time.Second)
	p := Params{MaxSplit: int(data[1] % 4), ExpiryMargin: time.Duration(data[1]>>2%4) * time.Second}
	data = data[2:]
	unix := uint64(now.Unix())
	var b book
	for len(data) >= orderBytes && len(b) < 64 {
		d := data[:orderBytes]
		data = data[orderBytes:]
		if d[0]&0x80 != 0 && len(b) > 0 { // a repeat of an earlier order
			b = append(b, b[int(d[1])%len(b)])
			continue
		}
		o := &orderbook.Order{
			Kind:    orderbook.KindOffer,
			Maker:   maker(int(d[0] >> 4 & 7)),
			Nonce:   uint64(d[1]),
			Version: uint32(d[2] >> 6),
			Created: unix - uint64(d[2]&3),
			Expires: unix - 2 + uint64(d[2]>>2&15),
			Location: orderbook.Location{
				Country: []string{"DE", "FR"}[d[3]&1],
				Region:  []string{"", "", "BY", "BE"}[d[3]>>1&3],
				City:    []string{"", "", "Munich", "Berlin"}[d[3]>>3&3],
				ASN:     []uint32{0, 0, 3320, 6805}[d[3]>>5&3],
			},
			IPType:       orderbook.IPType(d[4] & 3),
			IPs:          uint32(d[4] >> 2 & 7),
			Protocols:    orderbook.Protocols(d[4] >> 5 & 3),
			PricePerHour: big.NewInt(int64(d[5] & 15)),
			PricePerGB:   big.NewInt(int64(d[5] >> 4)),
			Bandwidth:    uint32(d[6]),
		}
		durations := []uint32{5, 60, 600, 3600}
		if d[0]&1 == 0 {
			o.MinDuration = durations[d[7]&3]
			o.MaxDuration = o.MinDuration + durations[d[7]>>2&3]
		} else {
			o.Kind = orderbook.KindRequest
			o.Duration = durations[d[7]&3] + uint32(d[7]>>2&1)
		}
		switch d[8] {
		case 0xff:
			o.PricePerGB = nil
		case 0xfe:
			o.PricePerHour = new(big.Int).Lsh(big.NewInt(1), 256)
		case 0xfd:
			o.Kind = orderbook.Kind(d[9])
		}
		b = append(b, o)
	}
	return at, p, b
}

// FuzzMatch: on any book, Match and Candidates do not panic, Match keeps
// every invariant, equals the reference, and does not depend on input order.
func FuzzMatch(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0,
		0x00, 1, 0x10, 0x00, 0x05, 0x11, 50, 0x07, 0, 0, 0,
		0x11, 2, 0x10, 0x00, 0x05, 0x22, 10, 0x03, 0, 0, 0})
	f.Add([]byte{3, 5,
		0x00, 1, 0x10, 0x02, 0x09, 0x11, 50, 0x07, 0, 0, 0,
		0x20, 2, 0x10, 0x02, 0x1e, 0x21, 50, 0x07, 0, 0, 0,
		0x11, 3, 0x10, 0x00, 0x0d, 0x33, 10, 0x03, 0, 0, 0,
		0x31, 4, 0x10, 0x02, 0x08, 0x44, 10, 0x03, 0, 0, 0,
		0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		at, p, b := decodeBook(data)
		got := mustMatch(t, b, at, p)
		checkInvariants(t, b, at, p, got)
		want := keys(refMatch(b, at, p))
		if d := diffKeys(keys(got), want); d != "" {
			t.Fatalf("differs from the reference: %s", d)
		}
		rev := slices.Clone(b)
		slices.Reverse(rev)
		if d := diffKeys(keys(mustMatch(t, rev, at, p)), want); d != "" {
			t.Fatalf("reversed input: %s", d)
		}
		s := NewSnapshot(b)
		for _, o := range b {
			cands, err := Candidates(s, o, at, p)
			if err != nil {
				if o.Kind == orderbook.KindRequest && usable(o) {
					t.Fatalf("Candidates: %v", err)
				}
				continue
			}
			for _, c := range cands {
				if !refEligible(o, c.Offer) || !refLive(c.Offer, at, p) {
					t.Fatalf("candidate not eligible")
				}
			}
		}
	})
}
