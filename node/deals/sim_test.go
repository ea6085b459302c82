package deals

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"
)

// The simulation: a provider and a requester, each a core with an
// in-memory store that keeps only what was saved, a network that loses,
// duplicates, delays and reorders exchanges, a chain that mines with
// delays, fails transactions for passing reasons and reorganises, and
// nodes that crash and restart. Time is simulated; everything is
// deterministic for a seed.

var simDomain = agreement.Domain{ChainID: big.NewInt(1337), Escrow: common.HexToAddress("0xE5C0")}

func simKey(name string) agreement.KeySigner {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("ipsx-deals-sim-" + name)))
	if err != nil {
		panic(err)
	}
	return agreement.NewKeySigner(k)
}

func simConfig(s agreement.Signer) Config {
	mc := agreement.DefaultConfig(s, simDomain)
	mc.IntervalSeconds, mc.IntervalBytes = 2, 1<<20
	mc.ProposalTimeout, mc.ReservationTimeout, mc.FundingTimeout = 3*time.Second, 20*time.Second, 10*time.Second
	mc.PaymentGrace, mc.RefundGrace, mc.MaxClockSkew, mc.TxRetry = 3*time.Second, 5*time.Second, 30*time.Second, time.Second
	return Config{Machine: mc, TrafficBudgetGB: 1, SeriesBackoff: 2 * time.Second, MaxSeriesAttempts: 4}.withDefaults()
}

// memStore is a Store that keeps what was saved, as bytes, and remembers
// the largest voucher each role ever saved.
type memStore struct {
	recs     map[common.Hash][]byte
	cursor   Cursor
	capacity map[uint64]uint32
	maxPaid  map[common.Hash]*big.Int // largest voucher saved per deal
	fail     bool
}

func newMemStore() *memStore {
	return &memStore{recs: map[common.Hash][]byte{}, capacity: map[uint64]uint32{}, maxPaid: map[common.Hash]*big.Int{}}
}

func (s *memStore) LoadDeals() ([]Record, error) {
	ids := make([]common.Hash, 0, len(s.recs))
	for id := range s.recs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Cmp(ids[j]) < 0 })
	var out []Record
	for _, id := range ids {
		var r Record
		if err := json.Unmarshal(s.recs[id], &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *memStore) SaveDeals(recs []*Record) error {
	if s.fail {
		return errors.New("disk full")
	}
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		s.recs[r.Deal.ID] = b
		if v := r.Deal.Voucher; v != nil {
			if m := s.maxPaid[r.Deal.ID]; m == nil || v.Voucher.Amount.Cmp(m) > 0 {
				s.maxPaid[r.Deal.ID] = new(big.Int).Set(v.Voucher.Amount)
			}
		}
	}
	return nil
}

func (s *memStore) LoadCursor() (Cursor, error)                { return s.cursor, nil }
func (s *memStore) SaveCursor(c Cursor) error                  { s.cursor = c; return nil }
func (s *memStore) LoadCapacity() (map[uint64]uint32, error)   { return maps(s.capacity), nil }
func (s *memStore) SaveCapacity(pool uint64, ips uint32) error { s.capacity[pool] = ips; return nil }

func maps(m map[uint64]uint32) map[uint64]uint32 {
	out := map[uint64]uint32{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// simHooks is the node's side: tunnel permissions and the provider's
// meter.
type simHooks struct {
	serving map[common.Hash]bool
	meter   map[common.Hash]uint64
}

func (h *simHooks) Updated([]Record) {}
func (h *simHooks) Permissions(ps []agreement.Permission) {
	for _, p := range ps {
		h.serving[p.DealID] = p.Allow
	}
}
func (h *simHooks) Reservations([]agreement.Reservation) {}
func (h *simHooks) Usage(id common.Hash) (Metered, bool) {
	b, ok := h.meter[id]
	return Metered{Bytes: b}, ok
}
func (h *simHooks) VoucherOK(common.Hash, common.Hash) error { return nil }

type simOffers struct {
	w *sim
}

func (o simOffers) OwnRequests() []*orderbook.Order { return nil }
func (o simOffers) Candidates(*orderbook.Order, time.Time) []matching.Fill {
	return nil
}
func (o simOffers) Reachable(common.Address) bool { return true }
func (o simOffers) RequestOpen(id common.Hash) bool {
	return id == o.w.request.ID() && o.w.now.Before(o.w.requestUntil)
}

type simNode struct {
	name  string
	key   agreement.KeySigner
	store *memStore
	hooks *simHooks
	core  *core
	gen   int // incarnation: answers to a crashed incarnation are lost
	up    bool
	back  time.Time // when a crashed node restarts
	seen  int       // chain events fed (the watcher's cursor, saved with it)
	saved int
	// unwinds a restarted watcher finds by comparing its saved block
	// hashes with the chain's
	unwinds []Event
}

func (n *simNode) addr() common.Address { return n.key.Address() }

// faults of one schedule: probabilities per exchange or per step.
type faults struct {
	dropReq, dropReply, dup, delay float64
	crashP, crashR                 float64
	txFail, reorg                  float64
	until                          time.Time
}

type exchange struct {
	from, to   *simNode
	gen        int
	pkt        agreement.Packet
	deliverAt  time.Time
	timeoutAt  time.Time
	replyAt    time.Time
	reply      agreement.Packet
	delivered  bool
	answered   bool // the sender heard back (reply or timeout)
	dropReply  bool
	duplicate  bool
	requestOut bool // the request is lost
}

type pendingTx struct {
	by     *simNode
	gen    int
	tx     agreement.Tx
	mineAt time.Time
}

type chainEv struct {
	ev    agreement.Event
	id    common.Hash
	kind  string
	block uint64
}

type sim struct {
	t      *testing.T
	rng    *rand.Rand
	f      faults
	now    time.Time
	p, r   *simNode
	xs     []*exchange
	txs    []pendingTx
	events []chainEv
	// the escrow
	status   map[common.Hash]agreement.Status
	terms    map[common.Hash]agreement.Terms
	paid     map[common.Hash]*big.Int
	balance  map[common.Address]*big.Int
	reserved map[common.Address]*big.Int
	// the requester's one request, and the provider's one offer
	request      *orderbook.Order
	requestUntil time.Time
	offer        *orderbook.Order
	log          []string
	verbose      bool
}

func newSim(t *testing.T, seed uint64, f faults, start time.Time) *sim {
	w := &sim{t: t, verbose: os.Getenv("IPSX_SIM_VERBOSE") != "", rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), f: f, now: start,
		status: map[common.Hash]agreement.Status{}, terms: map[common.Hash]agreement.Terms{}, paid: map[common.Hash]*big.Int{},
		balance: map[common.Address]*big.Int{}, reserved: map[common.Address]*big.Int{}}
	w.p = &simNode{name: "p", key: simKey("p"), store: newMemStore()}
	w.r = &simNode{name: "r", key: simKey("r"), store: newMemStore()}
	for _, n := range []*simNode{w.p, w.r} {
		w.balance[n.addr()] = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
		w.reserved[n.addr()] = new(big.Int)
	}
	w.offer = &orderbook.Order{Kind: orderbook.KindOffer, Maker: w.p.addr(), Nonce: 7, Version: 1, IPs: 1,
		PricePerHour: big.NewInt(3_600_000), PricePerGB: big.NewInt(1_000_000), MinDuration: 5, MaxDuration: 3600,
		Expires: uint64(start.Unix()) + 3600, Location: orderbook.Location{Country: "DE"}}
	w.request = &orderbook.Order{Kind: orderbook.KindRequest, Maker: w.r.addr(), Nonce: 1, Version: 1, IPs: 1,
		Duration: 10, Expires: uint64(start.Unix()) + 20}
	w.requestUntil = start.Add(15 * time.Second)
	w.start(w.p)
	w.start(w.r)
	return w
}

func (w *sim) logf(format string, args ...any) {
	line := fmt.Sprintf("%6.2fs ", float64(w.now.UnixMilli()%1_000_000)/1000) + fmt.Sprintf(format, args...)
	w.log = append(w.log, line)
}

func (w *sim) start(n *simNode) {
	m, err := agreement.New(simConfig(n.key).Machine)
	if err != nil {
		w.t.Fatal(err)
	}
	n.hooks = &simHooks{serving: map[common.Hash]bool{}, meter: map[common.Hash]uint64{}}
	logger := slog.New(slog.DiscardHandler)
	if w.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", n.name)
	}
	c := newCore(simConfig(n.key), m, n.store, simOffers{w}, n.hooks, logger)
	c.chainTime = func() uint64 { return uint64(w.now.Unix()) }
	var nonce uint64
	c.nonce = func() uint64 { nonce++; return nonce }
	if err := c.restore(w.now); err != nil {
		w.t.Fatal(err)
	}
	// The provider meters from what its records say (the node resumes its
	// meters from them).
	for _, rec := range c.recs {
		n.hooks.meter[rec.Deal.ID] = rec.Deal.Bytes
	}
	n.core, n.up = c, true
	n.gen++
	n.seen = n.saved
	if len(n.unwinds) > 0 {
		w.must(c.chainEvents(w.now, n.unwinds, nil))
		n.unwinds = nil
	}
	if n == w.p {
		w.must(c.setOffer(w.now, w.offer))
	}
	w.must(c.tick(w.now))
	w.effects(n)
}

func (w *sim) crash(n *simNode, down time.Duration) {
	w.logf("%s crashes for %v", n.name, down)
	n.core, n.up = nil, false
	n.back = w.now.Add(down)
}

func (w *sim) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *sim) node(a common.Address) *simNode {
	if a == w.p.addr() {
		return w.p
	}
	return w.r
}

func (w *sim) chance(p float64) bool { return w.now.Before(w.f.until) && w.rng.Float64() < p }

// effects acts on what n's core asked for.
func (w *sim) effects(n *simNode) {
	if !n.up {
		return
	}
	e := n.core.takeEffects()
	for _, p := range e.perms {
		n.hooks.serving[p.DealID] = p.Allow
	}
	for _, s := range e.sends {
		to := w.node(s.To)
		x := &exchange{from: n, to: to, gen: n.gen, pkt: s.Packet, deliverAt: w.now.Add(20 * time.Millisecond),
			timeoutAt: w.now.Add(2 * time.Second)}
		if w.chance(w.f.delay) {
			x.deliverAt = w.now.Add(time.Duration(w.rng.IntN(4000)) * time.Millisecond)
		}
		x.requestOut = w.chance(w.f.dropReq)
		x.dropReply = w.chance(w.f.dropReply)
		x.duplicate = w.chance(w.f.dup)
		w.xs = append(w.xs, x)
	}
	for _, tx := range e.txs {
		w.txs = append(w.txs, pendingTx{by: n, gen: n.gen, tx: tx, mineAt: w.now.Add(time.Duration(100+w.rng.IntN(1500)) * time.Millisecond)})
	}
}

func (w *sim) stepNet() {
	var keep []*exchange
	xs := w.xs
	w.xs = nil // exchanges started meanwhile go here
	for _, x := range xs {
		if !x.delivered && !x.requestOut && !w.now.Before(x.deliverAt) {
			x.delivered = true
			w.logf("%s -> %s: %s", x.from.name, x.to.name, fmtPacket(x.pkt))
			if x.to.up {
				reply, err := x.to.core.receive(w.now, x.from.addr(), Peer{ID: x.from.name}, x.pkt)
				w.must(err)
				w.effects(x.to)
				if x.duplicate {
					_, err := x.to.core.receive(w.now, x.from.addr(), Peer{ID: x.from.name}, x.pkt)
					w.must(err)
					w.effects(x.to)
				}
				x.reply, x.replyAt = reply, w.now.Add(20*time.Millisecond)
				w.logf("%s <- %s: %s", x.from.name, x.to.name, fmtPacket(reply))
			} else {
				x.requestOut = true
			}
		}
		if !x.answered && x.delivered && !x.requestOut && !x.dropReply && !w.now.Before(x.replyAt) && !w.now.After(x.timeoutAt) {
			x.answered = true
			if x.from.up && x.from.gen == x.gen {
				w.must(x.from.core.replied(w.now, x.to.addr(), x.pkt, x.reply, Peer{ID: x.to.name}, nil))
				w.effects(x.from)
			}
		}
		if !x.answered && !w.now.Before(x.timeoutAt) {
			x.answered = true
			if x.from.up && x.from.gen == x.gen {
				w.must(x.from.core.replied(w.now, x.to.addr(), x.pkt, agreement.Packet{}, Peer{}, errors.New("timeout")))
				w.effects(x.from)
			}
		}
		if !x.answered || (!x.delivered && !x.requestOut) {
			keep = append(keep, x)
		}
	}
	w.xs = append(keep, w.xs...)
}

// mine executes due transactions the way the escrow does (commission 0).
func (w *sim) stepChain() {
	var keep []pendingTx
	txs := w.txs
	w.txs = nil
	for _, pt := range txs {
		if w.now.Before(pt.mineAt) {
			keep = append(keep, pt)
			continue
		}
		outcome, err := w.execute(pt.tx)
		if err == nil && w.chance(w.f.txFail) {
			err, outcome = errors.New("connection refused"), TxRetry
		}
		if err != nil && pt.by.up && pt.by.gen == pt.gen {
			w.must(pt.by.core.txDone(w.now, pt.tx, err, outcome))
			w.effects(pt.by)
		}
	}
	w.txs = append(keep, w.txs...)
	if len(w.events) > 0 && w.chance(w.f.reorg) {
		last := w.events[len(w.events)-1]
		if last.kind == "settled" || last.kind == "opened" {
			w.unwind(last)
		}
	}
}

func (w *sim) execute(tx agreement.Tx) (TxOutcome, error) {
	t := tx.Terms
	id := t.ID(simDomain)
	st := w.status[id]
	var ev agreement.Event
	switch tx.Kind {
	case agreement.TxOpen:
		if st != agreement.StatusNone {
			return TxOnChain, errors.New("reverted: DealExists")
		}
		if t.Deadline <= uint64(w.now.Unix()) {
			return TxFinal, errors.New("reverted: InvalidTerms")
		}
		if err := t.VerifySignatures(simDomain, tx.ProviderSig, tx.RequesterSig); err != nil {
			w.t.Fatalf("open with bad signatures: %v", err)
		}
		w.balance[t.Requester].Sub(w.balance[t.Requester], t.MaxAmount)
		w.reserved[t.Requester].Add(w.reserved[t.Requester], t.MaxAmount)
		w.status[id], w.terms[id] = agreement.StatusFunded, t
		ev = agreement.Opened{DealID: id, MaxAmount: t.MaxAmount}
	case agreement.TxSettle:
		if st != agreement.StatusFunded {
			return TxOnChain, errors.New("reverted: DealNotOpen")
		}
		v := tx.Voucher
		if err := agreement.Verify(v.Voucher.Digest(simDomain), v.Signature, t.Requester); err != nil || v.Voucher.Amount.Cmp(t.MaxAmount) > 0 {
			w.t.Fatalf("settle with a bad voucher: %v", err)
		}
		w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
		w.balance[t.Requester].Add(w.balance[t.Requester], new(big.Int).Sub(t.MaxAmount, v.Voucher.Amount))
		w.balance[t.Provider].Add(w.balance[t.Provider], v.Voucher.Amount)
		w.status[id], w.paid[id] = agreement.StatusSettled, new(big.Int).Set(v.Voucher.Amount)
		ev = agreement.Settled{DealID: id, Amount: v.Voucher.Amount, Commission: new(big.Int), Bytes: v.Voucher.Bytes}
	case agreement.TxRefund:
		if st != agreement.StatusFunded {
			return TxOnChain, errors.New("reverted: DealNotOpen")
		}
		if uint64(w.now.Unix()) < t.Deadline+5 {
			return TxRetry, errors.New("reverted: RefundTooEarly")
		}
		w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
		w.balance[t.Requester].Add(w.balance[t.Requester], t.MaxAmount)
		w.status[id] = agreement.StatusRefunded
		ev = agreement.Refunded{DealID: id, Amount: t.MaxAmount}
	case agreement.TxCancel:
		if st != agreement.StatusFunded {
			return TxOnChain, errors.New("reverted: DealNotOpen")
		}
		cd := agreement.CancelDigest(simDomain, id)
		if agreement.Verify(cd, tx.ProviderSig, t.Provider) != nil || agreement.Verify(cd, tx.RequesterSig, t.Requester) != nil {
			w.t.Fatalf("cancel with bad signatures")
		}
		w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
		w.balance[t.Requester].Add(w.balance[t.Requester], t.MaxAmount)
		w.status[id] = agreement.StatusCancelled
		ev = agreement.Cancelled{DealID: id}
	}
	w.events = append(w.events, chainEv{ev: ev, id: id, kind: eventKind(ev), block: uint64(len(w.events) + 1)})
	w.logf("chain: %s %s", tx.Kind, id.Hex()[:8])
	return TxRetry, nil
}

// unwind: a reorg removes the newest event.
func (w *sim) unwind(e chainEv) {
	w.logf("chain: reorg removes %s of %s", e.kind, e.id.Hex()[:8])
	t := w.terms[e.id]
	switch e.kind {
	case "opened":
		w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
		w.balance[t.Requester].Add(w.balance[t.Requester], t.MaxAmount)
		w.status[e.id] = agreement.StatusNone
	case "settled":
		paid := w.paid[e.id]
		w.balance[t.Provider].Sub(w.balance[t.Provider], paid)
		w.balance[t.Requester].Sub(w.balance[t.Requester], new(big.Int).Sub(t.MaxAmount, paid))
		w.reserved[t.Requester].Add(w.reserved[t.Requester], t.MaxAmount)
		w.status[e.id] = agreement.StatusFunded
		delete(w.paid, e.id)
	}
	w.events = w.events[:len(w.events)-1]
	for _, n := range []*simNode{w.p, w.r} {
		if n.saved > len(w.events) {
			// It acted on it: the watcher unwinds it.
			n.saved = len(w.events)
			u := Event{Ev: unwindEvent(e.kind, e.id), DealID: e.id, Block: e.block}
			if n.up {
				w.must(n.core.chainEvents(w.now, []Event{u}, nil))
				w.effects(n)
				n.seen = n.saved
			} else {
				n.unwinds = append(n.unwinds, u) // newest block first, as a watcher unwinds
			}
		}
		n.seen = min(n.seen, len(w.events))
	}
}

// stepWatchers feeds each live node the chain events it has not seen.
func (w *sim) stepWatchers() {
	for _, n := range []*simNode{w.p, w.r} {
		if !n.up || n.seen >= len(w.events) {
			continue
		}
		var evs []Event
		for _, e := range w.events[n.seen:] {
			evs = append(evs, Event{Ev: e.ev, DealID: e.id, Block: e.block})
		}
		w.must(n.core.chainEvents(w.now, nil, evs))
		w.effects(n)
		n.seen, n.saved = len(w.events), len(w.events)
	}
}

// stepTraffic: while both sides serve a deal, the tunnel carries bytes,
// metered on both sides.
func (w *sim) stepTraffic() {
	if !w.p.up || !w.r.up {
		return
	}
	for id := range w.r.hooks.serving {
		if !w.r.hooks.serving[id] || !w.p.hooks.serving[id] {
			continue
		}
		add := uint64(100_000 + w.rng.IntN(400_000))
		w.p.hooks.meter[id] += add
		pd, ok1 := w.p.core.recs[id]
		rd, ok2 := w.r.core.recs[id]
		if !ok1 || !ok2 {
			continue
		}
		rb := rd.Deal.Bytes + add
		pb := max(pd.Deal.Bytes, w.p.hooks.meter[id])
		w.p.hooks.meter[id] = pb
		_ = w.r.core.command(w.now, agreement.Usage{At: w.now, DealID: id, Bytes: rb})
		w.effects(w.r)
		_ = w.p.core.command(w.now, agreement.Usage{At: w.now, DealID: id, Bytes: pb})
		w.effects(w.p)
	}
}

// stepPropose: the requester's proposer.
func (w *sim) stepPropose() {
	if !w.r.up || !w.now.Before(w.requestUntil) {
		return
	}
	c := w.r.core
	if c.requestBusy(w.request.ID()) {
		return
	}
	f := matching.Fill{OfferID: w.offer.ID(), RequestID: w.request.ID(), Offer: w.offer, IPs: 1,
		PricePerHour: w.offer.PricePerHour, PricePerGB: w.offer.PricePerGB}
	if err := c.propose(w.now, w.request, f); err != nil {
		w.t.Fatalf("propose: %v", err)
	}
	w.effects(w.r)
}

func (w *sim) step(dt time.Duration) {
	w.now = w.now.Add(dt)
	for _, n := range []*simNode{w.p, w.r} {
		if !n.up && !w.now.Before(n.back) {
			w.logf("%s restarts", n.name)
			w.start(n)
		}
	}
	if w.chance(w.f.crashP) && w.p.up {
		w.crash(w.p, time.Duration(500+w.rng.IntN(8000))*time.Millisecond)
	}
	if w.chance(w.f.crashR) && w.r.up {
		w.crash(w.r, time.Duration(500+w.rng.IntN(8000))*time.Millisecond)
	}
	w.stepPropose()
	w.stepNet()
	w.stepChain()
	w.stepWatchers()
	w.stepTraffic()
	for _, n := range []*simNode{w.p, w.r} {
		if n.up {
			w.must(n.core.tick(w.now))
			w.effects(n)
		}
	}
}

// done reports whether every deal is over on chain and on both sides.
func (w *sim) done() bool {
	if w.now.Before(w.requestUntil) || !w.p.up || !w.r.up || len(w.txs) > 0 {
		return false
	}
	for _, n := range []*simNode{w.p, w.r} {
		for _, r := range n.core.recs {
			if r.open() {
				return false
			}
		}
	}
	for _, st := range w.status {
		if st == agreement.StatusFunded {
			return false
		}
	}
	return true
}

// check asserts the invariants at the end.
func (w *sim) check() error {
	total := new(big.Int)
	for _, a := range []common.Address{w.p.addr(), w.r.addr()} {
		total.Add(total, w.balance[a])
		if w.reserved[a].Sign() != 0 {
			return fmt.Errorf("%s has %s reserved in escrow at the end", a.Hex(), w.reserved[a])
		}
	}
	if want := new(big.Int).Mul(big.NewInt(2), new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)); total.Cmp(want) != 0 {
		return fmt.Errorf("balances sum to %s, want %s", total, want)
	}
	for id, st := range w.status {
		if st != agreement.StatusSettled {
			continue
		}
		paid := w.paid[id]
		signed := w.r.store.maxPaid[id]
		acked := w.p.store.maxPaid[id]
		if signed == nil || paid.Cmp(signed) > 0 {
			return fmt.Errorf("deal %s settled for %s, more than the requester's last voucher %v", id.Hex()[:10], paid, signed)
		}
		if acked != nil && paid.Cmp(acked) < 0 {
			return fmt.Errorf("deal %s settled for %s, less than the voucher %s the provider had acknowledged", id.Hex()[:10], paid, acked)
		}
	}
	for _, n := range []*simNode{w.p, w.r} {
		for id, r := range n.core.recs {
			if st := w.status[id]; st.Terminal() && r.Deal.Chain != st {
				return fmt.Errorf("%s's deal %s is %s on chain but %s in its record", n.name, id.Hex()[:10], st, r.Deal.Chain)
			}
		}
	}
	return nil
}

// run plays a schedule to its end and returns the first broken invariant.
func (w *sim) run(limit time.Duration) error {
	end := w.now.Add(limit)
	for w.now.Before(end) {
		w.step(250 * time.Millisecond)
		if w.done() {
			return w.check()
		}
	}
	var open []string
	for _, n := range []*simNode{w.p, w.r} {
		if !n.up {
			open = append(open, n.name+" is down")
			continue
		}
		for id, r := range n.core.recs {
			if r.open() {
				open = append(open, fmt.Sprintf("%s: %s %s/%s chain=%s out=%d", n.name, id.Hex()[:10], r.Deal.Status(), r.Deal.Local(), r.Deal.Chain, len(r.Out)))
			}
		}
	}
	for id, st := range w.status {
		if st == agreement.StatusFunded {
			open = append(open, fmt.Sprintf("chain: %s still funded", id.Hex()[:10]))
		}
	}
	return fmt.Errorf("not over after %v: %s", limit, strings.Join(open, "; "))
}

var simStart = time.Unix(1_800_000_000, 0)

func fmtPacket(p agreement.Packet) string {
	var parts []string
	for _, m := range p.Msgs {
		parts = append(parts, fmt.Sprintf("%s#%d(%s)", m.Msg.Type(), m.Seq, agreement.DealOf(m.Msg, simDomain).Hex()[:8]))
	}
	for _, a := range p.Acks {
		parts = append(parts, fmt.Sprintf("ack(%s,%d,%s)", a.DealID.Hex()[:8], a.Seq, a.Status))
	}
	if p.Sync {
		parts = append(parts, "sync")
	}
	return strings.Join(parts, " ")
}

func randomFaults(rng *rand.Rand) faults {
	p := func(max float64) float64 {
		if rng.IntN(3) == 0 {
			return 0
		}
		return rng.Float64() * max
	}
	return faults{dropReq: p(0.4), dropReply: p(0.4), dup: p(0.3), delay: p(0.3),
		crashP: p(0.03), crashR: p(0.03), txFail: p(0.3), reorg: p(0.02),
		until: simStart.Add(time.Duration(5+rng.IntN(25)) * time.Second)}
}

// TestSimHappy: without faults, a deal is proposed, funded, paid, and
// settled for exactly the requester's last voucher.
func TestSimHappy(t *testing.T) {
	w := newSim(t, 1, faults{}, simStart)
	if err := w.run(2 * time.Minute); err != nil {
		t.Log(strings.Join(w.log, "\n"))
		t.Fatal(err)
	}
	settled := 0
	for id, st := range w.status {
		if st == agreement.StatusSettled {
			settled++
			if w.paid[id].Cmp(w.r.store.maxPaid[id]) != 0 {
				t.Errorf("settled %s, the requester's last voucher is %s", w.paid[id], w.r.store.maxPaid[id])
			}
		}
	}
	if settled != 1 {
		t.Fatalf("%d deals settled, want 1 (%v)", settled, w.status)
	}
	if testing.Verbose() {
		t.Log(strings.Join(w.log, "\n"))
	}
}

// TestSimFaults: each kind of fault alone ends every deal with the right
// payments.
func TestSimFaults(t *testing.T) {
	until := simStart.Add(20 * time.Second)
	for _, tc := range []struct {
		name string
		f    faults
	}{
		{"dropped requests", faults{dropReq: 0.5, until: until}},
		{"dropped replies", faults{dropReply: 0.5, until: until}},
		{"duplicated", faults{dup: 0.8, until: until}},
		{"delayed and reordered", faults{delay: 0.6, until: until}},
		{"provider restarts", faults{crashP: 0.05, until: until}},
		{"requester restarts", faults{crashR: 0.05, until: until}},
		{"transactions fail", faults{txFail: 0.5, until: until}},
		{"reorgs", faults{reorg: 0.1, until: until}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 10; seed++ {
				w := newSim(t, seed, tc.f, simStart)
				if err := w.run(3 * time.Minute); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

// TestSimSchedules is the property test: over many random fault schedules
// (IPSX_SIM_SCHEDULES, default 1000), no deal pays the provider more than
// the requester's last voucher or less than the last voucher the provider
// had acknowledged, nothing stays reserved in escrow, and every deal ends.
// IPSX_SIM_SEED replays one schedule with the driver's debug log.
func TestSimSchedules(t *testing.T) {
	n := 1000
	if v := os.Getenv("IPSX_SIM_SCHEDULES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	first := uint64(1)
	verbose := false
	if v := os.Getenv("IPSX_SIM_SEED"); v != "" {
		s, _ := strconv.ParseUint(v, 10, 64)
		first, n, verbose = s, 1, true
	}
	for seed := first; seed < first+uint64(n); seed++ {
		f := randomFaults(rand.New(rand.NewPCG(seed, 42)))
		w := newSim(t, seed, f, simStart)
		w.verbose = verbose
		if err := w.run(4 * time.Minute); err != nil {
			if verbose {
				t.Log(strings.Join(w.log, "\n"))
			}
			t.Fatalf("schedule %d (%+v): %v\nreplay: IPSX_SIM_SEED=%d go test -run TestSimSchedules ./node/deals/", seed, f, err, seed)
		}
	}
}

func TestSimDebug(t *testing.T) {
	v := os.Getenv("IPSX_SIM_DEBUG")
	if v == "" {
		t.Skip("set IPSX_SIM_DEBUG=kind:seed")
	}
	kind, seedS, _ := strings.Cut(v, ":")
	seed, _ := strconv.ParseUint(seedS, 10, 64)
	until := simStart.Add(20 * time.Second)
	f := map[string]faults{"reorg": {reorg: 0.1, until: until}, "crashP": {crashP: 0.05, until: until},
		"random": randomFaults(rand.New(rand.NewPCG(seed, 42)))}[kind]
	w := newSim(t, seed, f, simStart)
	err := w.run(3 * time.Minute)
	t.Log(strings.Join(w.log, "\n"))
	for _, n := range []*simNode{w.p, w.r} {
		if n.up {
			for _, r := range n.core.recs {
				for _, h := range r.History {
					t.Logf("%s %d %s %s->%s %s %s", n.name, h.At-uint64(simStart.Unix()), h.Event, h.From, h.To, h.Reason, h.Detail)
				}
				t.Logf("%s pending=%s retryAt=%d", n.name, r.Deal.Pending, r.Deal.RetryAt-uint64(simStart.Unix()))
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
