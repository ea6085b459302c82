package agreement

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// The deal protocol is acknowledged, the way payment channels do it
// (Lightning re-sends its last update on reconnect). Each side numbers the
// messages it sends for a deal 1, 2, 3…; the receiver processes them in
// that order exactly once and acknowledges cumulatively (Ack.Seq: every
// message up to Seq is processed and its effect is on disk). The sender
// keeps each message in a durable outbox until it is acknowledged and
// sends it again with backoff; a duplicate is acknowledged and ignored, a
// message after a gap is acknowledged with what was processed and waits
// for the gap to be filled. Seq 0 marks the one unsequenced message: the
// provider's Reject of a proposal it did not store (rejections are never
// stored, so a peer cannot fill a provider's database); a lost reject is
// answered again when the proposal is sent again.
//
// One stream carries one exchange: the opener writes a Packet, the other
// side processes it, persists, and answers with a Packet holding its
// acknowledgements for the deals named, plus every message it has not had
// acknowledged for those deals (so an accept rides back on the proposal's
// exchange, and a counterparty that was away gets what it missed on its
// first contact). A Packet with Sync set asks for exactly that for every
// deal it names even without messages: it is how two counterparties
// exchange the state of their open deals after a restart or a reconnect.

// Packet bounds.
const (
	MaxPacketSize = 64 << 10
	MaxPacketMsgs = 32
	MaxPacketAcks = 256
)

// Sequenced is a deal message with its sequence number in its deal and
// direction (0: the unsequenced reject).
type Sequenced struct {
	Seq uint64
	Msg Message
}

// Ack tells the receiver of a packet that every message of the deal up to
// Seq from it has been processed. Status is the sender's own status of the
// deal, for the record (the receiver's machine does not act on it).
type Ack struct {
	DealID common.Hash
	Seq    uint64
	Status Status
}

// Packet is what one side writes on a deal stream.
type Packet struct {
	Msgs []Sequenced
	Acks []Ack
	Sync bool
}

// Empty reports whether the packet carries nothing.
func (p *Packet) Empty() bool { return len(p.Msgs) == 0 && len(p.Acks) == 0 && !p.Sync }

type wireSequenced struct {
	Seq *uint64         `json:"seq"`
	Msg json.RawMessage `json:"msg"`
}

type wireAck struct {
	DealID *common.Hash `json:"dealId"`
	Seq    *uint64      `json:"seq"`
	Status string       `json:"status,omitempty"`
}

type wirePacket struct {
	Msgs []wireSequenced `json:"msgs,omitempty"`
	Acks []wireAck       `json:"acks,omitempty"`
	Sync bool            `json:"sync,omitempty"`
}

// EncodePacket returns the wire form of p:
//
//	{"msgs":[{"seq":1,"msg":{"type":"voucher",…}}],"acks":[{"dealId":"0x…","seq":3,"status":"active"}],"sync":true}
//
// Each "msg" is a message in the form of Encode. It fails on what
// DecodePacket would refuse.
func EncodePacket(p Packet) ([]byte, error) {
	var w wirePacket
	if len(p.Msgs) > MaxPacketMsgs || len(p.Acks) > MaxPacketAcks {
		return nil, fmt.Errorf("%w: %d messages and %d acks, max %d and %d", ErrMessageTooLarge,
			len(p.Msgs), len(p.Acks), MaxPacketMsgs, MaxPacketAcks)
	}
	for i := range p.Msgs {
		sm := &p.Msgs[i]
		if err := checkSeq(sm.Seq, sm.Msg); err != nil {
			return nil, err
		}
		b, err := Encode(sm.Msg)
		if err != nil {
			return nil, err
		}
		w.Msgs = append(w.Msgs, wireSequenced{Seq: &sm.Seq, Msg: b})
	}
	for i := range p.Acks {
		a := &p.Acks[i]
		wa := wireAck{DealID: &a.DealID, Seq: &a.Seq}
		if a.Status != StatusNone {
			wa.Status = a.Status.String()
		}
		w.Acks = append(w.Acks, wa)
	}
	w.Sync = p.Sync
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(b) > MaxPacketSize {
		return nil, fmt.Errorf("%w: packet of %d bytes, max %d", ErrMessageTooLarge, len(b), MaxPacketSize)
	}
	return b, nil
}

// checkSeq: only a reject may go unsequenced.
func checkSeq(seq uint64, m Message) error {
	if m == nil {
		return fmt.Errorf("%w: no message", ErrMalformed)
	}
	if _, ok := m.(*Reject); seq == 0 && !ok {
		return fmt.Errorf("%w: %s without a sequence number", ErrMalformed, m.Type())
	}
	return nil
}

// DecodePacket parses a packet. It refuses input over MaxPacketSize, more
// than MaxPacketMsgs messages or MaxPacketAcks acks, unknown fields, any
// message Decode refuses, a sequenced message with seq 0 other than a
// reject, and unknown statuses. It never panics.
func DecodePacket(b []byte) (Packet, error) {
	if len(b) > MaxPacketSize {
		return Packet{}, fmt.Errorf("%w: packet of %d bytes, max %d", ErrMessageTooLarge, len(b), MaxPacketSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wirePacket
	if err := dec.Decode(&w); err != nil {
		return Packet{}, fmt.Errorf("%w: packet: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err == nil {
		return Packet{}, fmt.Errorf("%w: trailing data after the packet", ErrMalformed)
	}
	if len(w.Msgs) > MaxPacketMsgs || len(w.Acks) > MaxPacketAcks {
		return Packet{}, fmt.Errorf("%w: %d messages and %d acks, max %d and %d", ErrMessageTooLarge,
			len(w.Msgs), len(w.Acks), MaxPacketMsgs, MaxPacketAcks)
	}
	p := Packet{Sync: w.Sync}
	for _, ws := range w.Msgs {
		if ws.Seq == nil || ws.Msg == nil {
			return Packet{}, fmt.Errorf("%w: packet message lacks seq or msg", ErrMalformed)
		}
		m, err := Decode(ws.Msg)
		if err != nil {
			return Packet{}, err
		}
		if err := checkSeq(*ws.Seq, m); err != nil {
			return Packet{}, err
		}
		p.Msgs = append(p.Msgs, Sequenced{Seq: *ws.Seq, Msg: m})
	}
	for _, wa := range w.Acks {
		if wa.DealID == nil || wa.Seq == nil {
			return Packet{}, fmt.Errorf("%w: ack lacks dealId or seq", ErrMalformed)
		}
		a := Ack{DealID: *wa.DealID, Seq: *wa.Seq}
		if wa.Status != "" {
			st, err := ParseStatus(wa.Status)
			if err != nil || st == StatusNone {
				return Packet{}, fmt.Errorf("%w: ack status %q", ErrMalformed, wa.Status)
			}
			a.Status = st
		}
		p.Acks = append(p.Acks, a)
	}
	return p, nil
}

// DealOf returns the deal a message is about (a proposal's is the id of
// its terms under domain d).
func DealOf(m Message, d Domain) common.Hash {
	switch m := m.(type) {
	case *Proposal:
		return m.Terms.ID(d)
	case *Accept:
		return m.DealID
	case *Reject:
		return m.DealID
	case *SignedVoucher:
		return m.Voucher.DealID
	case *Close:
		return m.DealID
	}
	return common.Hash{}
}
