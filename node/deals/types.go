package deals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"
)

// Errors.
var (
	// ErrStore: a record could not be saved; the driver stops.
	ErrStore = errors.New("deals: save deal records")
	// ErrStopped: the driver is not running.
	ErrStopped = errors.New("deals: driver not running")
	// ErrNoBlock is what Chain.Header returns for a block the chain does
	// not have (any other error is taken for a failed read).
	ErrNoBlock = errors.New("deals: no such block")
)

// Config tunes the driver. Zero fields take the defaults of withDefaults.
type Config struct {
	// Machine is the state machine's configuration.
	Machine agreement.Config
	// Tick is how often the machine's timers are checked (default 1 s).
	Tick time.Duration
	// ResendMin and ResendMax bound the backoff of an unacknowledged
	// outbox (defaults 250 ms and 5 s).
	ResendMin, ResendMax time.Duration
	// ExchangeTimeout bounds one packet exchange (default 10 s).
	ExchangeTimeout time.Duration
	// Confirmations: deal events are acted on once this many blocks are on
	// top of theirs (0: at once, as on a dev chain).
	Confirmations uint64
	// ReorgWindow is how many recent blocks' hashes the watcher keeps to
	// notice a reorganisation (default 64).
	ReorgWindow int
	// TrafficBudgetGB is how many GB of traffic a requester's deal locks
	// beyond its time cost (default 10).
	TrafficBudgetGB uint64
	// SeriesBackoff is the wait before an offer series that failed a
	// request is proposed to again; it doubles with each failure (default
	// 10 s). MaxSeriesAttempts bounds the proposals to one series per
	// request (default 3).
	SeriesBackoff     time.Duration
	MaxSeriesAttempts int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Tick, time.Second)
	def(&c.ResendMin, 250*time.Millisecond)
	def(&c.ResendMax, 5*time.Second)
	def(&c.ExchangeTimeout, 10*time.Second)
	def(&c.SeriesBackoff, 10*time.Second)
	if c.ReorgWindow <= 0 {
		c.ReorgWindow = 64
	}
	if c.TrafficBudgetGB == 0 {
		c.TrafficBudgetGB = 10
	}
	if c.MaxSeriesAttempts <= 0 {
		c.MaxSeriesAttempts = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Peer is what a record keeps of its counterparty's libp2p identity: its
// peer ID and the multiaddrs it was last reached at (strings, so that this
// package needs no libp2p types).
type Peer struct {
	ID    string   `json:"id,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
}

// Outgoing is one message in a record's outbox.
type Outgoing struct {
	Seq uint64          `json:"seq"`
	Msg json.RawMessage `json:"msg"` // agreement.Encode
	msg agreement.Message
}

func (o *Outgoing) message() (agreement.Message, error) {
	if o.msg == nil {
		m, err := agreement.Decode(o.Msg)
		if err != nil {
			return nil, fmt.Errorf("deals: outbox message %d: %w", o.Seq, err)
		}
		o.msg = m
	}
	return o.msg, nil
}

// Record is one deal as the driver keeps it on disk. The JSON keys deal,
// history and updated are those of the records written before the
// acknowledged protocol, which load with an empty outbox.
type Record struct {
	Deal    agreement.Deal    `json:"deal"`
	History []agreement.Entry `json:"history"`
	Updated time.Time         `json:"updated"`

	// Out holds the messages sent or to send that the counterparty has not
	// acknowledged, by sequence number. Sent is the last number given,
	// Recv the last processed from the counterparty.
	Out  []Outgoing `json:"out,omitempty"`
	Sent uint64     `json:"sent,omitempty"`
	Recv uint64     `json:"recv,omitempty"`
	// Queued is the amount of the newest voucher put in Out (requester);
	// Acked the newest the counterparty acknowledged (it had it on disk).
	Queued *big.Int `json:"queued,omitempty"`
	Acked  *big.Int `json:"acked,omitempty"`
	// PeerStatus is the counterparty's own status of the deal, as its last
	// acknowledgement said.
	PeerStatus agreement.Status `json:"peerStatus,omitempty"`
	Peer       Peer             `json:"peer,omitempty"`
	// Offer is the offer the deal came from (requester, when the proposer
	// made it): its location is what the node's geo check compares.
	Offer *orderbook.Order `json:"offer,omitempty"`
}

// clone copies what the API may hold on to.
func (r *Record) clone() Record {
	c := *r
	c.Deal = r.Deal.Clone()
	c.History = append([]agreement.Entry(nil), r.History...)
	c.Out = append([]Outgoing(nil), r.Out...)
	if r.Queued != nil {
		c.Queued = new(big.Int).Set(r.Queued)
	}
	if r.Acked != nil {
		c.Acked = new(big.Int).Set(r.Acked)
	}
	c.Peer.Addrs = append([]string(nil), r.Peer.Addrs...)
	return c
}

// open reports whether the deal still needs its counterparty: either side
// is not done, or messages wait for an acknowledgement.
func (r *Record) open() bool {
	if len(r.Out) > 0 {
		return true
	}
	if r.Deal.Chain.Terminal() {
		return false
	}
	return !r.Deal.Local().Terminal()
}

// Store is the driver's durable state. SaveDeals writes every record
// given in one atomic, synced write before it returns; the driver acts on
// nothing it has not saved. All methods are called from the driver's loop
// only, except LoadDeals before it starts.
type Store interface {
	LoadDeals() ([]Record, error)
	SaveDeals(recs []*Record) error
	LoadCursor() (Cursor, error) // the zero Cursor if none was saved
	SaveCursor(c Cursor) error
	LoadCapacity() (map[uint64]uint32, error)
	SaveCapacity(pool uint64, ips uint32) error
}

// Transport carries one exchange: it delivers p to the counterparty `to`
// (reached through hint when it is not connected) and returns its answer
// and how it was reached. It blocks; ctx bounds it. It is called from
// goroutines of the driver, several at once for different counterparties.
type Transport interface {
	Exchange(ctx context.Context, to common.Address, hint Peer, p agreement.Packet) (agreement.Packet, Peer, error)
}

// TxOutcome classifies a transaction's error.
type TxOutcome uint8

const (
	TxRetry   TxOutcome = iota // may pass: retried with backoff
	TxFinal                    // a revert that cannot change
	TxOnChain                  // the outcome is on chain already; the event decides
)

// Chain is the escrow as the driver sees it. Submit blocks until the
// transaction is mined (nil) or has failed. Events returns the escrow's
// deal events in blocks [from, to], oldest first. Header returns the
// number, hash and time of a block (nil: the head). All are called from
// goroutines of the driver.
type Chain interface {
	Submit(ctx context.Context, tx agreement.Tx) error
	Classify(err error) TxOutcome
	Events(ctx context.Context, from, to uint64) ([]Event, error)
	Header(ctx context.Context, number *uint64) (Header, error)
}

// Header is a block's number, hash and time.
type Header struct {
	Number uint64
	Hash   common.Hash
	Time   uint64
}

// Event is one escrow deal event: Ev is the machine's event
// (agreement.Opened, Settled, Refunded or Cancelled); Block and Hash say
// where it was mined.
type Event struct {
	Ev     agreement.Event
	DealID common.Hash
	Block  uint64
	Hash   common.Hash
}

// Offers is the order book as the proposer and the machine need it. Its
// methods are safe for concurrent use and do no network I/O.
type Offers interface {
	// OwnRequests are the node's live requests.
	OwnRequests() []*orderbook.Order
	// Candidates are the fills of a request, best first (matching and the
	// node's ranking).
	Candidates(r *orderbook.Order, now time.Time) []matching.Fill
	// Reachable reports whether a maker can be reached (its peer is known).
	Reachable(maker common.Address) bool
	// RequestOpen reports whether the node's request is still live.
	RequestOpen(id common.Hash) bool
}

// Hooks are what the node does about deals. They are called on the
// driver's loop after the records are saved, and must not block: start
// any I/O on a goroutine of your own.
type Hooks interface {
	// Updated: deals whose state changed.
	Updated(recs []Record)
	// Permissions: tunnel grants and revocations, in order.
	Permissions(ps []agreement.Permission)
	// Reservations: capacity of own offer series taken or released.
	Reservations(rs []agreement.Reservation)
	// Usage is the provider's current meter reading of a deal, taken
	// before a voucher is judged (ok false: none).
	Usage(id common.Hash) (u Metered, ok bool)
	// VoucherOK is the provider's check of a voucher's connection-log
	// head against its own log; an error refuses the voucher (the node
	// stops serving the deal).
	VoucherOK(id common.Hash, connLog common.Hash) error
}

// Metered is a meter reading: the deal's bytes on this side and its
// connection log's head and length.
type Metered struct {
	Bytes      uint64
	ConnLog    common.Hash
	ConnLogLen uint64
}

// Cursor is where the chain watcher is: the next block to read and the
// hashes of recent blocks read, with the events acted on in them, to
// notice and undo a reorganisation.
type Cursor struct {
	Next   uint64     `json:"next"`
	Recent []BlockRef `json:"recent,omitempty"`
}

// BlockRef is a block the watcher read, with the deal events it acted on.
type BlockRef struct {
	Number uint64        `json:"number"`
	Hash   common.Hash   `json:"hash"`
	Events []EventRecord `json:"events,omitempty"`
}

// EventRecord is an acted-on event, as much as unwinding it needs.
type EventRecord struct {
	DealID common.Hash `json:"dealId"`
	Kind   string      `json:"kind"` // opened, settled, refunded, cancelled
}

func eventKind(e agreement.Event) string {
	switch e.(type) {
	case agreement.Opened:
		return "opened"
	case agreement.Settled:
		return "settled"
	case agreement.Refunded:
		return "refunded"
	case agreement.Cancelled:
		return "cancelled"
	}
	return ""
}

func unwindEvent(kind string, id common.Hash) agreement.Event {
	switch kind {
	case "opened":
		return agreement.Opened{DealID: id}
	case "settled":
		return agreement.Settled{DealID: id}
	case "refunded":
		return agreement.Refunded{DealID: id}
	case "cancelled":
		return agreement.Cancelled{DealID: id}
	}
	return nil
}
