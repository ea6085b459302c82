package orderbook_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
)

// FuzzDecodeMessage: DecodeMessage, which every gossip message from any
// peer reaches, never panics; it refuses anything over the size bound
// before decoding; what it refuses is malformed, oversized or out of
// range; what it accepts holds exactly one message whose encoding decodes
// again to the same id, and the cheap and full validity checks judge it
// without panicking.
func FuzzDecodeMessage(f *testing.F) {
	d := orderbook.Domain{ChainID: 1337}
	k, _ := ethcrypto.GenerateKey()
	now := time.Unix(1_800_000_000, 0)
	seed := func(m orderbook.Message) {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(orderbook.Message{Order: orderbooktest.Sign(orderbooktest.Offer(d, "DE", 1, now), k)})
	seed(orderbook.Message{Order: orderbooktest.Sign(orderbooktest.Request(d, "US", 2, now), k)})
	f.Add([]byte(`{"kind":"cancel","chainId":1,"verifyingContract":"0x0000000000000000000000000000000000000000","maker":"0x0000000000000000000000000000000000000001","orderId":"0x0000000000000000000000000000000000000000000000000000000000000000","created":1,"signature":"0x00"}`))
	f.Add([]byte(`{"kind":"heartbeat","country":"DE","count":1}`))
	f.Add([]byte(`{"kind":"offer","pricePerHour":"1e9"}`))
	f.Add([]byte(`{"kind":`))
	f.Add([]byte("null"))
	k2, _ := ethcrypto.GenerateKey()
	for _, c := range orderbooktest.BadOrders(d, "DE", k, k2, now).Cases {
		f.Add(c.Msg)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := orderbook.DecodeMessage(b, orderbook.DefaultMaxSize)
		if err != nil {
			if !errors.Is(err, orderbook.ErrMalformed) && !errors.Is(err, orderbook.ErrTooLarge) && !errors.Is(err, orderbook.ErrOutOfRange) {
				t.Fatalf("error of no validation class: %v", err)
			}
			if orderbook.VerdictOf(err) != orderbook.Reject {
				t.Fatalf("undecodable data is not a Reject: %v", err)
			}
			return
		}
		if len(b) > orderbook.DefaultMaxSize {
			t.Fatalf("decoded %d bytes, over the bound", len(b))
		}
		set := 0
		for _, p := range []bool{m.Order != nil, m.Cancel != nil, m.Heartbeat != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("%d parts set", set)
		}
		enc, err := m.Encode()
		if err != nil {
			return // e.g. an order of an unknown kind number cannot be written back; it was never valid
		}
		again, err := orderbook.DecodeMessage(enc, 0)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%s", err, enc)
		}
		if again.ID() != m.ID() {
			t.Fatalf("id changed through a round trip: %s vs %s", m.ID().Hex(), again.ID().Hex())
		}
		if enc2, _ := again.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		p := orderbook.DefaultParams(d)
		switch {
		case m.Order != nil:
			_ = orderbook.Validate(m.Order, len(b), now, p, nil, nil)
		case m.Cancel != nil:
			_ = orderbook.ValidateCancel(m.Cancel, now, p)
		case m.Heartbeat != nil:
			_ = orderbook.ValidateHeartbeat(m.Heartbeat, now, orderbook.DefaultLiveTTL, p)
		}
	})
}
