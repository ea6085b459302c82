// Package orderbooktest builds orders for tests: a valid offer or request
// signed by a given key, and the table of bad messages that the API, the
// gossip validator and order sync must all refuse. It is imported by tests
// only.
package orderbooktest

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/orderbook"
)

// Offer returns a valid unsigned offer in cc created at now.
func Offer(d orderbook.Domain, cc string, nonce uint64, now time.Time) *orderbook.Order {
	c := uint64(now.Unix())
	return &orderbook.Order{
		Kind: orderbook.KindOffer, ChainID: d.ChainID, VerifyingContract: d.VerifyingContract,
		Nonce: nonce, Version: 1, Created: c, Expires: c + 3600,
		Location: orderbook.Location{Country: cc}, IPType: orderbook.IPResidential, IPs: 2,
		Protocols: orderbook.ProtoTCP, PricePerHour: big.NewInt(1000), PricePerGB: big.NewInt(10),
		MinDuration: 60, MaxDuration: 86400, Bandwidth: 50,
	}
}

// Request returns a valid unsigned request in cc created at now.
func Request(d orderbook.Domain, cc string, nonce uint64, now time.Time) *orderbook.Order {
	c := uint64(now.Unix())
	return &orderbook.Order{
		Kind: orderbook.KindRequest, ChainID: d.ChainID, VerifyingContract: d.VerifyingContract,
		Nonce: nonce, Version: 1, Created: c, Expires: c + 3600,
		Location: orderbook.Location{Country: cc}, IPType: orderbook.IPAny, IPs: 1,
		Protocols: orderbook.ProtoTCP, PricePerHour: big.NewInt(2000), PricePerGB: big.NewInt(20),
		Duration: 600,
	}
}

// Sign signs o with k, panicking on failure (test input only).
func Sign(o *orderbook.Order, k *ecdsa.PrivateKey) *orderbook.Order {
	if err := o.Sign(k); err != nil {
		panic(err)
	}
	return o
}

// Case is one bad message.
type Case struct {
	Name string
	// Msg is the wire form as a peer or client would send it.
	Msg []byte
	// Err is the sentinel the validity function answers with.
	Err error
	// Verdict is the gossip validator's answer.
	Verdict orderbook.Verdict
	// IsCancel marks a cancel message (not an order).
	IsCancel bool
}

// Fixture is the state the cases assume: Seed orders already in the book
// and Cancels already applied.
type Fixture struct {
	Seed    []*orderbook.Order
	Cancels []*orderbook.Cancel
	Cases   []Case
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// edit decodes the wire form into a map, lets f change it, re-encodes.
func edit(o *orderbook.Order, f func(m map[string]any)) []byte {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(encode(o)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		panic(err)
	}
	delete(m, "id")
	f(m)
	return encode(m)
}

// BadOrders builds the table of bad messages for a network with domain d,
// all made by key k (in shard cc), as of now. Other is a second key.
func BadOrders(d orderbook.Domain, cc string, k, other *ecdsa.PrivateKey, now time.Time) Fixture {
	var fx Fixture
	nonce := uint64(1_000_000)
	next := func() uint64 { nonce++; return nonce }
	valid := func() *orderbook.Order { return Sign(Offer(d, cc, next(), now), k) }
	resign := func(o *orderbook.Order) []byte { return encode(Sign(o, k)) }

	dup := valid()
	cancelled := valid()
	c := &orderbook.Cancel{ChainID: d.ChainID, VerifyingContract: d.VerifyingContract, OrderID: cancelled.ID(), Created: uint64(now.Unix())}
	if err := c.Sign(k); err != nil {
		panic(err)
	}
	v2 := Offer(d, cc, next(), now)
	v2.Version = 2
	Sign(v2, k)
	v1 := *v2
	v1.Version = 1
	Sign(&v1, k)
	fx.Seed = []*orderbook.Order{dup, cancelled, v2}
	fx.Cancels = []*orderbook.Cancel{c}

	add := func(name string, msg []byte, err error) {
		fx.Cases = append(fx.Cases, Case{Name: name, Msg: msg, Err: err, Verdict: orderbook.VerdictOf(err)})
	}

	// Signatures and identity.
	o := valid()
	o.Signature = append([]byte(nil), o.Signature...)
	o.Signature[10] ^= 0xff
	add("bad signature", encode(o), orderbook.ErrBadSignature)
	o = valid()
	o.Signature = o.Signature[:64]
	add("short signature", encode(o), orderbook.ErrBadSignature)
	add("no signature", edit(valid(), func(m map[string]any) { delete(m, "signature") }), orderbook.ErrBadSignature)
	o = Offer(d, cc, next(), now)
	o.Maker = crypto.PubkeyToAddress(k.PublicKey)
	sig, _ := crypto.Sign(o.ID().Bytes(), other) // signed by another key
	sig[64] += 27
	o.Signature = sig
	add("signer is not the maker", encode(o), orderbook.ErrWrongSigner)
	o = Offer(d, cc, next(), now)
	o.ChainID = d.ChainID + 1
	add("wrong chain id", resign(o), orderbook.ErrWrongDomain)
	o = Offer(d, cc, next(), now)
	o.VerifyingContract = common.HexToAddress("0x000000000000000000000000000000000000dead")
	add("wrong escrow", resign(o), orderbook.ErrWrongDomain)

	// Times.
	o = Offer(d, cc, next(), now.Add(-2*time.Hour))
	add("expired", resign(o), orderbook.ErrExpired)
	o = Offer(d, cc, next(), now.Add(10*time.Minute))
	add("created far in the future", resign(o), orderbook.ErrFuture)
	o = Offer(d, cc, next(), now)
	o.Expires = o.Created + orderbook.MaxLifetime + 1
	add("lives too long", resign(o), orderbook.ErrOutOfRange)

	// Sizes and quantities.
	add("oversized", append(resign(Offer(d, cc, next(), now)), bytes.Repeat([]byte(" "), 2100)...), orderbook.ErrTooLarge)
	o = Offer(d, cc, next(), now)
	o.Location.City = strings.Repeat("x", 65)
	add("city too long", resign(o), orderbook.ErrOutOfRange)
	o = Offer(d, cc, next(), now)
	o.IPs = 0
	add("zero ips", resign(o), orderbook.ErrOutOfRange)
	add("negative ips", edit(valid(), func(m map[string]any) { m["ips"] = -1 }), orderbook.ErrMalformed)
	add("negative price", edit(valid(), func(m map[string]any) { m["pricePerHour"] = "-5" }), orderbook.ErrOutOfRange)
	o = Offer(d, cc, next(), now)
	o.PricePerHour, o.PricePerGB = new(big.Int), new(big.Int)
	add("zero prices", resign(o), orderbook.ErrOutOfRange)
	// Prices beyond a uint256, also with the order's id, as the node's own
	// encoder writes it: checking the id hashes the order, which must
	// refuse the price rather than overflow its 32-byte word (a panic in
	// the decoder every gossip message reaches).
	tooBig := new(big.Int).Lsh(big.NewInt(1), 256).String()
	withID := func(o *orderbook.Order, f func(m map[string]any)) []byte {
		id := o.ID()
		return edit(o, func(m map[string]any) { f(m); m["id"] = id.Hex() })
	}
	add("price of 2^256", edit(valid(), func(m map[string]any) { m["pricePerGB"] = tooBig }), orderbook.ErrOutOfRange)
	add("price of 2^256 with an id", withID(valid(), func(m map[string]any) { m["pricePerHour"] = tooBig }), orderbook.ErrOutOfRange)
	add("request price of 2^256 with an id", withID(Sign(Request(d, cc, next(), now), k), func(m map[string]any) { m["maxPricePerGB"] = tooBig }), orderbook.ErrOutOfRange)
	add("negative price with an id", withID(valid(), func(m map[string]any) { m["pricePerHour"] = "-5" }), orderbook.ErrOutOfRange)
	o = Offer(d, cc, next(), now)
	o.Bandwidth = 0
	add("zero bandwidth", resign(o), orderbook.ErrOutOfRange)

	// Fields.
	o = Offer(d, cc, next(), now)
	o.Location.Country = "XX"
	add("unknown country", resign(o), orderbook.ErrUnknownCountry)
	o = Offer(d, cc, next(), now)
	o.Location.Country = strings.ToLower(cc)
	add("lower-case country", resign(o), orderbook.ErrUnknownCountry)
	o = Offer(d, cc, next(), now)
	o.MinDuration = 1
	add("duration below 5 s", resign(o), orderbook.ErrOutOfRange)
	o = Request(d, cc, next(), now)
	o.Duration = orderbook.MaxDuration + 1
	add("request longer than 30 days", resign(o), orderbook.ErrOutOfRange)
	o = Offer(d, cc, next(), now)
	o.MinDuration, o.MaxDuration = 600, 60
	add("min duration above max", resign(o), orderbook.ErrOutOfRange)
	add("unknown ip type", edit(valid(), func(m map[string]any) { m["ipType"] = "satellite" }), orderbook.ErrMalformed)
	add("offer with ip type any", edit(valid(), func(m map[string]any) { m["ipType"] = "any" }), orderbook.ErrOutOfRange)
	add("unknown protocol", edit(valid(), func(m map[string]any) { m["protocols"] = []string{"sctp"} }), orderbook.ErrMalformed)
	add("offer with a request field", edit(valid(), func(m map[string]any) { m["duration"] = 60 }), orderbook.ErrMalformed)
	add("request with the offer-only unverified flag", edit(Sign(Request(d, cc, next(), now), k), func(m map[string]any) { m["unverified"] = true }), orderbook.ErrMalformed)
	o = Offer(d, cc, next(), now)
	o.Unverified = true
	add("unverified flag dropped after signing", edit(Sign(o, k), func(m map[string]any) { delete(m, "unverified") }), orderbook.ErrWrongSigner)
	add("unknown field", edit(valid(), func(m map[string]any) { m["discount"] = "yes" }), orderbook.ErrMalformed)
	add("id that is not the digest", edit(valid(), func(m map[string]any) { m["id"] = common.Hash{1}.Hex() }), orderbook.ErrMalformed)
	add("not JSON", []byte("offer: cheap IPs"), orderbook.ErrMalformed)

	// State.
	add("duplicate", encode(dup), orderbook.ErrDuplicate)
	add("cancelled order replayed", encode(cancelled), orderbook.ErrCancelled)
	add("superseded version", encode(&v1), orderbook.ErrSuperseded)
	fx.Cases = append(fx.Cases, Case{Name: "replayed cancel", Msg: encode(c), Err: orderbook.ErrDuplicate,
		Verdict: orderbook.Ignore, IsCancel: true})
	for i := range fx.Cases {
		if fx.Cases[i].Err == nil {
			panic(fmt.Sprintf("case %s has no error", fx.Cases[i].Name))
		}
	}
	return fx
}
