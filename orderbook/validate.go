package orderbook

import (
	"errors"
	"fmt"
	"math/big"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
)

// Errors of validation. Each is either a Reject (the message is malformed or
// forged: a peer that forwards it loses score) or an Ignore (stale,
// duplicate, not affordable right now: dropped at no cost); see Verdict.
var (
	// Reject.
	ErrMalformed    = errors.New("orderbook: malformed order")
	ErrBadSignature = errors.New("orderbook: bad signature")
	// ErrWrongSigner is a bad signature of a particular kind: valid, but
	// by someone other than the maker.
	ErrWrongSigner    = fmt.Errorf("%w: signer is not the maker", ErrBadSignature)
	ErrWrongDomain    = errors.New("orderbook: wrong chain id or escrow")
	ErrOutOfRange     = errors.New("orderbook: field out of range")
	ErrUnknownCountry = errors.New("orderbook: unknown country")
	ErrFuture         = errors.New("orderbook: created too far in the future")
	ErrTooLarge       = errors.New("orderbook: message too large")
	ErrBadDigest      = errors.New("orderbook: heartbeat digest")

	// Ignore.
	ErrExpired      = errors.New("orderbook: expired")
	ErrDuplicate    = errors.New("orderbook: duplicate")
	ErrCancelled    = errors.New("orderbook: cancelled")
	ErrSuperseded   = errors.New("orderbook: superseded by a newer version")
	ErrStale        = errors.New("orderbook: stale")
	ErrInsufficient = errors.New("orderbook: escrow balance does not cover the order")
	ErrNotFound     = errors.New("orderbook: order not found")
)

// Verdict is what a gossip validator answers for a message.
type Verdict int

const (
	Accept Verdict = iota
	Ignore
	Reject
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Ignore:
		return "ignore"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// VerdictOf classifies a validation error.
func VerdictOf(err error) Verdict {
	switch {
	case err == nil:
		return Accept
	case errors.Is(err, ErrExpired), errors.Is(err, ErrDuplicate),
		errors.Is(err, ErrCancelled), errors.Is(err, ErrSuperseded),
		errors.Is(err, ErrStale), errors.Is(err, ErrInsufficient),
		errors.Is(err, ErrNotFound):
		return Ignore
	}
	return Reject
}

// Limits of the protocol. Params holds the ones a network may tune.
const (
	MinDuration    = 5                   // seconds
	MaxDuration    = 30 * 24 * 3600      // seconds
	MaxLifetime    = MaxDuration + 86400 // created..expires, seconds
	MaxIPs         = 1 << 16             // per order
	MaxBandwidth   = 1 << 20             // Mbit/s
	MaxTextLen     = 64                  // region, city: bytes
	DefaultMaxSkew = 30 * time.Second    // created may be this far ahead
	DefaultMaxSize = 2048                // bytes of an encoded order
	DefaultLiveTTL = 90 * time.Second    // offer liveness after a heartbeat
	maxUint256Bits = 256
)

// Params are the network constants validation checks against.
type Params struct {
	Domain  Domain
	MaxSkew time.Duration // how far ahead of now Created may be
	MaxSize int           // bytes of an encoded message
}

// DefaultParams returns the defaults for a domain.
func DefaultParams(d Domain) Params {
	return Params{Domain: d, MaxSkew: DefaultMaxSkew, MaxSize: DefaultMaxSize}
}

// StateView is what validation needs to know of the book. Implementations
// must be safe for concurrent use.
type StateView interface {
	// Has reports whether the order is in the book.
	Has(id common.Hash) bool
	// Cancelled reports whether a cancel for the order is known.
	Cancelled(id common.Hash) bool
	// Series returns the version and id of the live order of the series
	// (maker, nonce), if any.
	Series(maker common.Address, nonce uint64) (version uint32, id common.Hash, ok bool)
}

// BalanceView reports a maker's free escrow balance (balance minus reserved),
// usually from a cached chain view. ok is false when unknown.
type BalanceView interface {
	Free(maker common.Address) (free *big.Int, ok bool)
}

// Validate is the validity function: the order's fields, size, domain,
// signature, times, and — when state or balances are non-nil — duplicates,
// cancels, superseded versions and the maker's escrow balance. It reads no
// clock and does no I/O of its own. size is the encoded size of the message
// as received (0 to skip that check). It is Precheck, then Verify: the
// cheap checks first, so that a message that fails them costs no signature
// recovery and no balance lookup.
func Validate(o *Order, size int, now time.Time, p Params, state StateView, balances BalanceView) error {
	if err := Precheck(o, size, now, p, state); err != nil {
		return err
	}
	return Verify(o, balances)
}

// Precheck is the cheap part of Validate: fields, size, domain, times and,
// when state is non-nil, whether the order is a duplicate, cancelled or
// superseded. Those last drop the order whoever signed it, so they come
// before the signature is checked.
func Precheck(o *Order, size int, now time.Time, p Params, state StateView) error {
	if err := CheckFields(o); err != nil {
		return err
	}
	if p.MaxSize > 0 && size > p.MaxSize {
		return fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, size, p.MaxSize)
	}
	if o.Domain() != p.Domain {
		return fmt.Errorf("%w: order is for chain %d escrow %s, this network is chain %d escrow %s",
			ErrWrongDomain, o.ChainID, o.VerifyingContract.Hex(), p.Domain.ChainID, p.Domain.VerifyingContract.Hex())
	}
	if err := checkTimes(o.Created, o.Expires, now, p); err != nil {
		return err
	}
	if state != nil {
		id := o.ID()
		if state.Cancelled(id) {
			return fmt.Errorf("%w: %s", ErrCancelled, id.Hex())
		}
		if state.Has(id) {
			return fmt.Errorf("%w: %s", ErrDuplicate, id.Hex())
		}
		if v, cur, ok := state.Series(o.Maker, o.Nonce); ok && (v > o.Version || (v == o.Version && cur != id)) {
			return fmt.Errorf("%w: have version %d (%s), got %d", ErrSuperseded, v, cur.Hex(), o.Version)
		}
	}
	return nil
}

// Verify is the expensive part of Validate: the signature must recover to
// the maker and, when balances is non-nil, the maker's free escrow balance
// must cover what the order could cost. The signature comes first, so a
// forger cannot make a node look up the balances of makers it chose.
func Verify(o *Order, balances BalanceView) error {
	signer, err := recoverSigner(o.ID(), o.Signature)
	if err != nil {
		return err
	}
	if signer != o.Maker {
		return fmt.Errorf("%w: signed by %s, maker %s", ErrWrongSigner, signer.Hex(), o.Maker.Hex())
	}
	if balances != nil {
		if cost := o.Cost(); cost.Sign() > 0 {
			free, ok := balances.Free(o.Maker)
			if !ok || free.Cmp(cost) < 0 {
				return fmt.Errorf("%w: needs %s, free balance %s", ErrInsufficient, cost, free)
			}
		}
	}
	return nil
}

// CheckFields checks what can be checked of an order alone: kinds, ranges,
// country, text lengths. It is the cheap first step of Validate, also used
// by the API before it signs an order of its own.
func CheckFields(o *Order) error {
	if o.Kind != KindOffer && o.Kind != KindRequest {
		return fmt.Errorf("%w: kind %d", ErrMalformed, o.Kind)
	}
	if o.Maker == (common.Address{}) {
		return fmt.Errorf("%w: maker is the zero address", ErrMalformed)
	}
	if !ValidCountry(o.Location.Country) {
		return fmt.Errorf("%w: %q is not an ISO 3166-1 alpha-2 code", ErrUnknownCountry, o.Location.Country)
	}
	if err := checkText("region", o.Location.Region); err != nil {
		return err
	}
	if err := checkText("city", o.Location.City); err != nil {
		return err
	}
	switch {
	case o.Kind == KindOffer && (o.IPType < IPResidential || o.IPType > IPDatacenter):
		return fmt.Errorf("%w: ipType %d (offers: residential, mobile or datacenter)", ErrOutOfRange, o.IPType)
	case o.IPType > IPDatacenter:
		return fmt.Errorf("%w: ipType %d", ErrOutOfRange, o.IPType)
	}
	if o.IPs == 0 || o.IPs > MaxIPs {
		return fmt.Errorf("%w: ips %d (want 1..%d)", ErrOutOfRange, o.IPs, MaxIPs)
	}
	if o.Protocols&^knownProtocols != 0 || !o.Protocols.Has(ProtoTCP) {
		return fmt.Errorf("%w: protocols %#x (tcp is required; known: tcp, udp)", ErrOutOfRange, uint8(o.Protocols))
	}
	if err := checkPrice("price per hour", o.PricePerHour); err != nil {
		return err
	}
	if err := checkPrice("price per GB", o.PricePerGB); err != nil {
		return err
	}
	if o.PricePerHour.Sign() == 0 && o.PricePerGB.Sign() == 0 {
		return fmt.Errorf("%w: price per hour and price per GB are both zero", ErrOutOfRange)
	}
	if o.Bandwidth > MaxBandwidth {
		return fmt.Errorf("%w: bandwidth %d Mbit/s (max %d)", ErrOutOfRange, o.Bandwidth, MaxBandwidth)
	}
	if o.Kind == KindOffer {
		if o.Bandwidth == 0 {
			return fmt.Errorf("%w: bandwidth must be at least 1 Mbit/s", ErrOutOfRange)
		}
		if o.MinDuration < MinDuration || o.MaxDuration > MaxDuration || o.MinDuration > o.MaxDuration {
			return fmt.Errorf("%w: duration range %d..%d s (want %d <= min <= max <= %d)",
				ErrOutOfRange, o.MinDuration, o.MaxDuration, MinDuration, MaxDuration)
		}
		if o.Duration != 0 {
			return fmt.Errorf("%w: offers carry minDuration/maxDuration, not duration", ErrMalformed)
		}
	} else {
		if o.Duration < MinDuration || o.Duration > MaxDuration {
			return fmt.Errorf("%w: duration %d s (want %d..%d)", ErrOutOfRange, o.Duration, MinDuration, MaxDuration)
		}
		if o.MinDuration != 0 || o.MaxDuration != 0 {
			return fmt.Errorf("%w: requests carry duration, not minDuration/maxDuration", ErrMalformed)
		}
	}
	if o.Expires <= o.Created || o.Expires-o.Created > MaxLifetime {
		return fmt.Errorf("%w: expires %d must be after created %d and at most %d s later",
			ErrOutOfRange, o.Expires, o.Created, MaxLifetime)
	}
	return nil
}

func checkTimes(created, expires uint64, now time.Time, p Params) error {
	n := now.Unix()
	if n < 0 {
		n = 0
	}
	if created > uint64(n)+uint64(p.MaxSkew/time.Second) {
		return fmt.Errorf("%w: created %d, now %d, max skew %s", ErrFuture, created, n, p.MaxSkew)
	}
	if expires != 0 && expires <= uint64(n) {
		return fmt.Errorf("%w: at %d, now %d", ErrExpired, expires, n)
	}
	return nil
}

func checkPrice(name string, v *big.Int) error {
	if v == nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, name, errNilPrice)
	}
	if v.Sign() < 0 || v.BitLen() > maxUint256Bits {
		return fmt.Errorf("%w: %s %s (want 0..2^256-1)", ErrOutOfRange, name, v)
	}
	return nil
}

func checkText(name, s string) error {
	if len(s) > MaxTextLen {
		return fmt.Errorf("%w: %s is %d bytes (max %d)", ErrOutOfRange, name, len(s), MaxTextLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrMalformed, name)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s has a control character", ErrMalformed, name)
		}
	}
	return nil
}

// ValidateCancel checks a cancel's domain, time and signature. Whether the
// order exists and who made it is the book's business (Book.Cancel).
func ValidateCancel(c *Cancel, now time.Time, p Params) error {
	if (Domain{c.ChainID, c.VerifyingContract}) != p.Domain {
		return fmt.Errorf("%w: cancel for chain %d", ErrWrongDomain, c.ChainID)
	}
	if err := checkTimes(c.Created, 0, now, p); err != nil {
		return err
	}
	signer, err := c.Signer()
	if err != nil {
		return err
	}
	if signer != c.Maker {
		return fmt.Errorf("%w: cancel signed by %s, maker %s", ErrWrongSigner, signer.Hex(), c.Maker.Hex())
	}
	return nil
}

// ValidateHeartbeat checks a heartbeat's domain, country, freshness and
// signature. ttl is how long a heartbeat keeps offers alive; one older than
// that is stale.
func ValidateHeartbeat(h *Heartbeat, now time.Time, ttl time.Duration, p Params) error {
	if (Domain{h.ChainID, h.VerifyingContract}) != p.Domain {
		return fmt.Errorf("%w: heartbeat for chain %d", ErrWrongDomain, h.ChainID)
	}
	if !ValidCountry(h.Country) {
		return fmt.Errorf("%w: %q", ErrUnknownCountry, h.Country)
	}
	if err := checkTimes(h.Created, h.Created+uint64(ttl/time.Second), now, p); err != nil {
		if errors.Is(err, ErrExpired) {
			return fmt.Errorf("%w: heartbeat from %d", ErrStale, h.Created)
		}
		return err
	}
	if h.Count > MaxIPs*16 {
		return fmt.Errorf("%w: heartbeat count %d", ErrOutOfRange, h.Count)
	}
	signer, err := h.Signer()
	if err != nil {
		return err
	}
	if signer != h.Maker {
		return fmt.Errorf("%w: heartbeat signed by %s, maker %s", ErrWrongSigner, signer.Hex(), h.Maker.Hex())
	}
	return nil
}
