package orderbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The JSON wire form (docs/orders.md). Amounts are decimal strings of token
// base units; the kind decides which fields may appear; unknown fields are
// an error, so a typo never silently changes what was signed.

type wireOrder struct {
	Kind              string         `json:"kind"`
	ID                *common.Hash   `json:"id,omitempty"`
	ChainID           uint64         `json:"chainId"`
	VerifyingContract common.Address `json:"verifyingContract"`
	Maker             common.Address `json:"maker"`
	Nonce             uint64         `json:"nonce"`
	Version           uint32         `json:"version"`
	Created           uint64         `json:"created"`
	Expires           uint64         `json:"expires"`
	Country           string         `json:"country"`
	Region            string         `json:"region,omitempty"`
	City              string         `json:"city,omitempty"`
	ASN               uint32         `json:"asn,omitempty"`
	IPType            string         `json:"ipType"`
	IPs               uint32         `json:"ips"`
	Protocols         []string       `json:"protocols"`

	PricePerHour    *Amount `json:"pricePerHour,omitempty"`
	PricePerGB      *Amount `json:"pricePerGB,omitempty"`
	MinDuration     *uint32 `json:"minDuration,omitempty"`
	MaxDuration     *uint32 `json:"maxDuration,omitempty"`
	Bandwidth       *uint32 `json:"bandwidth,omitempty"`
	Unverified      bool    `json:"unverified,omitempty"`
	MaxPricePerHour *Amount `json:"maxPricePerHour,omitempty"`
	MaxPricePerGB   *Amount `json:"maxPricePerGB,omitempty"`
	Duration        *uint32 `json:"duration,omitempty"`
	MinBandwidth    *uint32 `json:"minBandwidth,omitempty"`

	Signature hexutil.Bytes `json:"signature"`
}

// Amount is a uint256 carried as a decimal string.
type Amount big.Int

// Big returns the value as a *big.Int (sharing memory).
func (a *Amount) Big() *big.Int { return (*big.Int)(a) }

func (a *Amount) MarshalJSON() ([]byte, error) {
	return json.Marshal((*big.Int)(a).String())
}

func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("amount must be a decimal string of token base units: %s", b)
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || s == "" || s[0] == '+' {
		return fmt.Errorf("amount %q is not a decimal integer", s)
	}
	*a = Amount(*v)
	return nil
}

func amountOf(v *big.Int) *Amount {
	if v == nil {
		return nil
	}
	return (*Amount)(v)
}

func bigOf(a *Amount) *big.Int {
	if a == nil {
		return nil
	}
	return new(big.Int).Set(a.Big())
}

func u32(v uint32) *uint32 { return &v }

func deref(p *uint32) uint32 {
	if p == nil {
		return 0
	}
	return *p
}

// MarshalJSON writes the wire form, including the id.
func (o *Order) MarshalJSON() ([]byte, error) {
	id := o.ID()
	w := wireOrder{
		Kind: o.Kind.String(), ID: &id,
		ChainID: o.ChainID, VerifyingContract: o.VerifyingContract,
		Maker: o.Maker, Nonce: o.Nonce, Version: o.Version,
		Created: o.Created, Expires: o.Expires,
		Country: o.Location.Country, Region: o.Location.Region, City: o.Location.City, ASN: o.Location.ASN,
		IPType: o.IPType.String(), IPs: o.IPs, Protocols: o.Protocols.Names(),
		Signature: o.Signature,
	}
	if w.Protocols == nil {
		w.Protocols = []string{}
	}
	switch o.Kind {
	case KindOffer:
		w.PricePerHour, w.PricePerGB = amountOf(o.PricePerHour), amountOf(o.PricePerGB)
		w.MinDuration, w.MaxDuration, w.Bandwidth = u32(o.MinDuration), u32(o.MaxDuration), u32(o.Bandwidth)
		w.Unverified = o.Unverified
	case KindRequest:
		w.MaxPricePerHour, w.MaxPricePerGB = amountOf(o.PricePerHour), amountOf(o.PricePerGB)
		w.Duration, w.MinBandwidth = u32(o.Duration), u32(o.Bandwidth)
	default:
		return nil, fmt.Errorf("%w: kind %d", ErrMalformed, o.Kind)
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the wire form strictly. An id, when present, must be
// the order's digest.
func (o *Order) UnmarshalJSON(b []byte) error {
	n, id, err := decodeWireOrder(b)
	if err != nil {
		return err
	}
	if id != nil && *id != n.ID() {
		return fmt.Errorf("%w: id %s is not the order's digest %s", ErrMalformed, id.Hex(), n.ID().Hex())
	}
	*o = n
	return nil
}

// decodeWireOrder reads the wire form strictly and returns the order and
// the id the form claims (nil if none), not checked against the order.
func decodeWireOrder(b []byte) (Order, *common.Hash, error) {
	var w wireOrder
	if err := strictUnmarshal(b, &w); err != nil {
		return Order{}, nil, err
	}
	kind, err := ParseKind(w.Kind)
	if err != nil {
		return Order{}, nil, err
	}
	ipType, err := ParseIPType(w.IPType)
	if err != nil {
		return Order{}, nil, err
	}
	protos, err := ParseProtocols(w.Protocols)
	if err != nil {
		return Order{}, nil, err
	}
	n := Order{
		Kind: kind, ChainID: w.ChainID, VerifyingContract: w.VerifyingContract,
		Maker: w.Maker, Nonce: w.Nonce, Version: w.Version, Created: w.Created, Expires: w.Expires,
		Location: Location{Country: w.Country, Region: w.Region, City: w.City, ASN: w.ASN},
		IPType:   ipType, IPs: w.IPs, Protocols: protos, Signature: w.Signature,
	}
	switch kind {
	case KindOffer:
		if w.MaxPricePerHour != nil || w.MaxPricePerGB != nil || w.Duration != nil || w.MinBandwidth != nil {
			return Order{}, nil, fmt.Errorf("%w: an offer has pricePerHour, pricePerGB, minDuration, maxDuration, bandwidth; not maxPricePerHour, maxPricePerGB, duration, minBandwidth", ErrMalformed)
		}
		if w.PricePerHour == nil || w.PricePerGB == nil || w.MinDuration == nil || w.MaxDuration == nil || w.Bandwidth == nil {
			return Order{}, nil, fmt.Errorf("%w: an offer needs pricePerHour, pricePerGB, minDuration, maxDuration and bandwidth", ErrMalformed)
		}
		n.PricePerHour, n.PricePerGB = bigOf(w.PricePerHour), bigOf(w.PricePerGB)
		n.MinDuration, n.MaxDuration, n.Bandwidth = *w.MinDuration, *w.MaxDuration, *w.Bandwidth
		n.Unverified = w.Unverified
	case KindRequest:
		if w.PricePerHour != nil || w.PricePerGB != nil || w.MinDuration != nil || w.MaxDuration != nil || w.Bandwidth != nil || w.Unverified {
			return Order{}, nil, fmt.Errorf("%w: a request has maxPricePerHour, maxPricePerGB, duration, minBandwidth; not pricePerHour, pricePerGB, minDuration, maxDuration, bandwidth, unverified", ErrMalformed)
		}
		if w.MaxPricePerHour == nil || w.MaxPricePerGB == nil || w.Duration == nil {
			return Order{}, nil, fmt.Errorf("%w: a request needs maxPricePerHour, maxPricePerGB and duration", ErrMalformed)
		}
		n.PricePerHour, n.PricePerGB = bigOf(w.MaxPricePerHour), bigOf(w.MaxPricePerGB)
		n.Duration, n.Bandwidth = *w.Duration, deref(w.MinBandwidth)
	}
	// The prices' range before an id is checked: the order's digest
	// takes them as uint256 words.
	hour, gb := "pricePerHour", "pricePerGB"
	if kind == KindRequest {
		hour, gb = "maxPricePerHour", "maxPricePerGB"
	}
	if err := checkPrice(hour, n.PricePerHour); err != nil {
		return Order{}, nil, err
	}
	if err := checkPrice(gb, n.PricePerGB); err != nil {
		return Order{}, nil, err
	}
	return n, w.ID, nil
}

type wireCancel struct {
	Kind              string         `json:"kind"`
	ChainID           uint64         `json:"chainId"`
	VerifyingContract common.Address `json:"verifyingContract"`
	Maker             common.Address `json:"maker"`
	OrderID           common.Hash    `json:"orderId"`
	Created           uint64         `json:"created"`
	Signature         hexutil.Bytes  `json:"signature"`
}

func (c *Cancel) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireCancel{"cancel", c.ChainID, c.VerifyingContract, c.Maker, c.OrderID, c.Created, c.Signature})
}

func (c *Cancel) UnmarshalJSON(b []byte) error {
	var w wireCancel
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	if w.Kind != "cancel" {
		return fmt.Errorf("%w: kind %q, want cancel", ErrMalformed, w.Kind)
	}
	*c = Cancel{w.ChainID, w.VerifyingContract, w.Maker, w.OrderID, w.Created, w.Signature}
	return nil
}

type wireHeartbeat struct {
	Kind              string         `json:"kind"`
	ChainID           uint64         `json:"chainId"`
	VerifyingContract common.Address `json:"verifyingContract"`
	Maker             common.Address `json:"maker"`
	Country           string         `json:"country"`
	Created           uint64         `json:"created"`
	Count             uint32         `json:"count"`
	Digest            common.Hash    `json:"digest"`
	Signature         hexutil.Bytes  `json:"signature"`
}

func (h *Heartbeat) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireHeartbeat{"heartbeat", h.ChainID, h.VerifyingContract, h.Maker, h.Country, h.Created, h.Count, h.Digest, h.Signature})
}

func (h *Heartbeat) UnmarshalJSON(b []byte) error {
	var w wireHeartbeat
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	if w.Kind != "heartbeat" {
		return fmt.Errorf("%w: kind %q, want heartbeat", ErrMalformed, w.Kind)
	}
	*h = Heartbeat{w.ChainID, w.VerifyingContract, w.Maker, w.Country, w.Created, w.Count, w.Digest, w.Signature}
	return nil
}

// Message is one gossip message: exactly one field is set.
type Message struct {
	Order     *Order
	Cancel    *Cancel
	Heartbeat *Heartbeat
}

// ID is the message's content address: the EIP-712 digest of what it holds.
// GossipSub uses it as the message id, so duplicates die at the first hop.
func (m Message) ID() common.Hash {
	switch {
	case m.Order != nil:
		return m.Order.ID()
	case m.Cancel != nil:
		return m.Cancel.ID()
	case m.Heartbeat != nil:
		return m.Heartbeat.ID()
	}
	return common.Hash{}
}

// Encode writes the message's wire form.
func (m Message) Encode() ([]byte, error) {
	switch {
	case m.Order != nil:
		return json.Marshal(m.Order)
	case m.Cancel != nil:
		return json.Marshal(m.Cancel)
	case m.Heartbeat != nil:
		return json.Marshal(m.Heartbeat)
	}
	return nil, fmt.Errorf("%w: empty message", ErrMalformed)
}

// DecodeMessage reads a gossip message of at most maxSize bytes.
func DecodeMessage(b []byte, maxSize int) (Message, error) {
	if maxSize > 0 && len(b) > maxSize {
		return Message{}, fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(b), maxSize)
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch head.Kind {
	case "offer", "request":
		o := new(Order)
		if err := json.Unmarshal(b, o); err != nil {
			return Message{}, malformed(err)
		}
		return Message{Order: o}, nil
	case "cancel":
		c := new(Cancel)
		if err := json.Unmarshal(b, c); err != nil {
			return Message{}, malformed(err)
		}
		return Message{Cancel: c}, nil
	case "heartbeat":
		h := new(Heartbeat)
		if err := json.Unmarshal(b, h); err != nil {
			return Message{}, malformed(err)
		}
		return Message{Heartbeat: h}, nil
	}
	return Message{}, fmt.Errorf("%w: kind %q", ErrMalformed, head.Kind)
}

// DecodeOrder reads one order in the wire form.
func DecodeOrder(b []byte) (*Order, error) {
	o := new(Order)
	if err := json.Unmarshal(b, o); err != nil {
		return nil, malformed(err)
	}
	return o, nil
}

func malformed(err error) error {
	if errors.Is(err, ErrMalformed) || errors.Is(err, ErrOutOfRange) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if d.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	return nil
}
