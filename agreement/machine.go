package agreement

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// ErrUnknownOffer is returned by RemoveOffer for an offer never set, and by
// SetOffer for an order that is not an offer of the local party.
var ErrUnknownOffer = errors.New("agreement: not an offer of this provider")

type offerEntry struct {
	pool       uint64
	pricePerH  *big.Int
	pricePerGB *big.Int
	minDur     uint32
	maxDur     uint32
	expires    uint64
}

// Machine is the deal state machine of one local party (one address), for
// all its deals in either role, keyed by deal id. One machine per party,
// rather than per deal, because the provider's capacity is shared by its
// deals: the reservation that makes one of two racing requesters lose has
// to see both proposals.
//
// A Machine is not safe for concurrent use; one goroutine owns it (see the
// package doc).
type Machine struct {
	cfg  Config
	self common.Address
	now  uint64

	deals map[common.Hash]*Deal
	ids   []common.Hash // sorted; every iteration goes through it

	offers   map[common.Hash]offerEntry
	capacity map[uint64]uint32 // offer series (nonce) → total IPs
	resumed  uint64            // when the node came back (Resume); 0 if it never went

	ready Ready
	dirty map[common.Hash]int // deal id → index in ready.Deals
}

// New returns a machine with no deals. It validates cfg.
func New(cfg Config) (*Machine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Machine{
		cfg:      cfg,
		self:     cfg.Signer.Address(),
		deals:    make(map[common.Hash]*Deal),
		offers:   make(map[common.Hash]offerEntry),
		capacity: make(map[uint64]uint32),
		dirty:    make(map[common.Hash]int),
	}, nil
}

// Restore loads persisted deals into a machine that has none yet (after a
// restart). Deals whose tunnel permission was granted come out again in the
// next Ready as grants, since the tunnel forgot them. The node must then
// register its offers again (SetOffer) and replay chain events since its
// cursor; Tick resubmits pending transactions after Config.TxRetry.
func (m *Machine) Restore(deals []Deal) error {
	if len(m.deals) != 0 {
		return fmt.Errorf("agreement: restore into a machine that has deals")
	}
	loaded := make(map[common.Hash]*Deal, len(deals))
	for i := range deals {
		d := deals[i].Clone()
		if d.ID != d.Terms.ID(m.cfg.Domain) {
			return fmt.Errorf("agreement: restore deal %s: id does not match its terms", d.ID.Hex())
		}
		if d.Role == RoleProvider && d.Terms.Provider != m.self || d.Role == RoleRequester && d.Terms.Requester != m.self {
			return fmt.Errorf("%w: restore deal %s", ErrNotParty, d.ID.Hex())
		}
		if _, dup := loaded[d.ID]; dup {
			return fmt.Errorf("%w: restore deal %s twice", ErrDealExists, d.ID.Hex())
		}
		loaded[d.ID] = &d
	}
	for id, d := range loaded {
		m.deals[id] = d
		m.ids = append(m.ids, id)
	}
	slices.SortFunc(m.ids, func(a, b common.Hash) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range m.ids {
		if d := m.deals[id]; d.Serving {
			m.ready.Permissions = append(m.ready.Permissions, Permission{DealID: id, Role: d.Role, Peer: d.Peer(), Allow: true})
		}
	}
	return nil
}

// Resume tells the machine that the node came back at now after being
// away (a restart). The timers that wait on the counterparty then count
// from now at the earliest: a proposal's answer, funding, the provider's
// wait for the first voucher and for payment after a stall. A node that was
// down longer than a grace would otherwise end its deals at the first Tick,
// before the counterparty had a chance to reach it again. The reservation
// timeout is not extended: it protects the provider's capacity.
func (m *Machine) Resume(now time.Time) {
	if t := unix(now); t > m.resumed {
		m.resumed = t
	}
}

// Deal returns a copy of the deal with id.
func (m *Machine) Deal(id common.Hash) (Deal, bool) {
	d, ok := m.deals[id]
	if !ok {
		return Deal{}, false
	}
	return d.Clone(), true
}

// Deals returns copies of all deals, by id.
func (m *Machine) Deals() []Deal {
	out := make([]Deal, 0, len(m.ids))
	for _, id := range m.ids {
		out = append(out, m.deals[id].Clone())
	}
	return out
}

// Available is how many IPs of the provider's offer series pool are
// neither reserved nor in use.
func (m *Machine) Available(pool uint64) uint32 {
	c := m.capacity[pool]
	for _, id := range m.ids {
		d := m.deals[id]
		if d.Reserved && d.Pool == pool {
			if d.Terms.IPs >= c {
				return 0
			}
			c -= d.Terms.IPs
		}
	}
	return c
}

// HasReady reports whether there is output not yet handed out by Ready.
func (m *Machine) HasReady() bool { return !m.ready.Empty() }

// Ready hands out what the node must do: everything produced since the
// previous Ready. What it returns is in flight and belongs to the caller;
// Steps taken before the matching Advance produce the next Ready, never
// lost and never merged into the one handed out (raft's acceptReady).
func (m *Machine) Ready() Ready {
	r := m.ready
	m.ready = Ready{}
	clear(m.dirty)
	return r
}

// Advance acknowledges the last Ready: its deals are persisted and its
// actions taken (or handed to whoever takes them). Output of Steps taken
// since that Ready stays for the next one. The machine keeps nothing for
// a Ready once handed out, so Advance has no state to clear; it marks the
// end of the node's procedure and stays for callers that pair the two.
func (m *Machine) Advance() {}

func unix(t time.Time) uint64 {
	if t.Unix() < 0 {
		return 0
	}
	return uint64(t.Unix())
}

// step is one atomic transition: it works on a copy of the deal and its
// outputs are appended to the machine only if it succeeds.
type step struct {
	m       *Machine
	now     uint64
	event   string
	detail  string // for the history entry
	d       *Deal
	isNew   bool
	from    Status
	fromAll Status
	persist bool
	out     Ready
	hist    []Entry
}

func (m *Machine) begin(now uint64, event string, d *Deal) *step {
	if now < m.now {
		now = m.now
	}
	s := &step{m: m, now: now, event: event}
	if d != nil {
		c := d.Clone()
		s.d = &c
		s.from, s.fromAll = c.Local(), c.Status()
	}
	return s
}

func (m *Machine) commit(s *step) {
	m.now = s.now
	if d := s.d; d != nil {
		if d.Local() != s.from || d.Status() != s.fromAll || s.isNew || s.detail != "" {
			s.hist = append(s.hist, Entry{At: s.now, Event: s.event, From: s.from, To: d.Local(), Status: d.Status(), Reason: d.Reason, Detail: s.detail})
		}
		if s.isNew {
			i, _ := slices.BinarySearchFunc(m.ids, d.ID, func(a, b common.Hash) int { return bytes.Compare(a[:], b[:]) })
			m.ids = slices.Insert(m.ids, i, d.ID)
		}
		m.deals[d.ID] = d
		if s.persist || len(s.hist) > 0 || !s.out.Empty() {
			if i, ok := m.dirty[d.ID]; ok {
				m.ready.Deals[i].Deal = d.Clone()
				m.ready.Deals[i].History = append(m.ready.Deals[i].History, s.hist...)
			} else {
				m.dirty[d.ID] = len(m.ready.Deals)
				m.ready.Deals = append(m.ready.Deals, Update{Deal: d.Clone(), History: s.hist})
			}
		}
	}
	m.ready.Messages = append(m.ready.Messages, s.out.Messages...)
	m.ready.Txs = append(m.ready.Txs, s.out.Txs...)
	m.ready.Reservations = append(m.ready.Reservations, s.out.Reservations...)
	m.ready.Permissions = append(m.ready.Permissions, s.out.Permissions...)
	m.ready.Retries = append(m.ready.Retries, s.out.Retries...)
}

// ---- outputs ----

func (s *step) send(msg Message) {
	s.out.Messages = append(s.out.Messages, Envelope{To: s.d.Peer(), Msg: msg})
}

func (s *step) submit(k TxKind, tx Tx) {
	tx.Kind, tx.DealID, tx.Terms = k, s.d.ID, cloneTerms(s.d.Terms)
	s.out.Txs = append(s.out.Txs, tx)
	if s.d.Pending != k {
		s.d.TxAttempts, s.d.TxError = 0, ""
	}
	s.d.Pending, s.d.RetryAt = k, s.now+s.m.txBackoff(s.d.TxAttempts)
}

// txBackoff is the wait before a transaction that failed attempts times
// is submitted again: TxRetry, doubling, at most 8 TxRetry.
func (m *Machine) txBackoff(attempts uint32) uint64 {
	b := secs(m.cfg.TxRetry)
	for i := uint32(1); i < attempts && b < 8*secs(m.cfg.TxRetry); i++ {
		b *= 2
	}
	return min(b, 8*secs(m.cfg.TxRetry))
}

func (s *step) reserve() {
	d := s.d
	d.Reserved = true
	s.out.Reservations = append(s.out.Reservations, Reservation{DealID: d.ID, OfferID: d.Terms.OfferID, Pool: d.Pool, IPs: d.Terms.IPs, Take: true})
}

func (s *step) release() {
	d := s.d
	if !d.Reserved {
		return
	}
	d.Reserved = false
	s.out.Reservations = append(s.out.Reservations, Reservation{DealID: d.ID, OfferID: d.Terms.OfferID, Pool: d.Pool, IPs: d.Terms.IPs})
}

func (s *step) grant() {
	d := s.d
	if d.Serving {
		return
	}
	d.Serving = true
	s.out.Permissions = append(s.out.Permissions, Permission{DealID: d.ID, Role: d.Role, Peer: d.Peer(), Allow: true})
}

func (s *step) revoke() {
	d := s.d
	if !d.Serving {
		return
	}
	d.Serving = false
	s.out.Permissions = append(s.out.Permissions, Permission{DealID: d.ID, Role: d.Role, Peer: d.Peer()})
}

func (s *step) retry(r Reason) {
	d := s.d
	s.out.Retries = append(s.out.Retries, Retry{DealID: d.ID, RequestID: d.Terms.RequestID, OfferID: d.Terms.OfferID, Reason: r})
}

func (s *step) sign(digest common.Hash) ([]byte, error) {
	sig, err := s.m.cfg.Signer.Sign(digest)
	if err != nil {
		return nil, fmt.Errorf("agreement: sign for deal %s: %w", s.d.ID.Hex(), err)
	}
	return sig, nil
}

func (s *step) cancelSig() ([]byte, error) { return s.sign(CancelDigest(s.m.cfg.Domain, s.d.ID)) }

// submitCancel submits the cooperative cancel once both signatures are at
// hand (the requester submits; its funds are the ones locked).
func (s *step) submitCancel() error {
	d := s.d
	if d.Role != RoleRequester || d.PeerCancelSig == nil || d.Pending != TxNone || d.Chain != StatusFunded {
		return nil
	}
	own, err := s.cancelSig()
	if err != nil {
		return err
	}
	s.submit(TxCancel, Tx{ProviderSig: bytes.Clone(d.PeerCancelSig), RequesterSig: own})
	return nil
}

func unexpected(d *Deal, event string) error {
	if d.Chain.Terminal() {
		return fmt.Errorf("%w: %s after the deal was %s", ErrDealOver, event, d.Chain)
	}
	return fmt.Errorf("%w: %s while %s is %s", ErrUnexpected, event, d.Role, d.Local())
}

// ---- Step ----

// Step applies one event. It returns an error naming why an event is
// refused (malformed, forged, from the wrong peer, not allowed in the
// deal's state, a voucher that breaks a rule); the machine is then exactly
// as before. Replays of chain events and crossing close messages are
// accepted as no-ops, so the node can replay from its cursors after a
// restart.
func (m *Machine) Step(ev Event) error {
	if ev == nil {
		return ErrUnknownEvent
	}
	now := unix(ev.at())
	switch e := ev.(type) {
	case Propose:
		return m.propose(now, e)
	case SetOffer:
		return m.setOffer(now, e)
	case RemoveOffer:
		if _, ok := m.offers[e.ID]; !ok {
			return fmt.Errorf("%w: %s", ErrUnknownOffer, e.ID.Hex())
		}
		delete(m.offers, e.ID)
		return nil
	case Receive:
		if e.Msg == nil {
			return fmt.Errorf("%w: no message", ErrMalformed)
		}
		if p, ok := e.Msg.(*Proposal); ok {
			return m.receiveProposal(now, e.From, p)
		}
	}
	id, err := dealOf(ev)
	if err != nil {
		return err
	}
	d, ok := m.deals[id]
	if !ok {
		if r, ok := ev.(Receive); ok {
			if _, ok := r.Msg.(*SignedVoucher); ok {
				return fmt.Errorf("%w: %w %s", ErrVoucherDeal, ErrUnknownDeal, id.Hex())
			}
		}
		return fmt.Errorf("%w: %s", ErrUnknownDeal, id.Hex())
	}
	s := m.begin(now, ev.name(), d)
	if err := s.apply(ev); err != nil {
		return err
	}
	m.commit(s)
	return nil
}

func dealOf(ev Event) (common.Hash, error) {
	switch e := ev.(type) {
	case CloseDeal:
		return e.DealID, nil
	case Opened:
		return e.DealID, nil
	case Settled:
		return e.DealID, nil
	case Refunded:
		return e.DealID, nil
	case Cancelled:
		return e.DealID, nil
	case TxFailed:
		return e.DealID, nil
	case Usage:
		return e.DealID, nil
	case Unwound:
		return e.DealID, nil
	case Receive:
		switch msg := e.Msg.(type) {
		case *Accept:
			return msg.DealID, nil
		case *Reject:
			return msg.DealID, nil
		case *SignedVoucher:
			return msg.Voucher.DealID, nil
		case *Close:
			return msg.DealID, nil
		}
		return common.Hash{}, fmt.Errorf("%w: message %T", ErrUnknownEvent, e.Msg)
	}
	return common.Hash{}, fmt.Errorf("%w: %T", ErrUnknownEvent, ev)
}

func (s *step) apply(ev Event) error {
	d := s.d
	switch e := ev.(type) {
	case CloseDeal:
		return s.closeCmd()
	case Opened:
		if e.MaxAmount != nil && e.MaxAmount.Cmp(d.Terms.MaxAmount) != 0 {
			return fmt.Errorf("%w: opened with %s, terms say %s", ErrAmountMismatch, e.MaxAmount, d.Terms.MaxAmount)
		}
		return s.opened()
	case Settled:
		if e.Amount == nil || e.Amount.Sign() < 0 || e.Amount.Cmp(d.Terms.MaxAmount) > 0 {
			return fmt.Errorf("%w: settled %v, max %s", ErrAmountMismatch, e.Amount, d.Terms.MaxAmount)
		}
		return s.chainEnd(StatusSettled, func() {
			d.SettledAmount = new(big.Int).Set(e.Amount)
			d.Commission = cloneBig(e.Commission)
		})
	case Refunded:
		if e.Amount != nil && e.Amount.Cmp(d.Terms.MaxAmount) != 0 {
			return fmt.Errorf("%w: refunded %s, max %s", ErrAmountMismatch, e.Amount, d.Terms.MaxAmount)
		}
		return s.chainEnd(StatusRefunded, func() { d.RefundAmount = cloneBig(d.Terms.MaxAmount) })
	case Cancelled:
		return s.chainEnd(StatusCancelled, func() {})
	case TxFailed:
		return s.txFailed(e)
	case Usage:
		return s.usage(e)
	case Unwound:
		return s.unwound(e)
	case Receive:
		if e.From != d.Peer() {
			return fmt.Errorf("%w: %s from %s, counterparty is %s", ErrWrongPeer, e.Msg.Type(), e.From.Hex(), d.Peer().Hex())
		}
		switch msg := e.Msg.(type) {
		case *Accept:
			return s.accept(msg, e.RequestOpen)
		case *Reject:
			return s.reject(msg)
		case *SignedVoucher:
			return s.voucher(msg)
		case *Close:
			return s.closeMsg(msg)
		}
	}
	return fmt.Errorf("%w: %T", ErrUnknownEvent, ev)
}

// ---- local commands ----

func (m *Machine) propose(now uint64, e Propose) error {
	t := cloneTerms(e.Terms)
	if now < m.now {
		now = m.now
	}
	switch {
	case t.Requester != m.self:
		return fmt.Errorf("%w: requester %s is not %s", ErrNotParty, t.Requester.Hex(), m.self.Hex())
	case t.Provider == m.self:
		return fmt.Errorf("%w: a deal with oneself", ErrNotParty)
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if t.IPs == 0 {
		return fmt.Errorf("%w: zero IPs", ErrInvalidTerms)
	}
	if t.Deadline <= now || satAdd(t.Start, secs(m.cfg.MaxClockSkew)) < now {
		return fmt.Errorf("%w: start %d, deadline %d, now %d", ErrProposalTooLate, t.Start, t.Deadline, now)
	}
	id := t.ID(m.cfg.Domain)
	if _, ok := m.deals[id]; ok {
		return fmt.Errorf("%w: %s", ErrDealExists, id.Hex())
	}
	s := m.begin(now, "propose", nil)
	s.d, s.isNew = &Deal{ID: id, Role: RoleRequester, Terms: t, Requester: StatusProposed, ProposedAt: now}, true
	sig, err := s.sign(id)
	if err != nil {
		return err
	}
	s.d.RequesterSig = sig
	s.send(&Proposal{Terms: cloneTerms(t), RequesterSig: bytes.Clone(sig)})
	m.commit(s)
	return nil
}

func (m *Machine) setOffer(now uint64, e SetOffer) error {
	o := e.Offer
	if o == nil || o.Kind != orderbook.KindOffer || o.Maker != m.self || o.PricePerHour == nil || o.PricePerGB == nil {
		return fmt.Errorf("%w: %s", ErrUnknownOffer, e.ID.Hex())
	}
	m.offers[e.ID] = offerEntry{pool: o.Nonce, pricePerH: cloneBig(o.PricePerHour), pricePerGB: cloneBig(o.PricePerGB),
		minDur: o.MinDuration, maxDur: o.MaxDuration, expires: o.Expires}
	m.capacity[o.Nonce] = e.Capacity
	if now > m.now {
		m.now = now
	}
	return nil
}

func (s *step) closeCmd() error {
	d := s.d
	switch local := d.Local(); {
	case local == StatusCompleted:
		return nil
	case local.Terminal() || d.Chain.Terminal():
		return fmt.Errorf("%w: close while %s", ErrDealOver, local)
	case local == StatusProposed || local == StatusAccepted:
		d.setLocal(StatusCancelled)
		d.Reason, d.Pending = ReasonClosed, TxNone
		s.release()
		s.send(&Close{DealID: d.ID, Reason: ReasonClosed})
		return nil
	case local == StatusFunded:
		return s.endUnserved(ReasonClosed)
	case local == StatusActive:
		if d.Role == RoleProvider {
			return s.providerEnd(ReasonClosed)
		}
		d.setLocal(StatusCompleted)
		d.Reason, d.EndedAt = ReasonClosed, s.now
		s.revoke()
		s.send(&Close{DealID: d.ID, Reason: ReasonClosed})
		return nil
	}
	return unexpected(d, "close")
}

// endUnserved ends a funded deal on which no service was rendered: the
// local side offers a cooperative cancel (its Cancel signature in Close),
// and the requester submits the cancel once it holds both.
func (s *step) endUnserved(r Reason) error {
	d := s.d
	sig, err := s.cancelSig()
	if err != nil {
		return err
	}
	d.setLocal(StatusCompleted)
	d.Reason, d.EndedAt = r, s.now
	s.release()
	s.revoke()
	s.send(&Close{DealID: d.ID, Reason: r, CancelSig: sig})
	return s.submitCancel()
}

// providerEnd ends the service on the provider: stop forwarding, free the
// capacity, tell the requester, settle with the latest voucher.
func (s *step) providerEnd(r Reason) error {
	d := s.d
	if d.Voucher == nil || d.Voucher.Voucher.Amount.Sign() == 0 {
		return s.endUnserved(r)
	}
	d.setLocal(StatusCompleted)
	d.Reason, d.EndedAt = r, s.now
	s.revoke()
	s.release()
	s.send(&Close{DealID: d.ID, Reason: r})
	s.submit(TxSettle, Tx{Voucher: d.Voucher.Clone()})
	return nil
}

// ---- messages ----

func (m *Machine) receiveProposal(now uint64, from common.Address, p *Proposal) error {
	t := cloneTerms(p.Terms)
	switch {
	case from != t.Requester:
		return fmt.Errorf("%w: proposal from %s for requester %s", ErrWrongPeer, from.Hex(), t.Requester.Hex())
	case t.Provider != m.self || t.Requester == m.self:
		return fmt.Errorf("%w: proposal to provider %s", ErrNotParty, t.Provider.Hex())
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if t.IPs == 0 {
		return fmt.Errorf("%w: zero IPs", ErrInvalidTerms)
	}
	id := t.ID(m.cfg.Domain)
	if err := Verify(id, p.RequesterSig, t.Requester); err != nil {
		return fmt.Errorf("proposal %s: requester signature: %w", id.Hex(), err)
	}
	if now < m.now {
		now = m.now
	}
	if d, ok := m.deals[id]; ok {
		// A re-sent proposal (the accept was lost) gets the same answer.
		if d.Role == RoleProvider && d.Provider == StatusAccepted {
			s := m.begin(now, "proposal received", d)
			s.send(&Accept{DealID: id, ProviderSig: bytes.Clone(d.ProviderSig)})
			m.commit(s)
			return nil
		}
		return fmt.Errorf("%w: %s", ErrDealExists, id.Hex())
	}
	s := m.begin(now, "proposal received", nil)
	s.d = &Deal{ID: id, Role: RoleProvider, Terms: t, RequesterSig: bytes.Clone(p.RequesterSig), Requester: StatusProposed, ProposedAt: now}
	if r, detail := m.check(now, t); r != "" {
		// Rejections are not stored: a peer must not be able to fill the
		// provider's database with proposals it will never take.
		s.send(&Reject{DealID: id, Reason: r, Detail: detail})
		s.d = nil
		m.commit(s)
		return nil
	}
	sig, err := s.sign(id)
	if err != nil {
		return err
	}
	s.isNew = true
	d := s.d
	d.ProviderSig, d.Provider, d.AcceptedAt, d.Pool = sig, StatusAccepted, now, m.offers[t.OfferID].pool
	s.reserve()
	s.send(&Accept{DealID: id, ProviderSig: bytes.Clone(sig)})
	m.commit(s)
	return nil
}

// check is the provider's decision on a proposal: the offer is its own and
// live, the terms meet it, and the capacity is there.
func (m *Machine) check(now uint64, t Terms) (Reason, string) {
	o, ok := m.offers[t.OfferID]
	switch {
	case !ok || o.expires <= now:
		return ReasonUnknownOffer, "no live offer " + t.OfferID.Hex()
	case t.PricePerIPHour.Cmp(o.pricePerH) < 0 || t.PricePerGB.Cmp(o.pricePerGB) < 0:
		return ReasonPrice, fmt.Sprintf("asking %s per IP-hour and %s per GB", o.pricePerH, o.pricePerGB)
	case t.Duration() < uint64(o.minDur) || t.Duration() > uint64(o.maxDur):
		return ReasonDuration, fmt.Sprintf("duration %d s outside %d..%d", t.Duration(), o.minDur, o.maxDur)
	case satAdd(t.Start, secs(m.cfg.MaxClockSkew)) < now || t.Start > satAdd(now, secs(m.cfg.ReservationTimeout)):
		return ReasonStart, fmt.Sprintf("start %d too far from now %d", t.Start, now)
	case t.MaxAmount.Cmp(t.Cost(t.Duration(), 0)) < 0:
		return ReasonMaxAmount, fmt.Sprintf("max amount below the time cost %s", t.Cost(t.Duration(), 0))
	}
	if avail := m.Available(o.pool); avail < t.IPs {
		return ReasonNoCapacity, fmt.Sprintf("%d IPs available", avail)
	}
	return "", ""
}

func (s *step) accept(a *Accept, requestOpen bool) error {
	d := s.d
	if d.Role != RoleRequester {
		return fmt.Errorf("%w: accept sent to the provider", ErrWrongRole)
	}
	if err := Verify(d.ID, a.ProviderSig, d.Terms.Provider); err != nil {
		return fmt.Errorf("accept: provider signature: %w", err)
	}
	switch d.Requester {
	case StatusProposed:
		d.ProviderSig = bytes.Clone(a.ProviderSig)
		d.Requester, d.Provider, d.AcceptedAt = StatusAccepted, StatusAccepted, s.now
		s.submit(TxOpen, Tx{ProviderSig: bytes.Clone(d.ProviderSig), RequesterSig: bytes.Clone(d.RequesterSig)})
		return nil
	case StatusExpired, StatusCancelled:
		if d.Chain != StatusNone {
			break
		}
		if d.Requester == StatusExpired && d.Reason == ReasonTimeout && d.AcceptedAt == 0 &&
			requestOpen && s.now < d.Terms.Deadline && !s.m.requestBusy(d) {
			// The answer came after this side gave up waiting, but the
			// request still wants a deal: take it.
			d.ProviderSig = bytes.Clone(a.ProviderSig)
			d.Requester, d.Provider, d.AcceptedAt, d.Reason = StatusAccepted, StatusAccepted, s.now, ""
			s.detail = "late accept honoured"
			s.submit(TxOpen, Tx{ProviderSig: bytes.Clone(d.ProviderSig), RequesterSig: bytes.Clone(d.RequesterSig)})
			return nil
		}
		// Too late: tell the provider to release its reservation.
		d.Provider = StatusAccepted
		s.send(&Close{DealID: d.ID, Reason: d.Reason})
		return nil
	case StatusAccepted, StatusFunded, StatusActive:
		return nil // a duplicate
	}
	return unexpected(d, "accept")
}

// requestBusy reports whether a deal other than d serves, or is being
// negotiated for, d's request.
func (m *Machine) requestBusy(d *Deal) bool {
	for _, id := range m.ids {
		o := m.deals[id]
		if id == d.ID || o.Role != RoleRequester || o.Terms.RequestID != d.Terms.RequestID {
			continue
		}
		switch o.Status() {
		case StatusRejected, StatusExpired, StatusCancelled:
		default:
			return true
		}
	}
	return false
}

func (s *step) reject(r *Reject) error {
	d := s.d
	if d.Role != RoleRequester {
		return fmt.Errorf("%w: reject sent to the provider", ErrWrongRole)
	}
	if d.Requester != StatusProposed {
		return unexpected(d, "reject")
	}
	d.Requester, d.Provider, d.Reason, d.Detail = StatusRejected, StatusRejected, r.Reason, r.Detail
	s.retry(r.Reason)
	return nil
}

func (s *step) closeMsg(c *Close) error {
	d := s.d
	if c.CancelSig != nil {
		if err := Verify(CancelDigest(s.m.cfg.Domain, d.ID), c.CancelSig, d.Peer()); err != nil {
			return fmt.Errorf("close: cancel signature: %w", err)
		}
	}
	local := d.Local()
	if local.Terminal() || d.Chain.Terminal() {
		return nil // crossing closes
	}
	s.persist = true
	peerEnd := StatusCompleted
	if d.Chain == StatusNone {
		peerEnd = StatusCancelled
		if c.Reason == ReasonTimeout || c.Reason == ReasonNotFunded {
			peerEnd = StatusExpired
		}
	}
	switch local {
	case StatusProposed, StatusAccepted:
		d.setPeer(peerEnd)
		d.setLocal(peerEnd)
		d.Reason, d.Pending = c.Reason, TxNone
		s.release()
		if d.Role == RoleRequester {
			s.retry(c.Reason)
		}
		return nil
	case StatusFunded, StatusActive, StatusCompleted:
		d.setPeer(StatusCompleted)
		if c.CancelSig != nil {
			d.PeerCancelSig = bytes.Clone(c.CancelSig)
		}
		if local == StatusCompleted {
			return s.submitCancel()
		}
		if local == StatusFunded || d.Role == RoleProvider && (d.Voucher == nil || d.Voucher.Voucher.Amount.Sign() == 0) {
			return s.endUnserved(c.Reason)
		}
		if d.Role == RoleProvider {
			return s.providerEnd(c.Reason)
		}
		d.setLocal(StatusCompleted)
		d.Reason, d.EndedAt = c.Reason, s.now
		s.revoke()
		return s.submitCancel()
	}
	return unexpected(d, "close")
}

// ---- vouchers ----

func (s *step) voucher(sv *SignedVoucher) error {
	d := s.d
	if d.Role != RoleProvider {
		return fmt.Errorf("%w: voucher sent to the requester", ErrWrongRole)
	}
	switch d.Provider {
	case StatusAccepted, StatusFunded, StatusActive:
	case StatusCompleted:
		if !d.Chain.Terminal() {
			return nil // crossed the close; the settle is on its way
		}
		return unexpected(d, "voucher")
	default:
		return unexpected(d, "voucher")
	}
	if err := s.m.checkVoucher(d, sv, s.now); err != nil {
		return err
	}
	d.Voucher = sv.Clone()
	s.persist = true
	switch d.Provider {
	case StatusFunded:
		s.providerMaybeStart()
	case StatusActive:
		return s.providerCheck()
	}
	return nil
}

// checkVoucher is the provider's check of a voucher for d at now: signed by
// the requester, for this deal, cumulative amount and bytes not decreasing,
// within the max amount, and at most one interval ahead of the honest pay-
// ahead (so two intervals ahead of the provider's own meter, which absorbs
// the skew between the two sides' clocks and meters).
func (m *Machine) checkVoucher(d *Deal, sv *SignedVoucher, now uint64) error {
	v := sv.Voucher
	if err := v.Validate(); err != nil {
		return err
	}
	if v.DealID != d.ID {
		return fmt.Errorf("%w: voucher for %s, deal %s", ErrVoucherDeal, v.DealID.Hex(), d.ID.Hex())
	}
	if err := Verify(v.Digest(m.cfg.Domain), sv.Signature, d.Terms.Requester); err != nil {
		return fmt.Errorf("voucher: %w", err)
	}
	if d.Voucher != nil {
		prev := d.Voucher.Voucher
		if v.Amount.Cmp(prev.Amount) < 0 {
			return fmt.Errorf("%w: %s after %s", ErrVoucherDecreases, v.Amount, prev.Amount)
		}
		if v.Bytes < prev.Bytes {
			return fmt.Errorf("%w: %d after %d", ErrVoucherBytes, v.Bytes, prev.Bytes)
		}
	}
	if v.Amount.Cmp(d.Terms.MaxAmount) > 0 {
		return fmt.Errorf("%w: %s above %s", ErrVoucherAboveMax, v.Amount, d.Terms.MaxAmount)
	}
	if limit := m.aheadLimit(d, now); v.Amount.Cmp(limit) > 0 {
		return fmt.Errorf("%w: %s, at most %s", ErrVoucherTooFar, v.Amount, limit)
	}
	return nil
}

// aheadLimit is the most a voucher for d may pay at now. The time part
// counts from Terms.Start, the earliest the requester's service clock can
// start, not from this side's activation: a provider that was away when the
// deal was funded activates late, while the requester has been paying
// since it saw the funding.
func (m *Machine) aheadLimit(d *Deal, now uint64) *big.Int {
	var used uint64
	if end := min(now, d.Terms.Deadline); end > d.Terms.Start {
		used = end - d.Terms.Start
	}
	t := min(satAdd(used, 2*m.cfg.IntervalSeconds), d.Terms.Duration())
	return d.Terms.CappedCost(t, satAdd(d.Bytes, 2*m.cfg.IntervalBytes))
}

// elapsed is the service time on this side: from StartedAt to now, capped
// at the deadline.
func elapsed(d *Deal, now uint64) uint64 {
	end := min(now, d.Terms.Deadline)
	if d.StartedAt == 0 || end <= d.StartedAt {
		return 0
	}
	return end - d.StartedAt
}

// ---- chain ----

func (s *step) opened() error {
	d := s.d
	if d.Chain != StatusNone {
		return nil // replay
	}
	d.Chain, d.FundedAt = StatusFunded, s.now
	if d.Pending == TxOpen {
		d.Pending = TxNone
	}
	switch d.Local() {
	case StatusProposed, StatusAccepted:
		d.Provider, d.Requester = StatusFunded, StatusFunded
		if d.Role == RoleProvider {
			s.providerMaybeStart()
			return nil
		}
		return s.requesterMaybeStart()
	}
	// Funded after this side gave up (expired, closed, rejected): offer a
	// cooperative cancel so the requester's funds come back at once.
	d.setPeer(StatusFunded)
	if d.Reason == "" {
		d.Reason = ReasonNotFunded
	}
	return s.endUnserved(ReasonNotFunded)
}

func (s *step) chainEnd(st Status, set func()) error {
	d := s.d
	if d.Chain == st {
		return nil // replay
	}
	if d.Chain.Terminal() {
		return fmt.Errorf("%w: %s after the deal was %s", ErrDealOver, st, d.Chain)
	}
	set()
	d.Chain, d.Provider, d.Requester, d.Pending = st, st, st, TxNone
	if d.EndedAt == 0 {
		d.EndedAt = s.now
	}
	s.revoke()
	s.release()
	return nil
}

func (s *step) txFailed(e TxFailed) error {
	d := s.d
	if e.Kind == TxNone || d.Pending != e.Kind {
		return fmt.Errorf("%w: %s failed, pending is %s", ErrUnexpected, e.Kind, d.Pending)
	}
	s.persist = true
	d.TxAttempts++
	d.TxError = e.Err
	s.detail = e.Err
	if e.Final {
		s.detail = "final: " + e.Err
	}
	if e.Kind == TxOpen {
		if !e.Final && d.Requester == StatusAccepted && s.now < s.m.since(d.AcceptedAt)+secs(s.m.cfg.FundingTimeout) {
			d.RetryAt = s.now + s.m.txBackoff(d.TxAttempts)
			return nil
		}
		d.Pending = TxNone
		if d.Requester == StatusAccepted {
			d.Requester, d.Reason = StatusExpired, ReasonNotFunded
			s.send(&Close{DealID: d.ID, Reason: ReasonNotFunded})
			s.retry(ReasonNotFunded)
		}
		return nil
	}
	if e.Final {
		// Nothing more this side can do on chain; the counterparty's
		// transaction (a settle, or a refund after the grace) ends the deal.
		d.Pending = TxNone
		return nil
	}
	d.RetryAt = s.now + s.m.txBackoff(d.TxAttempts)
	return nil
}

// since is t, or the time the node came back if later (see Resume).
func (m *Machine) since(t uint64) uint64 { return max(t, m.resumed) }

// unwound undoes what a chain event removed by a reorg caused.
func (s *step) unwound(e Unwound) error {
	d := s.d
	s.persist = true
	switch e.Event.(type) {
	case Opened:
		if d.Chain != StatusFunded {
			return nil // not seen, or an end that is still on chain: nothing to undo here
		}
		d.Chain, d.FundedAt = StatusNone, 0
		s.revoke()
		switch d.Local() {
		case StatusFunded, StatusActive:
			d.Provider, d.Requester, d.AcceptedAt = StatusAccepted, StatusAccepted, s.now
			d.StalledAt = 0
		}
		if d.Role == RoleRequester && d.Pending == TxNone && d.ProviderSig != nil && !d.Local().Terminal() {
			// Resubmitted if the open is not mined again on its own.
			d.Pending, d.RetryAt, d.TxAttempts = TxOpen, s.now+secs(s.m.cfg.TxRetry), 0
		}
		return nil
	case Settled, Refunded, Cancelled:
		var was Status
		var kind TxKind
		switch e.Event.(type) {
		case Settled:
			was, kind = StatusSettled, TxSettle
		case Refunded:
			was, kind = StatusRefunded, TxRefund
		default:
			was, kind = StatusCancelled, TxCancel
		}
		if d.Chain != was {
			return nil
		}
		d.Chain, d.Provider, d.Requester = StatusFunded, StatusCompleted, StatusCompleted
		d.SettledAmount, d.Commission, d.RefundAmount = nil, nil, nil
		mine := kind == TxSettle && d.Role == RoleProvider || kind != TxSettle && d.Role == RoleRequester
		if mine {
			// Resubmitted at the next tick (a reorged transaction may also
			// be mined again by itself; a second one then reverts harmlessly).
			d.Pending, d.RetryAt, d.TxAttempts = kind, s.now, 0
		} else {
			d.Pending = TxNone
		}
		return nil
	}
	return fmt.Errorf("%w: unwound %T", ErrUnknownEvent, e.Event)
}

// ---- metering ----

func (s *step) usage(u Usage) error {
	d := s.d
	if u.Bytes < d.Bytes {
		return fmt.Errorf("%w: %d after %d", ErrUsageDecreases, u.Bytes, d.Bytes)
	}
	switch d.Local() {
	case StatusActive, StatusCompleted:
	default:
		return unexpected(d, "usage")
	}
	if u.Bytes != d.Bytes || u.ConnLogHash != d.ConnLogHash || u.ConnLogLen != d.ConnLogLen {
		// Metered usage is what vouchers pay for: it survives a restart.
		s.persist = true
	}
	d.Bytes, d.ConnLogHash, d.ConnLogLen = u.Bytes, u.ConnLogHash, u.ConnLogLen
	if d.Local() == StatusCompleted {
		return nil
	}
	if d.Role == RoleProvider {
		return s.providerCheck()
	}
	return s.requesterRenew()
}

// ---- timers ----

// Tick advances the machine's clock to now and fires what is due: timeouts
// of proposals, reservations and funding, the start and end of service,
// voucher renewals, the paid-ahead check, refunds and transaction retries.
// Deals are visited in id order. A deal whose transition fails (a signer
// error) is left as it was and its error returned, joined with others; the
// other deals still advance.
func (m *Machine) Tick(now time.Time) error {
	t := unix(now)
	if t < m.now {
		return nil
	}
	m.now = t
	var errs []error
	for _, id := range m.ids {
		s := m.begin(t, "tick", m.deals[id])
		if err := s.tick(); err != nil {
			errs = append(errs, err)
			continue
		}
		m.commit(s)
	}
	return errors.Join(errs...)
}

func (s *step) tick() error {
	d, now, cfg := s.d, s.now, s.m.cfg
	if d.Local() == StatusCompleted && d.Chain == StatusNone && now >= satAdd(d.Terms.Deadline, secs(cfg.RefundGrace)) {
		// Served, but its opening vanished in a reorganisation and was not
		// mined again by the refund time: nothing is locked on chain and
		// nothing can be settled any more.
		d.setLocal(StatusExpired)
		d.Reason, d.Pending = ReasonNotFunded, TxNone
		s.detail = "the deal's opening was reorganised away and not mined again"
		return nil
	}
	if d.Role == RoleProvider {
		switch d.Provider {
		case StatusAccepted:
			if now >= d.AcceptedAt+secs(cfg.ReservationTimeout) {
				d.Provider, d.Reason = StatusExpired, ReasonTimeout
				s.release()
			}
		case StatusFunded:
			switch {
			case now >= d.Terms.Deadline:
				return s.providerEnd(ReasonDeadline)
			case d.Voucher == nil && now >= s.m.since(max(d.Terms.Start, d.FundedAt))+secs(cfg.PaymentGrace):
				return s.endUnserved(ReasonPaymentStalled)
			}
			s.providerMaybeStart()
		case StatusActive:
			return s.providerCheck()
		case StatusCompleted:
			s.retryTx()
		}
		return nil
	}
	switch d.Requester {
	case StatusProposed:
		if now >= s.m.since(d.ProposedAt)+secs(cfg.ProposalTimeout) {
			s.requesterGiveUp()
		}
	case StatusAccepted:
		if now >= s.m.since(d.AcceptedAt)+secs(cfg.FundingTimeout) {
			s.requesterGiveUp()
			return nil
		}
		s.retryTx()
	case StatusFunded:
		if now >= d.Terms.Deadline {
			d.Requester, d.Reason, d.EndedAt = StatusCompleted, ReasonDeadline, now
			return nil
		}
		return s.requesterMaybeStart()
	case StatusActive:
		return s.requesterRenew()
	case StatusCompleted:
		if d.Chain == StatusFunded && d.Pending == TxNone && now >= satAdd(d.Terms.Deadline, secs(cfg.RefundGrace)) {
			s.submit(TxRefund, Tx{})
			return nil
		}
		s.retryTx()
	}
	return nil
}

// requesterGiveUp ends a proposal no answer came for, or an accepted deal
// not funded in time. An unanswered proposal sends no close: a provider
// that did accept has its accept on the way (the node delivers deal
// messages until acknowledged), and that late accept is then honoured or
// answered with a close (see Receive.RequestOpen); a close sent now would
// make a late accept impossible to honour. Past accept, the provider is
// told, so that it frees its reservation.
func (s *step) requesterGiveUp() {
	d := s.d
	proposed := d.Requester == StatusProposed
	d.Requester, d.Reason, d.Pending = StatusExpired, ReasonTimeout, TxNone
	if !proposed {
		s.send(&Close{DealID: d.ID, Reason: ReasonTimeout})
	}
	s.retry(ReasonTimeout)
}

// retryTx resubmits a transaction that failed for a passing reason or
// was not seen on chain in time: an open while the deal waits for funding,
// a settle, refund or cancel of a funded deal.
func (s *step) retryTx() {
	d := s.d
	if d.Pending == TxNone || s.now < d.RetryAt {
		return
	}
	if d.Pending == TxOpen {
		// Accepted and waiting for funding, or served already and the open
		// vanished in a reorg: the provider needs it open to settle.
		if d.Chain != StatusNone || d.Requester != StatusAccepted && d.Requester != StatusCompleted {
			return
		}
	} else if d.Chain != StatusFunded {
		return
	}
	tx := Tx{}
	switch d.Pending {
	case TxOpen:
		tx.ProviderSig, tx.RequesterSig = bytes.Clone(d.ProviderSig), bytes.Clone(d.RequesterSig)
	case TxSettle:
		tx.Voucher = d.Voucher.Clone()
	case TxCancel:
		// Re-signing is deterministic; the peer's signature is kept.
		own, err := s.cancelSig()
		if err != nil {
			return
		}
		tx.ProviderSig, tx.RequesterSig = bytes.Clone(d.PeerCancelSig), own
	}
	s.submit(d.Pending, tx)
	s.persist = true
}

// ---- provider service ----

func (s *step) providerMaybeStart() {
	d := s.d
	if d.Voucher == nil || d.Voucher.Voucher.Amount.Sign() == 0 || s.now < d.Terms.Start || s.now >= d.Terms.Deadline {
		return
	}
	d.Provider, d.Requester, d.StartedAt = StatusActive, StatusActive, s.now
	s.grant()
}

// providerCheck compares what was served with what was paid: it stops
// forwarding when the paid-ahead amount is used up, resumes when a voucher
// covers more, and ends the deal at the deadline, when the max amount is
// spent, or when no voucher came within PaymentGrace of running out.
func (s *step) providerCheck() error {
	d, now := s.d, s.now
	if now >= d.Terms.Deadline {
		return s.providerEnd(ReasonDeadline)
	}
	used := d.Terms.CappedCost(elapsed(d, now), d.Bytes)
	paid := d.Paid()
	if used.Cmp(d.Terms.MaxAmount) >= 0 {
		return s.providerEnd(ReasonBudgetSpent)
	}
	if used.Cmp(paid) < 0 {
		if !d.Serving {
			d.StalledAt = 0
			s.grant()
		}
		return nil
	}
	if d.Serving {
		d.StalledAt = now
		s.revoke()
		return nil
	}
	if now >= s.m.since(d.StalledAt)+secs(s.m.cfg.PaymentGrace) {
		return s.providerEnd(ReasonPaymentStalled)
	}
	return nil
}

// ---- requester payment ----

func (s *step) requesterMaybeStart() error {
	d := s.d
	if s.now < d.Terms.Start {
		return nil
	}
	d.StartedAt = s.now
	if err := s.pay(0); err != nil {
		return err
	}
	d.Requester, d.Provider = StatusActive, StatusActive
	s.grant()
	return nil
}

// requesterRenew pays the next interval ahead once half of the current one
// is used, in time or in bytes, whichever comes first.
// At the deadline it stops routing instead.
func (s *step) requesterRenew() error {
	d, cfg := s.d, s.m.cfg
	if s.now >= d.Terms.Deadline {
		d.Requester, d.Reason, d.EndedAt = StatusCompleted, ReasonDeadline, s.now
		s.revoke()
		return nil
	}
	used := elapsed(d, s.now)
	if used < d.PaidSecs+max(cfg.IntervalSeconds/2, 1) && d.Bytes < satAdd(d.PaidBytes, max(cfg.IntervalBytes/2, 1)) {
		return nil
	}
	return s.pay(used)
}

// pay signs and sends a voucher for what was used (used seconds, d.Bytes)
// plus one interval: CappedCost(min(used+IntervalSeconds, service window),
// d.Bytes+IntervalBytes). Nothing is sent if that is not more than the last.
func (s *step) pay(used uint64) error {
	d, cfg := s.d, s.m.cfg
	window := uint64(0)
	if d.Terms.Deadline > d.StartedAt {
		window = d.Terms.Deadline - d.StartedAt
	}
	amount := d.Terms.CappedCost(min(satAdd(used, cfg.IntervalSeconds), window), satAdd(d.Bytes, cfg.IntervalBytes))
	d.PaidSecs, d.PaidBytes = used, d.Bytes
	s.persist = true
	if d.Voucher != nil && amount.Cmp(d.Voucher.Voucher.Amount) <= 0 {
		return nil
	}
	v := Voucher{DealID: d.ID, Amount: amount, Bytes: d.Bytes, ConnLogHash: d.ConnLogHash}
	sig, err := s.sign(v.Digest(cfg.Domain))
	if err != nil {
		return err
	}
	d.Voucher = &SignedVoucher{Voucher: v, Signature: sig}
	s.send(d.Voucher.Clone())
	return nil
}
