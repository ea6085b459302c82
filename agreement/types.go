package agreement

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Errors of the state machine. Step returns them wrapped with the detail
// of what was refused; the state is unchanged whenever Step returns one.
var (
	ErrUnknownDeal      = errors.New("agreement: unknown deal")
	ErrDealExists       = errors.New("agreement: deal already exists")
	ErrNotParty         = errors.New("agreement: not a party to the deal")
	ErrWrongPeer        = errors.New("agreement: message not from the deal's counterparty")
	ErrWrongRole        = errors.New("agreement: event is for the other side of the deal")
	ErrUnexpected       = errors.New("agreement: event not allowed in this state")
	ErrDealOver         = errors.New("agreement: deal is over")
	ErrUnknownEvent     = errors.New("agreement: unknown event")
	ErrAmountMismatch   = errors.New("agreement: chain amount does not match the terms")
	ErrUsageDecreases   = errors.New("agreement: metered bytes decrease")
	ErrProposalTooLate  = errors.New("agreement: deadline too close or start out of range")
	ErrVoucherDecreases = errors.New("agreement: voucher amount decreases")
	ErrVoucherBytes     = errors.New("agreement: voucher byte count decreases")
	ErrVoucherAboveMax  = errors.New("agreement: voucher amount above the deal's max amount")
	ErrVoucherTooFar    = errors.New("agreement: voucher pays too far ahead")
	ErrVoucherDeal      = errors.New("agreement: voucher for another deal")
	ErrInvalidConfig    = errors.New("agreement: invalid config")
)

// Role is the local party's side of a deal.
type Role uint8

const (
	RoleProvider  Role = 1
	RoleRequester Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleProvider:
		return "provider"
	case RoleRequester:
		return "requester"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Status is the status of one side of a deal, and of the deal as derived
// from both (Deal.Status). The words of String appear in the API.
type Status uint8

const (
	StatusNone      Status = iota // not yet known (the counterparty before it spoke)
	StatusProposed                // requester proposed; no answer yet
	StatusAccepted                // provider signed (and reserved); not funded yet
	StatusRejected                // provider refused (terminal)
	StatusFunded                  // opened on chain; service not started
	StatusActive                  // being served and paid ahead
	StatusCompleted               // service over; waiting for settlement (or refund, or cancel)
	StatusSettled                 // settled on chain with a voucher (terminal)
	StatusRefunded                // refunded on chain after deadline + grace (terminal)
	StatusCancelled               // closed before funding, or cancelled on chain (terminal)
	StatusExpired                 // timed out before funding (terminal)
)

var statusNames = [...]string{"none", "proposed", "accepted", "rejected", "funded", "active", "completed",
	"settled", "refunded", "cancelled", "expired"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus is the inverse of String.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("agreement: unknown status %q", s)
}

// Terminal reports whether nothing can happen to a side in status s any
// more. (Expired and pre-funding Cancelled give way to Completed only if
// the chain reports a late funding, see the package doc.)
func (s Status) Terminal() bool {
	switch s {
	case StatusRejected, StatusSettled, StatusRefunded, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// rank orders the running statuses along the lifecycle.
func (s Status) rank() int {
	switch s {
	case StatusProposed:
		return 1
	case StatusAccepted:
		return 2
	case StatusFunded:
		return 3
	case StatusActive:
		return 4
	}
	return 0
}

// TxKind names an Escrow transaction.
type TxKind uint8

const (
	TxNone   TxKind = 0
	TxOpen   TxKind = 1
	TxSettle TxKind = 2
	TxRefund TxKind = 3
	TxCancel TxKind = 4
)

func (k TxKind) String() string {
	switch k {
	case TxNone:
		return "none"
	case TxOpen:
		return "open"
	case TxSettle:
		return "settle"
	case TxRefund:
		return "refund"
	case TxCancel:
		return "cancel"
	}
	return fmt.Sprintf("tx(%d)", uint8(k))
}

// Signer signs digests for the local party. It must be deterministic and do
// no I/O for the machine to stay pure; KeySigner is.
type Signer interface {
	Address() common.Address
	Sign(digest common.Hash) ([]byte, error)
}

// KeySigner signs with an in-memory secp256k1 key (RFC 6979, deterministic).
type KeySigner struct{ key *ecdsa.PrivateKey }

// NewKeySigner returns a Signer for key.
func NewKeySigner(key *ecdsa.PrivateKey) KeySigner { return KeySigner{key: key} }

func (s KeySigner) Address() common.Address { return crypto.PubkeyToAddress(s.key.PublicKey) }

func (s KeySigner) Sign(d common.Hash) ([]byte, error) { return Sign(d, s.key) }

// Config configures a Machine. Durations are whole seconds (fractions are
// dropped); the deal clock is unix seconds.
type Config struct {
	// Signer is the local party: its address is the provider of the deals it
	// accepts and the requester of the deals it proposes.
	Signer Signer
	// Domain is the EIP-712 domain of the escrow deals are opened on.
	Domain Domain

	// IntervalSeconds and IntervalBytes make the pay-ahead interval: each
	// voucher pays for what was used plus IntervalSeconds of time and
	// IntervalBytes of traffic; the requester renews when half of either
	// is used, whichever comes first.
	IntervalSeconds uint64
	IntervalBytes   uint64

	// ProposalTimeout: the requester gives up on an unanswered proposal.
	ProposalTimeout time.Duration
	// ReservationTimeout: the provider releases the capacity reserved for
	// an accepted proposal not funded on chain within this time.
	ReservationTimeout time.Duration
	// FundingTimeout: the requester gives up on an accepted deal whose open
	// it has not seen on chain within this time. At most ReservationTimeout.
	FundingTimeout time.Duration
	// PaymentGrace: the provider, once the paid-ahead amount is used up (or
	// no first voucher came), waits this long for a voucher before it ends
	// the deal and settles.
	PaymentGrace time.Duration
	// RefundGrace is the Escrow's graceSeconds: the requester refunds an
	// unsettled deal from Deadline + RefundGrace.
	RefundGrace time.Duration
	// MaxClockSkew: how far in the past a proposal's Start may be.
	MaxClockSkew time.Duration
	// TxRetry: how long to wait before resubmitting a transaction that
	// failed for a reason that may pass (a connection, nonce or fee error, a
	// refund asked a moment early) or was not seen on chain; the wait
	// doubles with each failure, up to 8 times TxRetry. A revert is final.
	TxRetry time.Duration
}

// DefaultConfig returns a Config with the defaults the node uses.
func DefaultConfig(s Signer, d Domain) Config {
	return Config{
		Signer:             s,
		Domain:             d,
		IntervalSeconds:    10,
		IntervalBytes:      8 << 20,
		ProposalTimeout:    15 * time.Second,
		ReservationTimeout: 2 * time.Minute,
		FundingTimeout:     90 * time.Second,
		PaymentGrace:       10 * time.Second,
		RefundGrace:        time.Hour,
		MaxClockSkew:       30 * time.Second,
		TxRetry:            15 * time.Second,
	}
}

func (c *Config) validate() error {
	switch {
	case c.Signer == nil:
		return fmt.Errorf("%w: no signer", ErrInvalidConfig)
	case c.Domain.ChainID == nil || c.Domain.ChainID.Sign() <= 0:
		return fmt.Errorf("%w: domain chain id", ErrInvalidConfig)
	case c.IntervalSeconds == 0 || c.IntervalBytes == 0:
		return fmt.Errorf("%w: interval seconds and bytes must be positive", ErrInvalidConfig)
	case c.ProposalTimeout < time.Second || c.ReservationTimeout < time.Second ||
		c.FundingTimeout < time.Second || c.TxRetry < time.Second:
		return fmt.Errorf("%w: timeouts must be at least a second", ErrInvalidConfig)
	case c.FundingTimeout > c.ReservationTimeout:
		return fmt.Errorf("%w: funding timeout %v above reservation timeout %v", ErrInvalidConfig,
			c.FundingTimeout, c.ReservationTimeout)
	case c.PaymentGrace < 0 || c.RefundGrace < 0 || c.MaxClockSkew < 0:
		return fmt.Errorf("%w: negative grace or skew", ErrInvalidConfig)
	case time.Duration(c.IntervalSeconds)*time.Second <= 0:
		return fmt.Errorf("%w: interval seconds too large", ErrInvalidConfig)
	}
	return nil
}

func secs(d time.Duration) uint64 { return uint64(d / time.Second) }

// Deal is one deal as one side sees it: everything the node persists, and
// everything Restore needs. Times are unix seconds, 0 for not yet.
type Deal struct {
	ID    common.Hash
	Role  Role // the local party's side
	Terms Terms

	ProviderSig  []byte // over ID; set once accepted
	RequesterSig []byte // over ID

	// Provider and Requester are the two sides' statuses: the local side's
	// is authoritative, the counterparty's is what its messages and the
	// chain told, or what the protocol implies.
	Provider  Status
	Requester Status
	Reason    Reason // why the deal was refused or ended; empty while it runs
	Detail    string // the provider's free-text detail of a reject

	// Provider only: the offer series (its nonce) whose capacity the deal
	// holds, and whether it holds Terms.IPs of it right now.
	Pool     uint64
	Reserved bool

	// Voucher is the latest voucher: sent (requester) or accepted
	// (provider). The provider settles with it.
	Voucher *SignedVoucher
	// PeerCancelSig is the counterparty's signature over Cancel(ID), once it
	// offered a cooperative cancel.
	PeerCancelSig []byte

	ProposedAt  uint64
	AcceptedAt  uint64
	FundedAt    uint64
	StartedAt   uint64 // service start on this side (the deal clock's zero)
	EndedAt     uint64 // service end on this side
	StalledAt   uint64 // provider: when the paid-ahead amount ran out; 0 while paid
	Serving     bool   // the tunnel permission is granted (provider) or the route usable (requester)
	Bytes       uint64 // bytes metered on this side so far
	ConnLogHash common.Hash
	ConnLogLen  uint64 // entries under ConnLogHash

	// Requester: the usage at the last voucher (renewal trigger).
	PaidSecs  uint64
	PaidBytes uint64

	// Pending is the transaction submitted and not yet seen on chain;
	// RetryAt is when it is resubmitted, TxAttempts how often it failed
	// (the backoff doubles with each), TxError the last failure.
	Pending    TxKind
	RetryAt    uint64
	TxAttempts uint32
	TxError    string

	// Chain is what the chain said of the deal: none, funded (Opened),
	// settled, refunded or cancelled.
	Chain Status

	// Chain outcome.
	SettledAmount *big.Int
	Commission    *big.Int
	RefundAmount  *big.Int
}

// Status is the deal status derived from both sides: a chain outcome
// (settled, refunded, cancelled) wins; then rejected, expired, a
// pre-funding cancel; then completed if either side completed; otherwise
// the less advanced of the two running statuses (an unknown side counts as
// the other).
func (d *Deal) Status() Status {
	p, r := d.Provider, d.Requester
	for _, s := range []Status{StatusSettled, StatusRefunded, StatusCancelled, StatusRejected, StatusExpired, StatusCompleted} {
		if p == s || r == s {
			return s
		}
	}
	switch {
	case p == StatusNone:
		return r
	case r == StatusNone:
		return p
	case p.rank() < r.rank():
		return p
	}
	return r
}

// Local is the local side's status.
func (d *Deal) Local() Status {
	if d.Role == RoleProvider {
		return d.Provider
	}
	return d.Requester
}

func (d *Deal) setLocal(s Status) {
	if d.Role == RoleProvider {
		d.Provider = s
	} else {
		d.Requester = s
	}
}

func (d *Deal) setPeer(s Status) {
	if d.Role == RoleProvider {
		d.Requester = s
	} else {
		d.Provider = s
	}
}

// Peer is the counterparty's address.
func (d *Deal) Peer() common.Address {
	if d.Role == RoleProvider {
		return d.Terms.Requester
	}
	return d.Terms.Provider
}

// Paid is the latest voucher's amount (0 without one).
func (d *Deal) Paid() *big.Int {
	if d.Voucher == nil || d.Voucher.Voucher.Amount == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(d.Voucher.Voucher.Amount)
}

// Clone returns a deep copy.
func (d *Deal) Clone() Deal {
	c := *d
	c.Terms = cloneTerms(d.Terms)
	c.ProviderSig = bytes.Clone(d.ProviderSig)
	c.RequesterSig = bytes.Clone(d.RequesterSig)
	c.Voucher = d.Voucher.Clone()
	c.PeerCancelSig = bytes.Clone(d.PeerCancelSig)
	c.SettledAmount = cloneBig(d.SettledAmount)
	c.Commission = cloneBig(d.Commission)
	c.RefundAmount = cloneBig(d.RefundAmount)
	return c
}

func cloneTerms(t Terms) Terms {
	t.PricePerIPHour = cloneBig(t.PricePerIPHour)
	t.PricePerGB = cloneBig(t.PricePerGB)
	t.MaxAmount = cloneBig(t.MaxAmount)
	return t
}

func cloneBig(x *big.Int) *big.Int {
	if x == nil {
		return nil
	}
	return new(big.Int).Set(x)
}

// Entry is one line of a deal's history.
type Entry struct {
	At     uint64
	Event  string // what happened, e.g. "accept received", "tick"
	From   Status // local status before
	To     Status // local status after
	Status Status // derived deal status after
	Reason Reason
	Detail string // e.g. a failed transaction's error, with a revert's reason
}

// Update is a deal to persist: its whole new state and the history entries
// added since the last Ready.
type Update struct {
	Deal    Deal
	History []Entry
}

// Envelope is a message to send to a counterparty.
type Envelope struct {
	To  common.Address
	Msg Message
}

// Tx is an Escrow transaction to submit.
//
//	open:   Terms, ProviderSig, RequesterSig (over the deal id)
//	settle: Terms, Voucher (with the requester's signature); sent by the provider
//	refund: Terms
//	cancel: Terms, ProviderSig, RequesterSig (over Cancel(dealId))
type Tx struct {
	Kind         TxKind
	DealID       common.Hash
	Terms        Terms
	ProviderSig  []byte
	RequesterSig []byte
	Voucher      *SignedVoucher
}

// Reservation takes (Take) or releases IPs of the provider's offer series
// Pool for a deal. The machine does its own accounting (Available); the
// node uses these to publish updated offer versions.
type Reservation struct {
	DealID  common.Hash
	OfferID common.Hash
	Pool    uint64
	IPs     uint32
	Take    bool
}

// Permission grants (Allow) or revokes tunnel use for a deal: on the
// provider, accepting tunnel streams from Peer for the deal; on the
// requester, routing proxy traffic through the deal.
type Permission struct {
	DealID common.Hash
	Role   Role
	Peer   common.Address
	Allow  bool
}

// Retry tells the requester's node that a proposal failed (rejected, timed
// out, not funded) and the request should move to its next candidate.
type Retry struct {
	DealID    common.Hash
	RequestID common.Hash
	OfferID   common.Hash
	Reason    Reason
}

// Ready is the output of the machine since the last Advance. See the
// package doc for the order in which the node must act on it.
type Ready struct {
	Deals        []Update      // persist, synced, before anything else
	Messages     []Envelope    // then send
	Txs          []Tx          // submit
	Reservations []Reservation // apply
	Permissions  []Permission  // grant / revoke
	Retries      []Retry       // propose to the next candidate
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return len(r.Deals) == 0 && len(r.Messages) == 0 && len(r.Txs) == 0 &&
		len(r.Reservations) == 0 && len(r.Permissions) == 0 && len(r.Retries) == 0
}
