package agreement

import (
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// Event is an input to Machine.Step: a local command, a message from the
// counterparty, a chain event, or a metering report. Every event carries
// the time it happened (At); the machine reads no clock.
type Event interface {
	at() time.Time
	name() string
}

// Propose (local command, requester) proposes Terms to their provider. The
// node builds the terms from a matching.Fill: the offer and request ids,
// the offer's prices, the fill's IPs, Start about now, Deadline = Start +
// the request's duration, MaxAmount = the time cost of the whole duration
// plus the request's traffic budget. The machine signs them.
type Propose struct {
	At    time.Time
	Terms Terms
}

// CloseDeal (local command, either side) ends a deal: before funding it
// withdraws; after funding without service it offers a cooperative cancel;
// while active it stops the service, and the provider settles.
type CloseDeal struct {
	At     time.Time
	DealID common.Hash
}

// SetOffer (local command, provider) registers or updates one of the
// provider's own offers. Capacity is the total IPs of the offer's series
// (its maker and nonce), whatever version is advertised; the machine
// subtracts what deals hold (Available). A later version of a series
// replaces the prices and limits for new proposals to it; proposals to an
// earlier, still registered version are checked against that version.
type SetOffer struct {
	At       time.Time
	ID       common.Hash
	Offer    *orderbook.Order
	Capacity uint32
}

// RemoveOffer (local command, provider) withdraws an offer version: new
// proposals to it are rejected. Deals on it go on.
type RemoveOffer struct {
	At time.Time
	ID common.Hash
}

// Receive is a message from the peer From, whose address the secure
// channel authenticated.
//
// RequestOpen matters only for an accept that arrives after the requester
// gave up waiting for it (its proposal timed out): it says whether the
// request is still open (the node's book knows; the machine does not).
// Such a late accept is honoured when the request is open and no other
// deal of the request is under way; otherwise it is answered with a close,
// so that the provider frees its reservation at once.
type Receive struct {
	At          time.Time
	From        common.Address
	Msg         Message
	RequestOpen bool
}

// Opened is the Escrow's Opened event: the deal is funded.
type Opened struct {
	At        time.Time
	DealID    common.Hash
	MaxAmount *big.Int
}

// Settled is the Escrow's Settled event.
type Settled struct {
	At          time.Time
	DealID      common.Hash
	Amount      *big.Int
	Commission  *big.Int
	Bytes       uint64
	ConnLogHash common.Hash
}

// Refunded is the Escrow's Refunded event.
type Refunded struct {
	At     time.Time
	DealID common.Hash
	Amount *big.Int
}

// Cancelled is the Escrow's Cancelled event.
type Cancelled struct {
	At     time.Time
	DealID common.Hash
}

// TxFailed reports that a transaction from Ready.Txs failed. Final is set
// for a revert that trying again cannot change (the node classifies the
// error; a refund refused as too early, a connection, nonce or fee error,
// or a missing receipt is not final): an open that fails for good ends the
// deal before funding, a settle, refund or cancel is no longer retried. A
// failure that is not final is retried with backoff (see Config.TxRetry).
// Err goes into the history; the machine does not parse it.
type TxFailed struct {
	At     time.Time
	DealID common.Hash
	Kind   TxKind
	Err    string
	Final  bool
}

// Unwound reports that a chain reorganisation removed an event the machine
// was told of (Event: an Opened, Settled, Refunded or Cancelled carrying
// only its DealID is enough). What the event caused is undone: a deal
// whose opening vanished stops its service and waits to be funded again
// (the requester resubmits the open if it is not seen again); a deal whose
// settlement, refund or cancel vanished goes back to waiting for it, and
// the transaction is resubmitted.
type Unwound struct {
	At     time.Time
	DealID common.Hash
	Event  Event
}

// Usage is a metering report from the tunnel: the cumulative bytes of the
// deal on this side (both directions), and the head and length of the
// connection log so far (the requester puts the head in its next voucher;
// a restarted node resumes its log from them).
type Usage struct {
	At          time.Time
	DealID      common.Hash
	Bytes       uint64
	ConnLogHash common.Hash
	ConnLogLen  uint64
}

func (e Propose) at() time.Time     { return e.At }
func (e CloseDeal) at() time.Time   { return e.At }
func (e SetOffer) at() time.Time    { return e.At }
func (e RemoveOffer) at() time.Time { return e.At }
func (e Receive) at() time.Time     { return e.At }
func (e Opened) at() time.Time      { return e.At }
func (e Settled) at() time.Time     { return e.At }
func (e Refunded) at() time.Time    { return e.At }
func (e Cancelled) at() time.Time   { return e.At }
func (e TxFailed) at() time.Time    { return e.At }
func (e Usage) at() time.Time       { return e.At }
func (e Unwound) at() time.Time     { return e.At }

func (Propose) name() string     { return "propose" }
func (CloseDeal) name() string   { return "close" }
func (SetOffer) name() string    { return "set-offer" }
func (RemoveOffer) name() string { return "remove-offer" }
func (e Receive) name() string {
	if e.Msg == nil {
		return "receive"
	}
	return e.Msg.Type() + " received"
}
func (Opened) name() string     { return "opened on chain" }
func (Settled) name() string    { return "settled on chain" }
func (Refunded) name() string   { return "refunded on chain" }
func (Cancelled) name() string  { return "cancelled on chain" }
func (e TxFailed) name() string { return e.Kind.String() + " failed" }
func (Usage) name() string      { return "usage" }
func (e Unwound) name() string {
	if e.Event == nil {
		return "unwound"
	}
	return e.Event.name() + " unwound"
}
