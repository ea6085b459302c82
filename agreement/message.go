package agreement

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// ProtocolID is the libp2p protocol of the deal negotiation. Version 2
// carries Packets (sequenced, acknowledged messages; see packet.go); version
// 1 carried one bare message per stream and is not spoken any more.
const ProtocolID = "/ipsx/deal/2.0.0"

// MaxMessageSize bounds one encoded deal message. The largest, a proposal,
// is about 1 KiB.
const MaxMessageSize = 4096

// MaxDetailLength bounds the free-text detail of a reject.
const MaxDetailLength = 256

var (
	ErrMalformed       = errors.New("agreement: malformed message")
	ErrMessageTooLarge = errors.New("agreement: message too large")
)

// Message is one deal-protocol message: *Proposal, *Accept, *Reject,
// *SignedVoucher or *Close.
type Message interface {
	// Type is the message's "type" on the wire.
	Type() string
	isMessage()
}

// Proposal is the requester's offer to deal: the terms, signed by it.
type Proposal struct {
	Terms        Terms
	RequesterSig []byte // over Terms.ID
}

// Accept is the provider's signature over the terms of a proposal; with it
// the requester can open the deal on chain.
type Accept struct {
	DealID      common.Hash
	ProviderSig []byte // over the deal id
}

// Reject refuses a proposal, with a reason from the fixed set and an
// optional human-readable detail.
type Reject struct {
	DealID common.Hash
	Reason Reason
	Detail string
}

// SignedVoucher is a voucher with the requester's signature. It is at once
// the wire message, what the provider persists, and what it settles with.
type SignedVoucher struct {
	Voucher   Voucher
	Signature []byte
}

// Close ends a deal from the sender's side. CancelSig, when present, is the
// sender's signature over Cancel(dealId): an offer to cancel the deal
// cooperatively on chain (only made while no service was rendered).
type Close struct {
	DealID    common.Hash
	Reason    Reason
	CancelSig []byte
}

func (*Proposal) Type() string      { return "proposal" }
func (*Accept) Type() string        { return "accept" }
func (*Reject) Type() string        { return "reject" }
func (*SignedVoucher) Type() string { return "voucher" }
func (*Close) Type() string         { return "close" }

func (*Proposal) isMessage()      {}
func (*Accept) isMessage()        {}
func (*Reject) isMessage()        {}
func (*SignedVoucher) isMessage() {}
func (*Close) isMessage()         {}

// Clone returns a deep copy.
func (v *SignedVoucher) Clone() *SignedVoucher {
	if v == nil {
		return nil
	}
	c := *v
	c.Voucher.Amount = cloneBig(v.Voucher.Amount)
	c.Signature = bytes.Clone(v.Signature)
	return &c
}

// ---- encoding ----
//
// The wire form is one JSON object per message, with a "type" and the
// fields of that type only (unknown or foreign fields are an error):
//
//	{"type":"proposal","terms":{"offerId":"0x…","requestId":"0x…","provider":"0x…",
//	  "requester":"0x…","ips":1,"pricePerIpHour":"1000","pricePerGB":"2000",
//	  "maxAmount":"5000000","start":1700000000,"deadline":1700003600,"nonce":7},
//	  "requesterSig":"0x…"}
//	{"type":"accept","dealId":"0x…","providerSig":"0x…"}
//	{"type":"reject","dealId":"0x…","reason":"no-capacity","detail":"…"}
//	{"type":"voucher","dealId":"0x…","amount":"123","bytes":456,"connLogHash":"0x…","signature":"0x…"}
//	{"type":"close","dealId":"0x…","reason":"closed","cancelSig":"0x…"}
//
// Hashes are 0x + 64 hex digits, addresses 0x + 40, signatures 0x + 130
// (65 bytes r‖s‖v). Amounts are decimal strings of token base units in
// canonical form (no sign, no leading zeros). The field names of the terms
// and the voucher are those of the EIP-712 types. On the stream, each
// message is preceded by its length as an unsigned varint; a message is at
// most MaxMessageSize bytes. (Framing belongs to the node.)

type wireTerms struct {
	OfferID        *common.Hash    `json:"offerId"`
	RequestID      *common.Hash    `json:"requestId"`
	Provider       *common.Address `json:"provider"`
	Requester      *common.Address `json:"requester"`
	IPs            *uint32         `json:"ips"`
	PricePerIPHour *amount         `json:"pricePerIpHour"`
	PricePerGB     *amount         `json:"pricePerGB"`
	MaxAmount      *amount         `json:"maxAmount"`
	Start          *uint64         `json:"start"`
	Deadline       *uint64         `json:"deadline"`
	Nonce          *uint64         `json:"nonce"`
}

type wireMessage struct {
	Type         string         `json:"type"`
	Terms        *wireTerms     `json:"terms,omitempty"`
	RequesterSig *hexutil.Bytes `json:"requesterSig,omitempty"`
	DealID       *common.Hash   `json:"dealId,omitempty"`
	ProviderSig  *hexutil.Bytes `json:"providerSig,omitempty"`
	Reason       *Reason        `json:"reason,omitempty"`
	Detail       *string        `json:"detail,omitempty"`
	Amount       *amount        `json:"amount,omitempty"`
	Bytes        *uint64        `json:"bytes,omitempty"`
	ConnLogHash  *common.Hash   `json:"connLogHash,omitempty"`
	Signature    *hexutil.Bytes `json:"signature,omitempty"`
	CancelSig    *hexutil.Bytes `json:"cancelSig,omitempty"`
}

// amount is a uint256 as a canonical decimal string.
type amount big.Int

func (a *amount) MarshalJSON() ([]byte, error) { return json.Marshal((*big.Int)(a).String()) }

func (a *amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("amount must be a decimal string")
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.String() != s || !isUint256(v) {
		return fmt.Errorf("amount %q is not a canonical decimal uint256", s)
	}
	*a = amount(*v)
	return nil
}

func amt(v *big.Int) *amount {
	if v == nil {
		v = new(big.Int)
	}
	return (*amount)(v)
}

func hexb(b []byte) *hexutil.Bytes {
	h := hexutil.Bytes(b)
	return &h
}

// Encode returns the wire form of m. It fails on values Decode would refuse
// (a nil message, an out-of-range amount, a wrong-length signature).
func Encode(m Message) ([]byte, error) {
	var w wireMessage
	switch m := m.(type) {
	case *Proposal:
		t := m.Terms
		w = wireMessage{Type: m.Type(), Terms: &wireTerms{
			OfferID: &t.OfferID, RequestID: &t.RequestID, Provider: &t.Provider, Requester: &t.Requester,
			IPs: &t.IPs, PricePerIPHour: amt(t.PricePerIPHour), PricePerGB: amt(t.PricePerGB),
			MaxAmount: amt(t.MaxAmount), Start: &t.Start, Deadline: &t.Deadline, Nonce: &t.Nonce,
		}, RequesterSig: hexb(m.RequesterSig)}
	case *Accept:
		w = wireMessage{Type: m.Type(), DealID: &m.DealID, ProviderSig: hexb(m.ProviderSig)}
	case *Reject:
		w = wireMessage{Type: m.Type(), DealID: &m.DealID, Reason: &m.Reason}
		if m.Detail != "" {
			w.Detail = &m.Detail
		}
	case *SignedVoucher:
		v := m.Voucher
		w = wireMessage{Type: m.Type(), DealID: &v.DealID, Amount: amt(v.Amount), Bytes: &v.Bytes,
			ConnLogHash: &v.ConnLogHash, Signature: hexb(m.Signature)}
	case *Close:
		w = wireMessage{Type: m.Type(), DealID: &m.DealID, Reason: &m.Reason}
		if m.CancelSig != nil {
			w.CancelSig = hexb(m.CancelSig)
		}
	default:
		return nil, fmt.Errorf("%w: cannot encode %T", ErrMalformed, m)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := Decode(b); err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	return b, nil
}

// Decode parses one message in the wire form. It refuses input longer than
// MaxMessageSize, anything but exactly one JSON object, unknown fields,
// fields foreign to the type, missing fields, malformed hex, non-canonical
// amounts, signatures that are not 65 bytes, unknown reasons and invalid
// terms. Signatures are checked for form only; verifying who signed is the
// state machine's job. Decode never panics on any input.
func Decode(b []byte) (Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrMessageTooLarge, len(b), MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireMessage
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	// have lists the fields present, in the order of wireMessage.
	have := [...]bool{w.Terms != nil, w.RequesterSig != nil, w.DealID != nil, w.ProviderSig != nil,
		w.Reason != nil, w.Detail != nil, w.Amount != nil, w.Bytes != nil, w.ConnLogHash != nil,
		w.Signature != nil, w.CancelSig != nil}
	const (
		fTerms = 1 << iota
		fRequesterSig
		fDealID
		fProviderSig
		fReason
		fDetail
		fAmount
		fBytes
		fConnLogHash
		fSignature
		fCancelSig
	)
	var got int
	for i, h := range have {
		if h {
			got |= 1 << i
		}
	}
	need := func(required, optional int) error {
		if got&required != required {
			return fmt.Errorf("%w: %s lacks a required field", ErrMalformed, w.Type)
		}
		if got&^(required|optional) != 0 {
			return fmt.Errorf("%w: %s has a field of another message type", ErrMalformed, w.Type)
		}
		return nil
	}
	switch w.Type {
	case "proposal":
		if err := need(fTerms|fRequesterSig, 0); err != nil {
			return nil, err
		}
		t, err := w.Terms.terms()
		if err != nil {
			return nil, err
		}
		if err := sigLen("requesterSig", *w.RequesterSig); err != nil {
			return nil, err
		}
		return &Proposal{Terms: t, RequesterSig: []byte(*w.RequesterSig)}, nil
	case "accept":
		if err := need(fDealID|fProviderSig, 0); err != nil {
			return nil, err
		}
		if err := sigLen("providerSig", *w.ProviderSig); err != nil {
			return nil, err
		}
		return &Accept{DealID: *w.DealID, ProviderSig: []byte(*w.ProviderSig)}, nil
	case "reject":
		if err := need(fDealID|fReason, fDetail); err != nil {
			return nil, err
		}
		if *w.Reason == "" {
			return nil, fmt.Errorf("%w: reject without a reason", ErrMalformed)
		}
		r := &Reject{DealID: *w.DealID, Reason: *w.Reason}
		if w.Detail != nil {
			d := *w.Detail
			if len(d) > MaxDetailLength || !utf8.ValidString(d) {
				return nil, fmt.Errorf("%w: detail too long or not UTF-8", ErrMalformed)
			}
			r.Detail = d
		}
		return r, nil
	case "voucher":
		if err := need(fDealID|fAmount|fBytes|fConnLogHash|fSignature, 0); err != nil {
			return nil, err
		}
		if err := sigLen("signature", *w.Signature); err != nil {
			return nil, err
		}
		return &SignedVoucher{Voucher: Voucher{DealID: *w.DealID, Amount: new(big.Int).Set((*big.Int)(w.Amount)),
			Bytes: *w.Bytes, ConnLogHash: *w.ConnLogHash}, Signature: []byte(*w.Signature)}, nil
	case "close":
		if err := need(fDealID|fReason, fCancelSig); err != nil {
			return nil, err
		}
		if *w.Reason == "" {
			return nil, fmt.Errorf("%w: close without a reason", ErrMalformed)
		}
		c := &Close{DealID: *w.DealID, Reason: *w.Reason}
		if w.CancelSig != nil {
			if err := sigLen("cancelSig", *w.CancelSig); err != nil {
				return nil, err
			}
			c.CancelSig = []byte(*w.CancelSig)
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w: unknown type %q", ErrMalformed, w.Type)
}

func (w *wireTerms) terms() (Terms, error) {
	if w.OfferID == nil || w.RequestID == nil || w.Provider == nil || w.Requester == nil || w.IPs == nil ||
		w.PricePerIPHour == nil || w.PricePerGB == nil || w.MaxAmount == nil || w.Start == nil ||
		w.Deadline == nil || w.Nonce == nil {
		return Terms{}, fmt.Errorf("%w: terms lack a field", ErrMalformed)
	}
	t := Terms{
		OfferID: *w.OfferID, RequestID: *w.RequestID, Provider: *w.Provider, Requester: *w.Requester,
		IPs:            *w.IPs,
		PricePerIPHour: new(big.Int).Set((*big.Int)(w.PricePerIPHour)),
		PricePerGB:     new(big.Int).Set((*big.Int)(w.PricePerGB)),
		MaxAmount:      new(big.Int).Set((*big.Int)(w.MaxAmount)),
		Start:          *w.Start, Deadline: *w.Deadline, Nonce: *w.Nonce,
	}
	if err := t.Validate(); err != nil {
		return Terms{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if t.IPs == 0 {
		return Terms{}, fmt.Errorf("%w: %w: zero IPs", ErrMalformed, ErrInvalidTerms)
	}
	return t, nil
}

func sigLen(name string, b []byte) error {
	if len(b) != SignatureLength {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformed, name, len(b), SignatureLength)
	}
	return nil
}

// Reason says why a proposal was rejected or a deal ended. Only the values
// below are valid on the wire.
type Reason string

const (
	// Rejections.
	ReasonNoCapacity   Reason = "no-capacity"   // the offer's IPs are taken or reserved
	ReasonUnknownOffer Reason = "unknown-offer" // no such live offer from this provider
	ReasonPrice        Reason = "price"         // prices below the offer's
	ReasonDuration     Reason = "duration"      // outside the offer's min/max duration
	ReasonStart        Reason = "start"         // start too far in the past or future
	ReasonMaxAmount    Reason = "max-amount"    // max amount does not cover the duration
	// Ends.
	ReasonClosed         Reason = "closed"          // a party closed the deal
	ReasonTimeout        Reason = "timeout"         // proposal or funding timed out
	ReasonNotFunded      Reason = "not-funded"      // the open transaction failed or came too late
	ReasonDeadline       Reason = "deadline"        // the deal's duration was reached
	ReasonBudgetSpent    Reason = "budget-spent"    // the max amount was used up
	ReasonPaymentStalled Reason = "payment-stalled" // the requester stopped paying ahead
)

var reasons = [...]Reason{ReasonNoCapacity, ReasonUnknownOffer, ReasonPrice, ReasonDuration, ReasonStart,
	ReasonMaxAmount, ReasonClosed, ReasonTimeout, ReasonNotFunded, ReasonDeadline, ReasonBudgetSpent,
	ReasonPaymentStalled}

// Valid reports whether r is one of the defined reasons.
func (r Reason) Valid() bool {
	for _, k := range reasons {
		if r == k {
			return true
		}
	}
	return false
}

// UnmarshalJSON accepts the defined reasons, and the empty string for "no
// reason" (a running deal's record); the wire decoder refuses an empty
// reason where a message needs one.
func (r *Reason) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("reason must be a string")
	}
	if s != "" && !Reason(s).Valid() {
		return fmt.Errorf("unknown reason %q", s)
	}
	*r = Reason(s)
	return nil
}

func (r Reason) MarshalJSON() ([]byte, error) {
	if r != "" && !r.Valid() {
		return nil, fmt.Errorf("unknown reason %q", string(r))
	}
	return json.Marshal(string(r))
}
