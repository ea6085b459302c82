package orderbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
)

// storedSamples are orders that exercise every field of the stored form.
func storedSamples(t *testing.T) []*Order {
	k := testKey(t, 9)
	offer := newOffer(testNow)
	offer.Unverified, offer.Protocols = true, ProtoTCP|ProtoUDP
	max256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	pricey := newOffer(testNow)
	pricey.Nonce, pricey.PricePerHour, pricey.PricePerGB = 8, max256, new(big.Int)
	pricey.Location = Location{Country: "JP", Region: "", City: "", ASN: 0}
	req := newOffer(testNow)
	req.Kind, req.Nonce, req.MinDuration, req.MaxDuration, req.Unverified = KindRequest, 9, 0, 0, false
	req.Duration, req.IPType, req.Location.City = 3600, IPMobile, "São Paulo"
	return []*Order{signed(t, offer, k), signed(t, pricey, k), signed(t, req, k)}
}

// TestStoredOrderRoundTrip: the stored form reads back to the same order:
// the same wire form (every field, the signature and the id).
func TestStoredOrderRoundTrip(t *testing.T) {
	for _, o := range storedSamples(t) {
		rec := encodeRecord(record{deadline: 12345, order: o})
		r, err := decodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(o)
		got, _ := json.Marshal(r.order)
		if r.deadline != 12345 || !bytes.Equal(got, want) {
			t.Fatalf("read back deadline %d and\n%s\nwant\n%s", r.deadline, got, want)
		}
	}
}

// TestLegacyRecord: a record written before the stored form (deadline and
// the wire form's JSON) is still read.
func TestLegacyRecord(t *testing.T) {
	o := storedSamples(t)[0]
	j, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(append(u64b(777), j...))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(r.order); r.deadline != 777 || !bytes.Equal(got, j) {
		t.Fatalf("legacy record read as %d %s", r.deadline, got)
	}
}

// TestCorruptRecord: a stored form cut short or with bytes left over is an
// error, not a panic or a half-read order.
func TestCorruptRecord(t *testing.T) {
	rec := encodeRecord(record{deadline: 1, order: storedSamples(t)[1]})
	for n := 9; n < len(rec); n++ {
		if _, err := decodeRecord(rec[:n]); !errors.Is(err, errCorruptRecord) {
			t.Fatalf("record cut to %d of %d bytes: %v", n, len(rec), err)
		}
	}
	if _, err := decodeRecord(append(rec, 0)); !errors.Is(err, errCorruptRecord) {
		t.Fatalf("record with a byte left over: %v", err)
	}
	if _, err := decodeRecord(append(u64b(1), 0xff)); !errors.Is(err, errCorruptRecord) {
		t.Fatalf("record of an unknown form: %v", err)
	}
}
