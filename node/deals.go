package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Deals. One goroutine (dealLoop) owns the agreement.Machine; everything
// else hands it work through dealDo. After every step the loop acts on the
// machine's Ready in the order the agreement package requires: persist the
// deals (synced), then send messages, submit transactions, apply
// reservations and tunnel permissions, and move refused proposals on to the
// next candidate. Network and chain calls run on their own goroutines so
// the loop never waits on a peer or a receipt; their outcomes come back as
// events.

// DealConfig tunes the deal protocol; zero fields take agreement's
// defaults. The refund grace always comes from the escrow contract.
type DealConfig struct {
	IntervalSeconds    uint64
	IntervalBytes      uint64
	ProposalTimeout    time.Duration
	ReservationTimeout time.Duration
	FundingTimeout     time.Duration
	PaymentGrace       time.Duration
	TxRetry            time.Duration
	// TrafficBudgetGB is how many GB of traffic a requester's deal locks
	// beyond its time cost (default 10).
	TrafficBudgetGB uint64
	// Tick is how often the machine's timers are checked (default 1 s).
	Tick time.Duration
}

type dealReq struct {
	fn   func(m *agreement.Machine) error
	done chan error
}

// dealState is what the deal loop keeps beside the machine. Only the loop
// goroutine touches it.
type dealState struct {
	m       *agreement.Machine
	history map[common.Hash][]agreement.Entry
	// tried holds, per own request, the offers proposed to already.
	tried map[common.Hash]map[seriesKey]bool
	// capacity is the total IPs of each own offer series (by nonce).
	capacity map[uint64]uint32
	cursor   uint64 // next chain block to read events from
	// intervalBytes is the pay-ahead interval in bytes (the machine's).
	intervalBytes uint64
}

var errNoDeals = errors.New("node: deals need a chain (--chain-rpc)")

const (
	defaultIntervalBytes = 16 << 20

	keyDeal      = "deal/r/"
	keyCapacity  = "deal/capacity/"
	keyCursor    = "deal/chain-cursor"
	dealIOTimout = 10 * time.Second
)

// startDeals builds the machine from the persisted deals. It needs the
// chain (the escrow's domain and grace).
func (n *Node) startDeals(ctx context.Context) error {
	if n.escrow == nil {
		return nil
	}
	p, err := n.escrow.EscrowParams(ctx)
	if err != nil {
		return err
	}
	c := n.escrow.Contracts()
	cfg := agreement.DefaultConfig(agreement.NewKeySigner(n.key), c.Domain())
	dc := n.o.deals
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	if dc.IntervalSeconds > 0 {
		cfg.IntervalSeconds = dc.IntervalSeconds
	}
	// The pay-ahead interval in bytes: large enough that a fast transfer
	// is not throttled by the voucher round trip (each voucher is synced
	// to disk on both sides), small enough that what either side can lose
	// stays small (16 MiB at 0.01 token per GB is 0.00017 token).
	cfg.IntervalBytes = defaultIntervalBytes
	if dc.IntervalBytes > 0 {
		cfg.IntervalBytes = dc.IntervalBytes
	}
	set(&cfg.ProposalTimeout, dc.ProposalTimeout)
	set(&cfg.ReservationTimeout, dc.ReservationTimeout)
	set(&cfg.FundingTimeout, dc.FundingTimeout)
	set(&cfg.PaymentGrace, dc.PaymentGrace)
	set(&cfg.TxRetry, dc.TxRetry)
	cfg.RefundGrace = time.Duration(p.GraceSeconds) * time.Second
	m, err := agreement.New(cfg)
	if err != nil {
		return err
	}
	st := &dealState{m: m, history: map[common.Hash][]agreement.Entry{}, tried: map[common.Hash]map[seriesKey]bool{}, capacity: map[uint64]uint32{}}
	deals, err := n.loadDeals(st)
	if err != nil {
		return err
	}
	if err := m.Restore(deals); err != nil {
		return fmt.Errorf("node: restore deals: %w", err)
	}
	if err := n.loadCapacity(st); err != nil {
		return err
	}
	st.cursor, err = n.loadCursor(ctx)
	if err != nil {
		return err
	}
	now := n.now()
	own, err := n.book.List(orderbook.Query{Maker: n.addr, Kind: orderbook.KindOffer})
	if err != nil {
		return err
	}
	for _, o := range own {
		cp, ok := st.capacity[o.Nonce]
		if !ok {
			cp = o.IPs
			st.capacity[o.Nonce] = cp
		}
		if err := m.Step(agreement.SetOffer{At: now, ID: o.ID(), Offer: o, Capacity: cp}); err != nil {
			n.log.Warn("register own offer", "order", o.ID().Hex(), "err", err)
		}
	}
	st.intervalBytes = cfg.IntervalBytes
	n.dealState = st
	n.dealReqs = make(chan dealReq)
	return nil
}

// dealDo runs fn on the deal loop and acts on what it produced.
func (n *Node) dealDo(ctx context.Context, fn func(m *agreement.Machine) error) error {
	if n.dealReqs == nil {
		return errNoDeals
	}
	r := dealReq{fn: fn, done: make(chan error, 1)}
	select {
	case n.dealReqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.runCtx.Done():
		return n.runCtx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dealLoop owns the machine until ctx ends. Work it starts (sends, chain
// transactions) runs under wg.
func (n *Node) dealLoop(ctx context.Context, wg *sync.WaitGroup) {
	st := n.dealState
	tick := time.NewTicker(n.o.dealTick())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-n.dealReqs:
			err := r.fn(st.m)
			n.handleReady(ctx, wg, st)
			r.done <- err
		case <-tick.C:
			now := n.now()
			if err := st.m.Tick(now); err != nil {
				n.log.Warn("deal tick", "err", err)
			}
			n.autoPropose(now, st)
			n.handleReady(ctx, wg, st)
		}
	}
}

// handleReady acts on everything the machine produced.
func (n *Node) handleReady(ctx context.Context, wg *sync.WaitGroup, st *dealState) {
	for st.m.HasReady() {
		rd := st.m.Ready()
		if err := n.persistDeals(st, rd.Deals); err != nil {
			// Nothing is acted on that is not on disk; the machine keeps
			// the output and the next round tries again.
			n.log.Error("persist deals", "err", err)
			return
		}
		for _, u := range rd.Deals {
			n.events.publish("deal.updated", dealView(&u.Deal, nil))
			n.geoCheck(&u.Deal)
			n.rateDeal(&u.Deal)
			if u.Deal.Role == agreement.RoleProvider && u.Deal.Voucher != nil {
				n.raiseAllowance(u.Deal.ID, u.Deal.Voucher.Voucher.Bytes+2*st.intervalBytes)
			}
		}
		for _, env := range rd.Messages {
			env := env
			wg.Add(1)
			go func() { defer wg.Done(); n.sendDealMsg(ctx, env) }()
		}
		for _, tx := range rd.Txs {
			tx := tx
			wg.Add(1)
			go func() { defer wg.Done(); n.submitTx(ctx, tx) }()
		}
		n.applyReservations(st, rd.Reservations)
		n.applyPermissions(rd.Permissions)
		n.stopTunnels(st, rd.Permissions)
		n.endTunnels(rd.Deals)
		for _, r := range rd.Retries {
			n.log.Info("proposal failed; trying the next offer", "deal", r.DealID.Hex(), "request", r.RequestID.Hex(), "reason", r.Reason)
		}
		st.m.Advance()
	}
}

type dealRecord struct {
	Deal    agreement.Deal    `json:"deal"`
	History []agreement.Entry `json:"history"`
	Updated time.Time         `json:"updated"`
}

func (n *Node) persistDeals(st *dealState, ups []agreement.Update) error {
	if len(ups) == 0 {
		return nil
	}
	now := n.now()
	err := n.db.Update(func(txn *badger.Txn) error {
		for _, u := range ups {
			h := append(st.history[u.Deal.ID], u.History...)
			b, err := json.Marshal(dealRecord{Deal: u.Deal, History: h, Updated: now})
			if err != nil {
				return err
			}
			if err := txn.Set([]byte(keyDeal+u.Deal.ID.Hex()), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := n.db.Sync(); err != nil {
		return err
	}
	for _, u := range ups {
		st.history[u.Deal.ID] = append(st.history[u.Deal.ID], u.History...)
	}
	return nil
}

func (n *Node) loadDeals(st *dealState) ([]agreement.Deal, error) {
	var out []agreement.Deal
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyDeal)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r dealRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return fmt.Errorf("node: corrupt deal record %s: %w", it.Item().Key(), err)
			}
			out = append(out, r.Deal)
			st.history[r.Deal.ID] = r.History
		}
		return nil
	})
	return out, err
}

func (n *Node) readDeal(id common.Hash) (dealRecord, error) {
	var r dealRecord
	err := n.dbGetJSON([]byte(keyDeal+id.Hex()), &r)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return r, fmt.Errorf("%w: %s", agreement.ErrUnknownDeal, id.Hex())
	}
	return r, err
}

func (n *Node) loadCapacity(st *dealState) error {
	return n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyCapacity)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(keyCapacity)+8 {
				continue
			}
			_ = it.Item().Value(func(v []byte) error {
				if len(v) == 4 {
					st.capacity[binary.BigEndian.Uint64(k[len(keyCapacity):])] = binary.BigEndian.Uint32(v)
				}
				return nil
			})
		}
		return nil
	})
}

func (n *Node) saveCapacity(nonce uint64, c uint32) error {
	k := append([]byte(keyCapacity), u64(nonce)...)
	v := binary.BigEndian.AppendUint32(nil, c)
	if err := n.db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) }); err != nil {
		return err
	}
	return n.db.Sync()
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func (n *Node) loadCursor(ctx context.Context) (uint64, error) {
	var c uint64
	err := n.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keyCursor))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == 8 {
				c = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return 0, err
	}
	// First start: deals of this node cannot be older than now.
	head, _, err := n.escrow.Head(ctx)
	if err != nil {
		return 0, err
	}
	return head + 1, nil
}

// chainWatch feeds the escrow's deal events into the machine.
func (n *Node) chainWatch(ctx context.Context) {
	t := time.NewTicker(n.o.dealTick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, ht, err := n.escrow.Head(ctx); err == nil {
			n.chainTime.Store(ht)
		}
		from := n.dealState.cursor // written only here after start
		evs, next, err := n.escrow.DealEvents(ctx, from)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("read escrow events", "err", err)
			}
			continue
		}
		for _, e := range evs {
			ev := chainEvent(e, n.now())
			if ev == nil {
				continue
			}
			err := n.dealDo(ctx, func(m *agreement.Machine) error {
				if _, ok := m.Deal(e.DealID); !ok {
					return nil // someone else's deal
				}
				return m.Step(ev)
			})
			if err != nil && ctx.Err() == nil {
				n.log.Debug("chain event", "deal", e.DealID.Hex(), "event", e.Kind, "err", err)
			}
		}
		if next != from {
			if err := n.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keyCursor), u64(next)) }); err != nil {
				n.log.Warn("save chain cursor", "err", err)
			}
			n.dealState.cursor = next
		}
	}
}

func chainEvent(e chain.DealEvent, at time.Time) agreement.Event {
	switch e.Kind {
	case chain.EventOpened:
		return agreement.Opened{At: at, DealID: e.DealID, MaxAmount: e.MaxAmount}
	case chain.EventSettled:
		return agreement.Settled{At: at, DealID: e.DealID, Amount: e.Amount, Commission: e.Commission, Bytes: e.Bytes, ConnLogHash: e.ConnLogHash}
	case chain.EventRefunded:
		return agreement.Refunded{At: at, DealID: e.DealID, Amount: e.Amount}
	case chain.EventCancelled:
		return agreement.Cancelled{At: at, DealID: e.DealID}
	}
	return nil
}

// submitTx sends one escrow transaction; a failure goes back to the
// machine, success shows up as a chain event.
func (n *Node) submitTx(ctx context.Context, tx agreement.Tx) {
	var err error
	switch tx.Kind {
	case agreement.TxOpen:
		_, err = n.escrow.Open(ctx, tx.Terms, tx.ProviderSig, tx.RequesterSig)
	case agreement.TxSettle:
		_, err = n.escrow.Settle(ctx, tx.Terms, tx.Voucher.Voucher, tx.Voucher.Signature)
	case agreement.TxRefund:
		_, err = n.escrow.Refund(ctx, tx.Terms)
	case agreement.TxCancel:
		_, err = n.escrow.Cancel(ctx, tx.Terms, tx.ProviderSig, tx.RequesterSig)
	default:
		err = fmt.Errorf("unknown transaction kind %s", tx.Kind)
	}
	if err == nil {
		n.log.Info("escrow transaction mined", "deal", tx.DealID.Hex(), "tx", tx.Kind)
		return
	}
	if ctx.Err() != nil {
		return
	}
	n.log.Warn("escrow transaction failed", "deal", tx.DealID.Hex(), "tx", tx.Kind, "err", err)
	_ = n.dealDo(ctx, func(m *agreement.Machine) error {
		return m.Step(agreement.TxFailed{At: n.now(), DealID: tx.DealID, Kind: tx.Kind, Err: err.Error()})
	})
}

// Deal messages travel one per stream: a uvarint length, then the encoded
// message.

func (n *Node) sendDealMsg(ctx context.Context, env agreement.Envelope) {
	b, err := agreement.Encode(env.Msg)
	if err != nil {
		n.log.Error("encode deal message", "err", err)
		return
	}
	pid, err := n.peerOf(env.To)
	if err != nil {
		n.log.Warn("deal message: no route to counterparty", "peer", env.To.Hex(), "err", err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, dealIOTimout)
	defer cancel()
	// Deal messages are small: a relayed connection to a provider behind
	// NAT carries them while hole punching gets a direct one for tunnels.
	sctx = network.WithAllowLimitedConn(sctx, "deal message")
	err = n.connect(sctx, pid)
	var s network.Stream
	if err == nil {
		s, err = n.host.NewStream(sctx, pid, agreement.ProtocolID)
	}
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("deal message: open stream", "peer", pid, "type", env.Msg.Type(), "err", err)
		}
		return
	}
	_ = s.SetDeadline(time.Now().Add(dealIOTimout))
	frame := binary.AppendUvarint(nil, uint64(len(b)))
	if _, err := s.Write(append(frame, b...)); err != nil {
		_ = s.Reset()
		n.log.Warn("deal message: write", "peer", pid, "err", err)
		return
	}
	_ = s.Close()
}

func (n *Node) serveDeal(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(dealIOTimout))
	from := s.Conn().RemotePeer()
	addr, err := AddressOf(from)
	if err != nil {
		_ = s.Reset()
		return
	}
	r := bufio.NewReader(io.LimitReader(s, agreement.MaxMessageSize+binary.MaxVarintLen64))
	size, err := binary.ReadUvarint(r)
	if err != nil || size > agreement.MaxMessageSize {
		_ = s.Reset()
		return
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
	msg, err := agreement.Decode(buf)
	if err != nil {
		n.log.Debug("bad deal message", "peer", from, "err", err)
		return
	}
	n.learnPeer(addr, from)
	err = n.dealDo(n.runCtx, func(m *agreement.Machine) error {
		if sv, ok := msg.(*agreement.SignedVoucher); ok {
			// The machine judges a voucher against what this side has
			// metered: bring that up to date first, or a fast transfer
			// makes honest vouchers look like they pay too far ahead.
			n.refreshUsage(m, sv.Voucher.DealID)
		}
		return m.Step(agreement.Receive{At: n.now(), From: addr, Msg: msg})
	})
	if err != nil {
		n.log.Debug("deal message refused", "peer", from, "type", msg.Type(), "err", err)
	}
}

// learnPeer remembers the PeerID behind an address.
func (n *Node) learnPeer(a common.Address, p peer.ID) {
	n.peersMu.Lock()
	n.peerIDs[a] = p
	n.peersMu.Unlock()
}

// peerOf finds the PeerID behind an address: learnt from a stream, or
// recovered from the signature of one of its orders.
func (n *Node) peerOf(a common.Address) (peer.ID, error) {
	n.peersMu.Lock()
	p, ok := n.peerIDs[a]
	n.peersMu.Unlock()
	if ok {
		return p, nil
	}
	orders, err := n.book.List(orderbook.Query{Maker: a})
	if err != nil {
		return "", err
	}
	for _, o := range orders {
		id := o.ID()
		sig := append([]byte(nil), o.Signature...)
		if len(sig) == 65 && sig[64] >= 27 {
			sig[64] -= 27
		}
		pub, err := ethcrypto.SigToPub(id[:], sig)
		if err != nil || ethcrypto.PubkeyToAddress(*pub) != a {
			continue
		}
		pid, err := PeerIDOfPubkey(pub)
		if err != nil {
			continue
		}
		n.learnPeer(a, pid)
		return pid, nil
	}
	return "", fmt.Errorf("node: no known peer for %s", a.Hex())
}

// applyPermissions records which deals may use the tunnel.
func (n *Node) applyPermissions(ps []agreement.Permission) {
	n.permMu.Lock()
	defer n.permMu.Unlock()
	for _, p := range ps {
		if p.Allow {
			n.perms[p.DealID] = p
		} else {
			delete(n.perms, p.DealID)
		}
	}
}

// DealServing reports whether the tunnel may carry traffic for a deal now:
// on a provider, from the deal's requester; on a requester, to its provider.
func (n *Node) DealServing(id common.Hash) (agreement.Permission, bool) {
	n.permMu.Lock()
	defer n.permMu.Unlock()
	p, ok := n.perms[id]
	return p, ok
}

// applyReservations republishes own offers whose free capacity changed: a
// new version with the IPs left, or a cancel when none are.
func (n *Node) applyReservations(st *dealState, rs []agreement.Reservation) {
	if len(rs) == 0 {
		return
	}
	pools := map[uint64]bool{}
	for _, r := range rs {
		pools[r.Pool] = true
	}
	now := n.now()
	for pool := range pools {
		avail := st.m.Available(pool)
		cur, err := n.currentOffer(pool)
		if err != nil {
			n.log.Warn("own offer", "nonce", pool, "err", err)
			continue
		}
		if cur != nil && cur.IPs == avail {
			continue
		}
		if avail == 0 {
			if cur != nil {
				if _, err := n.Cancel(n.runCtx, cur.ID()); err != nil {
					n.log.Warn("withdraw fully reserved offer", "order", cur.ID().Hex(), "err", err)
				}
			}
			continue
		}
		next := n.lastOffer[pool]
		if next == nil {
			next = cur
		}
		if next == nil {
			continue // withdrawn before a restart: nothing to base a version on
		}
		o := *next
		o.Version, o.IPs, o.Created, o.Signature = next.Version+1, avail, uint64(now.Unix()), nil
		if o.Created >= o.Expires {
			continue
		}
		if err := o.Sign(n.key); err != nil {
			continue
		}
		if err := n.addLocal(n.runCtx, &o); err != nil {
			n.log.Warn("publish offer version", "nonce", pool, "err", err)
			continue
		}
		n.lastOffer[pool] = &o
		if err := st.m.Step(agreement.SetOffer{At: now, ID: o.ID(), Offer: &o, Capacity: st.capacity[pool]}); err != nil {
			n.log.Warn("register offer version", "order", o.ID().Hex(), "err", err)
		}
	}
}

// currentOffer is the live version of an own offer series, or nil.
func (n *Node) currentOffer(nonce uint64) (*orderbook.Order, error) {
	_, id, ok := n.book.Series(n.addr, nonce)
	if !ok {
		return nil, nil
	}
	o, err := n.book.Get(id)
	if errors.Is(err, orderbook.ErrNotFound) {
		return nil, nil
	}
	return o, err
}

// registerOwnOffer tells the machine about an offer the node just created.
func (n *Node) registerOwnOffer(ctx context.Context, o *orderbook.Order) {
	if n.dealReqs == nil || o.Kind != orderbook.KindOffer {
		return
	}
	err := n.dealDo(ctx, func(m *agreement.Machine) error {
		st := n.dealState
		if _, ok := st.capacity[o.Nonce]; !ok {
			st.capacity[o.Nonce] = o.IPs
			if err := n.saveCapacity(o.Nonce, o.IPs); err != nil {
				return err
			}
		}
		n.lastOffer[o.Nonce] = o
		return m.Step(agreement.SetOffer{At: n.now(), ID: o.ID(), Offer: o, Capacity: st.capacity[o.Nonce]})
	})
	if err != nil {
		n.log.Warn("register offer for deals", "order", o.ID().Hex(), "err", err)
	}
}

// autoPropose: for each own live request without a deal under way, propose
// to its best candidate not tried yet.
func (n *Node) autoPropose(now time.Time, st *dealState) {
	reqs, err := n.book.List(orderbook.Query{Maker: n.addr, Kind: orderbook.KindRequest})
	if err != nil || len(reqs) == 0 {
		return
	}
	busy := map[common.Hash]bool{}
	for _, d := range st.m.Deals() {
		if d.Role != agreement.RoleRequester {
			continue
		}
		switch d.Status() {
		case agreement.StatusRejected, agreement.StatusExpired, agreement.StatusCancelled:
			// failed: the request may go to another offer
		default:
			busy[d.Terms.RequestID] = true
		}
	}
	for _, r := range reqs {
		id := r.ID()
		if busy[id] {
			continue
		}
		book, err := n.book.List(orderbook.Query{Country: r.Shard(), Kind: orderbook.KindOffer})
		if err != nil {
			continue
		}
		cands, err := matching.Candidates(matching.NewSnapshot(append(book, r)), r, now, matching.Params{})
		if err != nil {
			continue
		}
		n.rankCandidates(cands)
		tried := st.tried[id]
		if tried == nil {
			tried = map[seriesKey]bool{}
			st.tried[id] = tried
		}
		for _, f := range cands {
			// A provider republishes its offer as its capacity changes, so
			// a failed proposal rules out the offer's series, not one id.
			k := seriesKey{f.Offer.Maker, f.Offer.Nonce}
			if tried[k] {
				continue
			}
			tried[k] = true
			if _, err := n.peerOf(f.Offer.Maker); err != nil {
				continue
			}
			t := n.termsFor(f, r, now)
			if err := st.m.Step(agreement.Propose{At: now, Terms: t}); err != nil {
				n.log.Warn("propose", "request", id.Hex(), "offer", f.OfferID.Hex(), "err", err)
				continue
			}
			n.rememberCountry(t.ID(n.escrow.Contracts().Domain()), f.Offer.Location.Country)
			n.rememberOffer(t.ID(n.escrow.Contracts().Domain()), f.Offer)
			n.log.Info("proposed a deal", "request", id.Hex(), "offer", f.OfferID.Hex(), "provider", f.Offer.Maker.Hex(), "ips", f.IPs)
			break
		}
	}
}

// seriesKey names an offer across its versions.
type seriesKey struct {
	maker common.Address
	nonce uint64
}

// termsFor builds a deal from a match: the offer's prices, the request's
// duration from now, and a max amount of the whole time cost plus the
// traffic budget.
func (n *Node) termsFor(f matching.Fill, r *orderbook.Order, now time.Time) agreement.Terms {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	// The escrow judges deadlines by block time; a chain running ahead of
	// this clock (a dev chain sealing fast) would refuse a deadline that
	// is still in the future here.
	start := max(uint64(now.Unix()), n.chainTime.Load())
	t := agreement.Terms{
		OfferID: f.OfferID, RequestID: f.RequestID,
		Provider: f.Offer.Maker, Requester: n.addr, IPs: f.IPs,
		PricePerIPHour: new(big.Int).Set(f.PricePerHour), PricePerGB: new(big.Int).Set(f.PricePerGB),
		Start: start, Deadline: start + uint64(r.Duration),
		Nonce: binary.BigEndian.Uint64(nonce[:]),
	}
	budget := n.o.deals.TrafficBudgetGB
	if budget == 0 {
		budget = 10
	}
	t.MaxAmount = t.Cost(t.Duration(), budget*1_000_000_000)
	if t.MaxAmount.Sign() == 0 {
		t.MaxAmount = big.NewInt(1)
	}
	return t
}

// Deals implements api.Backend.
func (n *Node) Deals(ctx context.Context) ([]sdk.Deal, error) {
	var recs []dealRecord
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyDeal)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r dealRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Deal.ProposedAt > recs[j].Deal.ProposedAt })
	out := make([]sdk.Deal, len(recs))
	for i := range recs {
		out[i] = dealView(&recs[i].Deal, nil)
		n.withGeo(&out[i])
	}
	return out, nil
}

// Deal implements api.Backend.
func (n *Node) Deal(ctx context.Context, id common.Hash) (sdk.Deal, error) {
	r, err := n.readDeal(id)
	if err != nil {
		return sdk.Deal{}, err
	}
	v := dealView(&r.Deal, r.History)
	n.withGeo(&v)
	return v, nil
}

// CloseDeal implements api.Backend.
func (n *Node) CloseDeal(ctx context.Context, id common.Hash) (sdk.Deal, error) {
	err := n.dealDo(ctx, func(m *agreement.Machine) error {
		return m.Step(agreement.CloseDeal{At: n.now(), DealID: id})
	})
	if err != nil {
		return sdk.Deal{}, err
	}
	return n.Deal(ctx, id)
}

func unixTime(s uint64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

func bigStr(x *big.Int) string {
	if x == nil {
		return ""
	}
	return x.String()
}

// dealView is the API's view of a deal.
func dealView(d *agreement.Deal, history []agreement.Entry) sdk.Deal {
	t := d.Terms
	v := sdk.Deal{
		ID: d.ID.Hex(), Role: d.Role.String(), Status: d.Status().String(),
		ProviderStatus: d.Provider.String(), RequesterStatus: d.Requester.String(),
		Reason: string(d.Reason), Detail: d.Detail,
		OfferID: t.OfferID.Hex(), RequestID: t.RequestID.Hex(),
		Provider: t.Provider.Hex(), Requester: t.Requester.Hex(), IPs: t.IPs,
		PricePerHour: bigStr(t.PricePerIPHour), PricePerGB: bigStr(t.PricePerGB), MaxAmount: bigStr(t.MaxAmount),
		Start: unixTime(t.Start), Deadline: unixTime(t.Deadline),
		Paid: d.Paid().String(), Bytes: d.Bytes,
		Settled: bigStr(d.SettledAmount), Commission: bigStr(d.Commission), Refunded: bigStr(d.RefundAmount),
	}
	if d.Pending != agreement.TxNone {
		v.Pending = d.Pending.String()
	}
	if sv := d.Voucher; sv != nil {
		v.Voucher = &sdk.Voucher{
			Amount: bigStr(sv.Voucher.Amount), Bytes: sv.Voucher.Bytes,
			ConnLogHash: sv.Voucher.ConnLogHash.Hex(), Signature: fmt.Sprintf("0x%x", sv.Signature),
		}
	}
	for _, e := range history {
		v.History = append(v.History, sdk.DealEntry{
			At: unixTime(e.At), Event: e.Event, From: e.From.String(), To: e.To.String(),
			Status: e.Status.String(), Reason: string(e.Reason),
		})
	}
	return v
}
