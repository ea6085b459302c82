package deals

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/internal/crash"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"
)

// core is the driver's synchronous part: it owns the machine and the
// records, and turns each input into saved records and effects. It does no
// network or chain I/O and starts no goroutine; its clock is the time each
// input carries. Only the driver's loop (or a test) calls it.
type core struct {
	cfg    Config
	dom    agreement.Domain
	self   common.Address
	m      *agreement.Machine
	store  Store
	offers Offers
	hooks  Hooks
	log    *slog.Logger
	// chainTime is the latest block time the watcher saw.
	chainTime func() uint64
	nonce     func() uint64

	recs     map[common.Hash]*Record
	capacity map[uint64]uint32
	peers    map[common.Address]*peerState
	tried    map[common.Hash]map[seriesKey]*series // own request → offer series → attempts

	// Set while one input is handled.
	now      time.Time
	dirty    map[common.Hash]bool
	changed  map[common.Hash]bool
	newRecv  map[common.Hash]uint64 // a proposal's seq, for the record its accept creates
	newPeer  map[common.Hash]Peer
	newOffer map[common.Hash]*orderbook.Order
	rejects  map[common.Address][]agreement.Sequenced
	unknown  map[common.Address][]agreement.Ack
	eff      effects
}

// peerState is the outbox scheduling of one counterparty (not persisted:
// after a restart everything is due at once).
type peerState struct {
	inflight bool
	next     time.Time
	backoff  time.Duration
	owe      map[common.Hash]bool // deals whose messages from the peer want an ack
	sync     bool                 // a sync packet is wanted
}

// Send is one exchange to start.
type Send struct {
	To     common.Address
	Hint   Peer
	Packet agreement.Packet
}

// effects are what an input asks the driver to do, once the records are
// saved.
type effects struct {
	sends        []Send
	txs          []agreement.Tx
	perms        []agreement.Permission
	reservations []agreement.Reservation
	updated      []Record
	pollChain    bool // an event is likely on chain: the watcher looks now
}

func (e *effects) empty() bool {
	return len(e.sends) == 0 && len(e.txs) == 0 && len(e.perms) == 0 && len(e.reservations) == 0 && len(e.updated) == 0 && !e.pollChain
}

// seriesKey names an offer across its versions (a provider republishes its
// offer as its capacity changes).
type seriesKey struct {
	maker common.Address
	nonce uint64
}

// series is what the proposer remembers of one offer series for one
// request.
type series struct {
	attempts int
	fails    int
	retryAt  time.Time
}

func newCore(cfg Config, m *agreement.Machine, store Store, offers Offers, hooks Hooks, log *slog.Logger) *core {
	return &core{
		cfg: cfg, dom: cfg.Machine.Domain, self: cfg.Machine.Signer.Address(), m: m,
		store: store, offers: offers, hooks: hooks, log: log,
		chainTime: func() uint64 { return 0 },
		nonce:     randomNonce,
		recs:      map[common.Hash]*Record{}, capacity: map[uint64]uint32{},
		peers: map[common.Address]*peerState{}, tried: map[common.Hash]map[seriesKey]*series{},
		dirty: map[common.Hash]bool{}, changed: map[common.Hash]bool{},
		newRecv: map[common.Hash]uint64{}, newPeer: map[common.Hash]Peer{}, newOffer: map[common.Hash]*orderbook.Order{},
		rejects: map[common.Address][]agreement.Sequenced{}, unknown: map[common.Address][]agreement.Ack{},
	}
}

func randomNonce() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// restore loads the records into the machine after a start at now. Every
// counterparty of an open deal gets a sync packet.
func (c *core) restore(now time.Time) error {
	recs, err := c.store.LoadDeals()
	if err != nil {
		return fmt.Errorf("deals: load records: %w", err)
	}
	deals := make([]agreement.Deal, 0, len(recs))
	for i := range recs {
		r := recs[i]
		for j := range r.Out {
			if _, err := r.Out[j].message(); err != nil {
				return fmt.Errorf("deals: record %s: %w", r.Deal.ID.Hex(), err)
			}
		}
		c.recs[r.Deal.ID] = &r
		deals = append(deals, r.Deal)
	}
	if err := c.m.Restore(deals); err != nil {
		return fmt.Errorf("deals: restore: %w", err)
	}
	c.m.Resume(now)
	if c.capacity, err = c.store.LoadCapacity(); err != nil {
		return fmt.Errorf("deals: load capacity: %w", err)
	}
	for _, r := range c.recs {
		if r.open() {
			c.peer(r.Deal.Peer()).sync = true
		}
	}
	return nil
}

func (c *core) peer(a common.Address) *peerState {
	ps, ok := c.peers[a]
	if !ok {
		ps = &peerState{owe: map[common.Hash]bool{}}
		c.peers[a] = ps
	}
	return ps
}

// begin starts an input at now.
func (c *core) begin(now time.Time) { c.now = now }

// takeEffects hands out the effects gathered since the last call.
func (c *core) takeEffects() effects {
	e := c.eff
	c.eff = effects{}
	return e
}

// ---- inputs ----

// receive handles a packet from a counterparty's stream and returns the
// answer to write back, after everything it caused is saved.
func (c *core) receive(now time.Time, from common.Address, hint Peer, p agreement.Packet) (agreement.Packet, error) {
	c.begin(now)
	c.log.Debug("deal packet in", "peer", from.Hex(), "msgs", msgKinds(p), "acks", len(p.Acks), "sync", p.Sync)
	named := c.applyAcks(from, p.Acks)
	for _, sm := range p.Msgs {
		if id := c.deliver(from, hint, sm); id != (common.Hash{}) {
			named = append(named, id)
		}
	}
	ps := c.peer(from)
	ps.backoff, ps.next = 0, now // it is up: what waits for it goes now
	if err := c.flush(); err != nil {
		return agreement.Packet{}, err
	}
	reply := c.packetFor(from, named, p.Sync)
	reply.Msgs = append(reply.Msgs, c.rejects[from]...)
	delete(c.rejects, from)
	if len(reply.Msgs) > 0 {
		// The answer carries them; they go again only if it is lost.
		ps.next = now.Add(c.cfg.ResendMin)
	}
	c.schedule()
	return reply, nil
}

// replied handles the outcome of an exchange this side started.
func (c *core) replied(now time.Time, to common.Address, sent, reply agreement.Packet, reached Peer, xerr error) error {
	c.begin(now)
	ps := c.peer(to)
	ps.inflight = false
	if xerr != nil {
		ps.backoff = min(max(2*ps.backoff, c.cfg.ResendMin), c.cfg.ResendMax)
		ps.next = now.Add(ps.backoff)
		if sent.Sync {
			ps.sync = true
		}
		for _, a := range sent.Acks {
			if r := c.recs[a.DealID]; r != nil && r.Recv > 0 {
				ps.owe[a.DealID] = true
			}
		}
		c.log.Debug("deal exchange failed", "peer", to.Hex(), "backoff", ps.backoff, "err", xerr)
		c.schedule()
		return nil
	}
	ps.backoff = 0
	for _, a := range sent.Acks {
		if r := c.recs[a.DealID]; r != nil && reached.ID != "" {
			c.touch(a.DealID, r, reached)
		}
	}
	c.applyAcks(to, reply.Acks)
	for _, sm := range reply.Msgs {
		if id := c.deliver(to, reached, sm); id != (common.Hash{}) && sm.Seq > 0 {
			ps.owe[id] = true
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	// What the exchange carried and is still unacknowledged (a gap on the
	// other side) goes again after a short wait.
	var top uint64
	for _, sm := range sent.Msgs {
		top = max(top, sm.Seq)
	}
	for _, sm := range sent.Msgs {
		if r := c.recs[agreement.DealOf(sm.Msg, c.dom)]; r != nil && len(r.Out) > 0 && r.Out[0].Seq <= top {
			ps.next = now.Add(c.cfg.ResendMin)
			break
		}
	}
	c.schedule()
	return nil
}

// tick fires the machine's timers.
func (c *core) tick(now time.Time) error {
	c.begin(now)
	if err := c.m.Tick(now); err != nil {
		c.log.Warn("deal tick", "err", err)
	}
	if err := c.flush(); err != nil {
		return err
	}
	c.schedule()
	return nil
}

// startDue is the earliest start, after now, of a funded deal: the machine
// starts the service then, and the loop ticks at that moment instead of
// waiting for its next tick. Zero if no funded deal waits for its start.
func (c *core) startDue(now time.Time) time.Time {
	var due time.Time
	for _, r := range c.recs {
		d := &r.Deal
		if d.Local() != agreement.StatusFunded || d.Terms.Start <= uint64(now.Unix()) {
			continue
		}
		if at := time.Unix(int64(d.Terms.Start), 0); due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return due
}

// txDone handles a transaction's outcome.
func (c *core) txDone(now time.Time, tx agreement.Tx, err error, outcome TxOutcome) error {
	c.begin(now)
	if err == nil {
		c.log.Info("escrow transaction mined", "deal", tx.DealID.Hex(), "tx", tx.Kind)
		c.eff.pollChain = true // the chain watcher brings the event
		return nil
	}
	if outcome == TxOnChain {
		c.log.Info("escrow transaction not needed: the outcome is on chain", "deal", tx.DealID.Hex(), "tx", tx.Kind, "err", err)
		c.eff.pollChain = true
		return nil
	}
	c.log.Warn("escrow transaction failed", "deal", tx.DealID.Hex(), "tx", tx.Kind, "final", outcome == TxFinal, "err", err)
	c.step(agreement.TxFailed{At: now, DealID: tx.DealID, Kind: tx.Kind, Err: err.Error(), Final: outcome == TxFinal})
	if err := c.flush(); err != nil {
		return err
	}
	c.schedule()
	return nil
}

// chainEvents steps unwound events (newest first, as the watcher gives
// them) and then confirmed ones, for the deals the machine knows.
func (c *core) chainEvents(now time.Time, unwound, evs []Event) error {
	c.begin(now)
	for _, e := range unwound {
		if _, ok := c.m.Deal(e.DealID); ok {
			c.log.Warn("chain reorganisation: event unwound", "deal", e.DealID.Hex(), "event", eventKind(e.Ev), "block", e.Block)
			c.step(agreement.Unwound{At: now, DealID: e.DealID, Event: e.Ev})
		}
	}
	for _, e := range evs {
		if _, ok := c.m.Deal(e.DealID); ok {
			crash.Point("deal.chain." + eventKind(e.Ev))
			c.log.Debug("deal event", "deal", e.DealID.Hex(), "event", eventKind(e.Ev), "block", e.Block)
			c.step(withTime(e.Ev, now))
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	c.schedule()
	return nil
}

func withTime(e agreement.Event, at time.Time) agreement.Event {
	switch e := e.(type) {
	case agreement.Opened:
		e.At = at
		return e
	case agreement.Settled:
		e.At = at
		return e
	case agreement.Refunded:
		e.At = at
		return e
	case agreement.Cancelled:
		e.At = at
		return e
	}
	return e
}

// command steps a local event (propose, close, usage, set offer) and
// returns the machine's verdict.
func (c *core) command(now time.Time, ev agreement.Event) error {
	c.begin(now)
	err := c.m.Step(ev)
	if ferr := c.flush(); ferr != nil {
		return ferr
	}
	c.schedule()
	return err
}

// peerConnected asks for a sync with a counterparty that has open deals.
func (c *core) peerConnected(now time.Time, a common.Address) {
	c.begin(now)
	for _, r := range c.recs {
		if r.Deal.Peer() == a && r.open() {
			ps := c.peer(a)
			ps.sync, ps.backoff, ps.next = true, 0, now
			break
		}
	}
	c.schedule()
}

// ---- receiving ----

// deliver processes one message from `from`; it returns the deal it names
// (zero if it is not this counterparty's).
func (c *core) deliver(from common.Address, hint Peer, sm agreement.Sequenced) common.Hash {
	id := agreement.DealOf(sm.Msg, c.dom)
	r := c.recs[id]
	if sm.Seq == 0 { // a reject of a proposal the provider did not store
		if r != nil && r.Deal.Peer() == from {
			c.step(agreement.Receive{At: c.now, From: from, Msg: sm.Msg})
		}
		return id
	}
	if r == nil {
		if _, ok := sm.Msg.(*agreement.Proposal); ok && sm.Seq == 1 {
			crash.Point("deal.received.proposal")
			c.newRecv[id], c.newPeer[id] = sm.Seq, hint
			c.step(agreement.Receive{At: c.now, From: from, Msg: sm.Msg})
			if _, stored := c.m.Deal(id); !stored {
				// Refused or rejected, and not stored: acknowledged, the
				// reject (if any) rides along unsequenced.
				c.unknown[from] = append(c.unknown[from], agreement.Ack{DealID: id, Seq: sm.Seq})
			}
			return id
		}
		// A deal this side never stored (a rejected proposal, a close after
		// it): acknowledged so that the sender stops.
		c.unknown[from] = append(c.unknown[from], agreement.Ack{DealID: id, Seq: sm.Seq})
		return common.Hash{}
	}
	if r.Deal.Peer() != from {
		c.log.Debug("deal message from a stranger", "deal", id.Hex(), "peer", from.Hex())
		return common.Hash{}
	}
	c.touch(id, r, hint)
	switch {
	case sm.Seq <= r.Recv: // a duplicate: acknowledged again
	case sm.Seq > r.Recv+1: // after a gap: waits for the gap to be filled
	default:
		crash.Point("deal.received." + sm.Msg.Type())
		r.Recv = sm.Seq
		c.dirty[id] = true
		if v, ok := sm.Msg.(*agreement.SignedVoucher); ok && r.Deal.Role == agreement.RoleProvider {
			if err := c.hooks.VoucherOK(id, v.Voucher.ConnLogHash); err != nil {
				// Processed (and acknowledged), but not taken: the deal
				// runs on the last voucher that was.
				c.log.Warn("voucher refused: its connection log is not this provider's", "deal", id.Hex(), "err", err)
				return id
			}
			c.refreshUsage(id, r)
		}
		open := r.Deal.Role == agreement.RoleRequester && c.offers.RequestOpen(r.Deal.Terms.RequestID)
		c.step(agreement.Receive{At: c.now, From: from, Msg: sm.Msg, RequestOpen: open})
		if d, ok := c.m.Deal(id); ok && d.Role == agreement.RoleProvider && d.Local() == agreement.StatusAccepted {
			// The requester speaks after an accept only once it funded
			// the deal: the Opened event is likely on chain already.
			c.eff.pollChain = true
		}
	}
	return id
}

// refreshUsage brings the provider's meter reading of a deal into the
// machine before a voucher is judged against it: a fast transfer would
// otherwise make honest vouchers look like they pay too far ahead.
func (c *core) refreshUsage(id common.Hash, r *Record) {
	u, ok := c.hooks.Usage(id)
	if ok && u.Bytes > r.Deal.Bytes {
		c.step(agreement.Usage{At: c.now, DealID: id, Bytes: u.Bytes, ConnLogHash: u.ConnLog, ConnLogLen: u.ConnLogLen})
	}
}

// touch records how the counterparty was reached.
func (c *core) touch(id common.Hash, r *Record, p Peer) {
	if p.ID == "" || (p.ID == r.Peer.ID && slices.Equal(p.Addrs, r.Peer.Addrs)) {
		return
	}
	if len(p.Addrs) == 0 && p.ID == r.Peer.ID {
		return // keep the addresses known
	}
	r.Peer = Peer{ID: p.ID, Addrs: append([]string(nil), p.Addrs...)}
	c.dirty[id] = true
}

// step applies an event; a refusal is logged, the machine unchanged.
func (c *core) step(ev agreement.Event) {
	if err := c.m.Step(ev); err != nil {
		c.log.Debug("deal event refused", "err", err)
	}
}

// applyAcks drops what the counterparty acknowledged from the outboxes and
// returns the deals named.
func (c *core) applyAcks(from common.Address, acks []agreement.Ack) []common.Hash {
	var named []common.Hash
	for _, a := range acks {
		r := c.recs[a.DealID]
		if r == nil || r.Deal.Peer() != from {
			continue
		}
		named = append(named, a.DealID)
		if a.Status != agreement.StatusNone && a.Status != r.PeerStatus {
			r.PeerStatus = a.Status
			c.dirty[a.DealID] = true
		}
		if a.Seq > r.Sent {
			c.log.Debug("ack beyond what was sent", "deal", a.DealID.Hex(), "seq", a.Seq, "sent", r.Sent)
			continue
		}
		n := 0
		for n < len(r.Out) && r.Out[n].Seq <= a.Seq {
			if v, ok := r.Out[n].msg.(*agreement.SignedVoucher); ok && (r.Acked == nil || v.Voucher.Amount.Cmp(r.Acked) > 0) {
				r.Acked = new(big.Int).Set(v.Voucher.Amount)
			}
			n++
		}
		if n == 0 {
			continue
		}
		r.Out = append([]Outgoing(nil), r.Out[n:]...)
		c.dirty[a.DealID] = true
		if err := c.sendPendingVoucher(r, false); err != nil {
			c.log.Error("queue voucher", "deal", a.DealID.Hex(), "err", err)
		}
	}
	return named
}

// ---- the Ready procedure ----

// flush moves the machine's Ready into the records and effects and saves
// every record changed, synced, before anything is acted on.
func (c *core) flush() error {
	for c.m.HasReady() {
		rd := c.m.Ready()
		for _, u := range rd.Deals {
			id := u.Deal.ID
			r := c.recs[id]
			if r == nil {
				r = &Record{Recv: c.newRecv[id], Peer: c.newPeer[id], Offer: c.newOffer[id]}
				c.recs[id] = r
			}
			if was, now := r.Deal.Status(), u.Deal.Status(); was != now {
				c.log.Debug("deal status", "deal", id.Hex(), "from", was, "to", now, "local", u.Deal.Local())
			}
			r.Deal = u.Deal
			r.History = append(r.History, u.History...)
			c.dirty[id], c.changed[id] = true, true
		}
		for _, env := range rd.Messages {
			id := agreement.DealOf(env.Msg, c.dom)
			r := c.recs[id]
			if r == nil {
				// A reject of a proposal the provider does not store: it
				// goes back unsequenced in the answer to the proposal.
				c.rejects[env.To] = append(c.rejects[env.To], agreement.Sequenced{Msg: env.Msg})
				continue
			}
			if err := c.enqueue(r, env.Msg); err != nil {
				return err
			}
		}
		c.eff.txs = append(c.eff.txs, rd.Txs...)
		c.eff.perms = append(c.eff.perms, rd.Permissions...)
		c.eff.reservations = append(c.eff.reservations, rd.Reservations...)
		for _, rt := range rd.Retries {
			c.seriesFailed(rt)
		}
		c.m.Advance()
	}
	c.withdraw()
	clear(c.newRecv)
	clear(c.newPeer)
	clear(c.newOffer)
	if len(c.dirty) == 0 {
		return nil
	}
	ids := make([]common.Hash, 0, len(c.dirty))
	for id := range c.dirty {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	recs := make([]*Record, len(ids))
	for i, id := range ids {
		recs[i] = c.recs[id]
		recs[i].Updated = c.now
	}
	if err := c.save(recs); err != nil {
		return err
	}
	for _, id := range ids {
		if c.changed[id] {
			r := c.recs[id]
			c.eff.updated = append(c.eff.updated, r.clone())
			crash.Point("deal.status." + r.Deal.Local().String())
		}
	}
	clear(c.dirty)
	clear(c.changed)
	return nil
}

// save writes records, trying again briefly: a deal state or voucher that
// cannot be saved stops the driver rather than being acted on.
func (c *core) save(recs []*Record) error {
	var err error
	for i, wait := range []time.Duration{0, 10 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		if wait > 0 {
			time.Sleep(wait) // the loop must not go on before the write holds
		}
		if err = c.store.SaveDeals(recs); err == nil {
			return nil
		}
		c.log.Warn("save deal records", "attempt", i+1, "err", err)
	}
	return fmt.Errorf("%w: %w", ErrStore, err)
}

// enqueue puts a message the machine emitted into its deal's outbox.
func (c *core) enqueue(r *Record, msg agreement.Message) error {
	if _, ok := msg.(*agreement.SignedVoucher); ok && r.Deal.Role == agreement.RoleRequester {
		// Cumulative: only the newest matters, and one in flight at a time.
		return c.sendPendingVoucher(r, false)
	}
	if r.Deal.Role == agreement.RoleRequester {
		// A voucher waiting behind the one in flight goes out ahead of
		// anything else (a close), so the provider settles with it.
		if err := c.sendPendingVoucher(r, true); err != nil {
			return err
		}
	}
	return c.push(r, msg)
}

// sendPendingVoucher queues the requester's newest voucher if it is newer
// than the last queued one and, unless force, no voucher is in flight.
func (c *core) sendPendingVoucher(r *Record, force bool) error {
	v := r.Deal.Voucher
	if r.Deal.Role != agreement.RoleRequester || v == nil || r.Deal.Chain.Terminal() {
		return nil
	}
	if r.Queued != nil && v.Voucher.Amount.Cmp(r.Queued) <= 0 {
		return nil
	}
	if !force {
		for i := range r.Out {
			if m, _ := r.Out[i].message(); m != nil && m.Type() == "voucher" {
				return nil
			}
		}
	}
	return c.push(r, v.Clone())
}

func (c *core) push(r *Record, msg agreement.Message) error {
	b, err := agreement.Encode(msg)
	if err != nil {
		return fmt.Errorf("deals: encode %s for deal %s: %w", msg.Type(), r.Deal.ID.Hex(), err)
	}
	r.Sent++
	r.Out = append(r.Out, Outgoing{Seq: r.Sent, Msg: b, msg: msg})
	if v, ok := msg.(*agreement.SignedVoucher); ok {
		r.Queued = new(big.Int).Set(v.Voucher.Amount)
	}
	c.dirty[r.Deal.ID] = true
	ps := c.peer(r.Deal.Peer())
	if ps.next.After(c.now) && ps.backoff == 0 {
		ps.next = c.now
	}
	return nil
}

// withdraw drops the proposal of a deal that was rejected (the provider
// stores nothing of it) or expired unanswered: nothing reached the
// provider, or its accept is on its way (and is then honoured or answered
// with a close).
func (c *core) withdraw() {
	for id := range c.changed {
		r := c.recs[id]
		d := &r.Deal
		unanswered := d.Requester == agreement.StatusExpired && d.Reason == agreement.ReasonTimeout && d.AcceptedAt == 0
		if d.Role != agreement.RoleRequester || !unanswered && d.Requester != agreement.StatusRejected {
			continue
		}
		out := r.Out[:0:0]
		for i := range r.Out {
			if m, _ := r.Out[i].message(); m != nil && m.Type() == "proposal" {
				continue
			}
			out = append(out, r.Out[i])
		}
		if len(out) != len(r.Out) {
			r.Out = out
			c.dirty[id] = true
		}
	}
}

// ---- sending ----

// packetFor builds the packet for `to`: acknowledgements and outboxes of
// the deals named, of every open deal with it when all is set, and any
// acknowledgements of deals this side does not know.
func (c *core) packetFor(to common.Address, named []common.Hash, all bool) agreement.Packet {
	seen := map[common.Hash]bool{}
	var ids []common.Hash
	add := func(id common.Hash) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, id := range named {
		add(id)
	}
	if all {
		for id, r := range c.recs {
			if r.Deal.Peer() == to && r.open() {
				add(id)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	p := agreement.Packet{Sync: all}
	for _, id := range ids {
		r := c.recs[id]
		if r == nil || r.Deal.Peer() != to {
			continue
		}
		if len(p.Acks) < agreement.MaxPacketAcks {
			p.Acks = append(p.Acks, agreement.Ack{DealID: id, Seq: r.Recv, Status: r.Deal.Local()})
		}
		for i := range r.Out {
			if len(p.Msgs) == agreement.MaxPacketMsgs {
				break
			}
			m, err := r.Out[i].message()
			if err != nil {
				continue
			}
			p.Msgs = append(p.Msgs, agreement.Sequenced{Seq: r.Out[i].Seq, Msg: m})
		}
	}
	for _, a := range c.unknown[to] {
		if len(p.Acks) < agreement.MaxPacketAcks {
			p.Acks = append(p.Acks, a)
		}
	}
	delete(c.unknown, to)
	return p
}

// schedule starts an exchange with each counterparty that has something
// due and none in flight.
func (c *core) schedule() {
	want := map[common.Address][]common.Hash{}
	for id, r := range c.recs {
		if len(r.Out) > 0 {
			want[r.Deal.Peer()] = append(want[r.Deal.Peer()], id)
		}
	}
	for a, ps := range c.peers {
		if len(ps.owe) > 0 || ps.sync {
			if _, ok := want[a]; !ok {
				want[a] = nil
			}
		}
	}
	addrs := make([]common.Address, 0, len(want))
	for a := range want {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return bytes.Compare(addrs[i][:], addrs[j][:]) < 0 })
	for _, a := range addrs {
		ps := c.peer(a)
		if ps.inflight || ps.next.After(c.now) {
			continue
		}
		named := want[a]
		for id := range ps.owe {
			named = append(named, id)
		}
		p := c.packetFor(a, named, ps.sync)
		if p.Empty() {
			continue
		}
		ps.inflight, ps.sync = true, false
		clear(ps.owe)
		c.eff.sends = append(c.eff.sends, Send{To: a, Hint: c.hint(a), Packet: p})
	}
}

// hint is the freshest known identity of a counterparty.
func (c *core) hint(a common.Address) Peer {
	var best Peer
	var at time.Time
	for _, r := range c.recs {
		if r.Deal.Peer() == a && r.Peer.ID != "" && !r.Updated.Before(at) {
			best, at = r.Peer, r.Updated
		}
	}
	return best
}

// ---- proposing ----

// requestBusy reports whether a deal serves, or is being negotiated for,
// an own request.
func (c *core) requestBusy(req common.Hash) bool {
	for _, r := range c.recs {
		d := &r.Deal
		if d.Role != agreement.RoleRequester || d.Terms.RequestID != req {
			continue
		}
		switch d.Status() {
		case agreement.StatusRejected, agreement.StatusExpired, agreement.StatusCancelled:
		default:
			return true
		}
	}
	return false
}

func (c *core) seriesOf(req common.Hash, k seriesKey) *series {
	m := c.tried[req]
	if m == nil {
		m = map[seriesKey]*series{}
		c.tried[req] = m
	}
	s := m[k]
	if s == nil {
		s = &series{}
		m[k] = s
	}
	return s
}

// blocked reports whether the proposer must not propose to a series now.
func (c *core) blocked(req common.Hash, k seriesKey, now time.Time) bool {
	s := c.tried[req][k]
	return s != nil && (s.attempts >= c.cfg.MaxSeriesAttempts || now.Before(s.retryAt))
}

// seriesFailed puts an offer series in backoff for a request after a
// proposal to it failed.
func (c *core) seriesFailed(rt agreement.Retry) {
	r := c.recs[rt.DealID]
	if r == nil || r.Offer == nil {
		return
	}
	s := c.seriesOf(rt.RequestID, seriesKey{r.Offer.Maker, r.Offer.Nonce})
	s.fails++
	wait := c.cfg.SeriesBackoff << min(s.fails-1, 6)
	s.retryAt = c.now.Add(wait)
	c.log.Info("proposal failed; the offer may be tried again later", "deal", rt.DealID.Hex(), "request", rt.RequestID.Hex(),
		"reason", rt.Reason, "attempts", s.attempts, "retry", wait)
}

// propose proposes a request to a fill, unless the request got busy or
// the series blocked meanwhile.
func (c *core) propose(now time.Time, req *orderbook.Order, f matching.Fill) error {
	c.begin(now)
	k := seriesKey{f.Offer.Maker, f.Offer.Nonce}
	if c.requestBusy(req.ID()) || c.blocked(req.ID(), k, now) {
		return nil
	}
	t := c.termsFor(f, req, now)
	id := t.ID(c.dom)
	c.newOffer[id] = f.Offer
	err := c.m.Step(agreement.Propose{At: now, Terms: t})
	if err == nil {
		c.seriesOf(req.ID(), k).attempts++
		c.log.Info("proposed a deal", "deal", id.Hex(), "request", req.ID().Hex(), "offer", f.OfferID.Hex(), "provider", f.Offer.Maker.Hex(), "ips", f.IPs)
	}
	if ferr := c.flush(); ferr != nil {
		return ferr
	}
	c.schedule()
	return err
}

// termsFor builds a deal from a match: the offer's prices, the request's
// duration from now, and a max amount of the whole time cost plus the
// traffic budget.
func (c *core) termsFor(f matching.Fill, r *orderbook.Order, now time.Time) agreement.Terms {
	// The escrow judges deadlines by block time; a chain running ahead of
	// this clock (a dev chain sealing fast) would refuse a deadline that is
	// still in the future here.
	start := max(uint64(now.Unix()), c.chainTime())
	t := agreement.Terms{
		OfferID: f.OfferID, RequestID: f.RequestID,
		Provider: f.Offer.Maker, Requester: c.self, IPs: f.IPs,
		PricePerIPHour: new(big.Int).Set(f.PricePerHour), PricePerGB: new(big.Int).Set(f.PricePerGB),
		Start: start, Deadline: start + uint64(r.Duration),
		Nonce: c.nonce(),
	}
	t.MaxAmount = t.Cost(t.Duration(), c.cfg.TrafficBudgetGB*1_000_000_000)
	if t.MaxAmount.Sign() == 0 {
		t.MaxAmount = big.NewInt(1)
	}
	return t
}

// ---- offers ----

// setOffer registers an own offer version; the series' total capacity is
// kept from its first version on.
func (c *core) setOffer(now time.Time, o *orderbook.Order) error {
	c.begin(now)
	cp, ok := c.capacity[o.Nonce]
	if !ok {
		cp = o.IPs
		if err := c.store.SaveCapacity(o.Nonce, cp); err != nil {
			return fmt.Errorf("deals: save capacity: %w", err)
		}
		c.capacity[o.Nonce] = cp
	}
	err := c.m.Step(agreement.SetOffer{At: now, ID: o.ID(), Offer: o, Capacity: cp})
	if ferr := c.flush(); ferr != nil {
		return ferr
	}
	return err
}

// msgKinds names the messages of a packet, for the debug log.
func msgKinds(p agreement.Packet) []string {
	ks := make([]string, len(p.Msgs))
	for i, sm := range p.Msgs {
		ks[i] = strings.TrimPrefix(fmt.Sprintf("%T", sm.Msg), "agreement.")
	}
	return ks
}
