package node

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/internal/crash"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/node/deals"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Deals. The deal driver (package node/deals) owns the state machine, the
// deal records with their outboxes, the chain watcher and the proposer;
// this file wires it to the node: the badger store, the libp2p transport
// (dealnet.go), the escrow client, the order book, and the hooks that turn
// deal changes into tunnel permissions, offer versions and API events.

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
	// Confirmations: deal events count once this many blocks are on top
	// of theirs (default 0, right for a dev chain).
	Confirmations uint64
	// SeriesBackoff is the wait before an offer that failed a request is
	// proposed to again (default 10 s, doubling).
	SeriesBackoff time.Duration
}

var errNoDeals = errors.New("node: deals need a chain (--chain-rpc)")

// defaultIntervalBytes: the pay-ahead interval in bytes, large enough that
// a fast transfer is not throttled by the voucher round trip (each voucher
// is synced to disk on both sides), small enough that what either side can
// lose stays small (16 MiB at 0.01 token per GB is 0.00017 token).
const defaultIntervalBytes = 16 << 20

// newDeals builds the driver from the persisted records. It needs the
// chain (the escrow's domain and grace).
func (n *Node) newDeals(ctx context.Context) error {
	if n.escrow == nil {
		return nil
	}
	p, err := n.escrow.EscrowParams(ctx)
	if err != nil {
		return err
	}
	mc := agreement.DefaultConfig(agreement.NewKeySigner(n.key), n.escrow.Contracts().Domain())
	dc := n.o.deals
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	if dc.IntervalSeconds > 0 {
		mc.IntervalSeconds = dc.IntervalSeconds
	}
	mc.IntervalBytes = defaultIntervalBytes
	if dc.IntervalBytes > 0 {
		mc.IntervalBytes = dc.IntervalBytes
	}
	set(&mc.ProposalTimeout, dc.ProposalTimeout)
	set(&mc.ReservationTimeout, dc.ReservationTimeout)
	set(&mc.FundingTimeout, dc.FundingTimeout)
	set(&mc.PaymentGrace, dc.PaymentGrace)
	set(&mc.TxRetry, dc.TxRetry)
	mc.RefundGrace = time.Duration(p.GraceSeconds) * time.Second
	cfg := deals.Config{
		Machine: mc, Tick: n.o.dealTick(), Confirmations: n.dealConfirmations(),
		TrafficBudgetGB: dc.TrafficBudgetGB, SeriesBackoff: dc.SeriesBackoff, Now: n.o.clock,
	}
	d, err := deals.New(cfg, deals.NewBadgerStore(n.db), dealTransport{n}, dealChain{n.escrow, n.metrics}, dealOffers{n}, dealHooks{n},
		n.o.logger.With("component", "deals", "address", n.addr.Hex()))
	if err != nil {
		return err
	}
	n.deals = d
	n.metrics.seedDeals(d.Deals())
	n.metrics.attachDeals(d.Deals)
	return nil
}

// registerOffers tells the driver about the node's live own offers (at
// start, before the driver runs its first proposals).
func (n *Node) registerOffers(ctx context.Context) {
	own, err := n.book.List(orderbook.Query{Maker: n.addr, Kind: orderbook.KindOffer})
	if err != nil {
		n.log.Warn("list own offers", "err", err)
		return
	}
	for _, o := range own {
		n.registerOwnOffer(ctx, o)
	}
}

// registerOwnOffer tells the driver about an own offer version.
func (n *Node) registerOwnOffer(ctx context.Context, o *orderbook.Order) {
	if n.deals == nil || o.Kind != orderbook.KindOffer {
		return
	}
	n.offerMu.Lock()
	if last := n.lastOffer[o.Nonce]; last == nil || last.Version <= o.Version {
		n.lastOffer[o.Nonce] = o
	}
	n.offerMu.Unlock()
	if err := n.deals.SetOffer(ctx, o); err != nil {
		n.log.Warn("register offer for deals", "order", o.ID().Hex(), "err", err)
	}
}

// ---- the chain ----

// dealChain is the escrow as the driver sees it; its calls are timed and
// their failures counted in the metrics.
type dealChain struct {
	c *chain.Client
	m *metrics
}

func (c dealChain) Submit(ctx context.Context, tx agreement.Tx) (err error) {
	ctx = chain.WithTxSent(ctx, func(common.Hash) { crash.Point("tx.sent." + tx.Kind.String()) })
	start := time.Now()
	defer func() { c.m.chainTxDone(tx.Kind.String(), "submit", start, err) }()
	switch tx.Kind {
	case agreement.TxOpen:
		_, err = c.c.Open(ctx, tx.Terms, tx.ProviderSig, tx.RequesterSig)
	case agreement.TxSettle:
		_, err = c.c.Settle(ctx, tx.Terms, tx.Voucher.Voucher, tx.Voucher.Signature)
	case agreement.TxRefund:
		_, err = c.c.Refund(ctx, tx.Terms)
	case agreement.TxCancel:
		_, err = c.c.Cancel(ctx, tx.Terms, tx.ProviderSig, tx.RequesterSig)
	default:
		err = fmt.Errorf("node: unknown transaction kind %s", tx.Kind)
	}
	return err
}

// Classify tells reverts that are final from those that say the outcome
// is on chain already and from failures that may pass.
func (dealChain) Classify(err error) deals.TxOutcome {
	switch {
	case chain.IsRevert(err, "DealExists"), chain.IsRevert(err, "DealNotOpen"):
		return deals.TxOnChain
	case chain.IsRevert(err, "RefundTooEarly"):
		return deals.TxRetry // the chain's clock is a little behind
	case errors.Is(err, chain.ErrReverted), errors.Is(err, chain.ErrInvalidArgument):
		return deals.TxFinal
	}
	return deals.TxRetry // connection, nonce, fee, gas funds, no receipt yet
}

func (c dealChain) Events(ctx context.Context, from, to uint64) ([]deals.Event, error) {
	evs, err := c.c.DealEventsIn(ctx, from, to)
	if err != nil {
		c.m.chainCall("events", err)
		return nil, err
	}
	out := make([]deals.Event, 0, len(evs))
	for _, e := range evs {
		var ev agreement.Event
		switch e.Kind {
		case chain.EventOpened:
			ev = agreement.Opened{DealID: e.DealID, MaxAmount: e.MaxAmount}
		case chain.EventSettled:
			ev = agreement.Settled{DealID: e.DealID, Amount: e.Amount, Commission: e.Commission, Bytes: e.Bytes, ConnLogHash: e.ConnLogHash}
		case chain.EventRefunded:
			ev = agreement.Refunded{DealID: e.DealID, Amount: e.Amount}
		case chain.EventCancelled:
			ev = agreement.Cancelled{DealID: e.DealID}
		default:
			continue
		}
		out = append(out, deals.Event{Ev: ev, DealID: e.DealID, Block: e.Block, Hash: e.BlockHash})
	}
	return out, nil
}

func (c dealChain) Header(ctx context.Context, number *uint64) (deals.Header, error) {
	num, hash, t, err := c.c.BlockAt(ctx, number)
	if err != nil {
		if isNotFound(err) {
			return deals.Header{}, fmt.Errorf("%w: %w", deals.ErrNoBlock, err)
		}
		c.m.chainCall("header", err)
		return deals.Header{}, err
	}
	return deals.Header{Number: num, Hash: hash, Time: t}, nil
}

// ---- the book ----

// dealOffers is the order book as the proposer sees it.
type dealOffers struct{ n *Node }

func (o dealOffers) OwnRequests() []*orderbook.Order {
	reqs, err := o.n.book.List(orderbook.Query{Maker: o.n.addr, Kind: orderbook.KindRequest})
	if err != nil {
		o.n.log.Warn("list own requests", "err", err)
	}
	return reqs
}

func (o dealOffers) Candidates(r *orderbook.Order, now time.Time) []matching.Fill {
	book, ids, err := o.n.book.ListWithIDs(orderbook.Query{Country: r.Shard(), Kind: orderbook.KindOffer})
	if err != nil {
		return nil
	}
	snap := matching.NewSnapshotWithIDs(append(book, r), append(ids, r.ID()))
	cands, err := matching.Candidates(snap, r, now, matching.Params{})
	if err != nil {
		return nil
	}
	o.n.rankCandidates(cands)
	return cands
}

func (o dealOffers) Reachable(maker common.Address) bool {
	_, err := o.n.peerOf(maker)
	return err == nil
}

func (o dealOffers) RequestOpen(id common.Hash) bool {
	r, err := o.n.book.Get(id)
	return err == nil && r.Maker == o.n.addr && r.Expires > uint64(o.n.now().Unix()) && !o.n.book.Cancelled(id)
}

// ---- hooks ----

// dealHooks is what the node does about deal changes, on the driver's
// loop: nothing here may block.
type dealHooks struct{ n *Node }

func (h dealHooks) Updated(recs []deals.Record) {
	n := h.n
	n.metrics.dealsUpdated(recs)
	for i := range recs {
		r := &recs[i]
		v := dealView(r, false)
		n.events.publish("deal.updated", v)
		n.geoCheck(r)
		n.rateDeal(&r.Deal)
		if r.Deal.Role == agreement.RoleProvider && r.Deal.Voucher != nil {
			n.raiseAllowance(r.Deal.ID, r.Deal.Voucher.Voucher.Bytes+2*n.deals.IntervalBytes())
		}
		if r.Peer.ID != "" {
			if pid, err := peer.Decode(r.Peer.ID); err == nil {
				n.learnPeer(r.Deal.Peer(), pid)
			}
		}
	}
	n.endTunnels(recs)
}

func (h dealHooks) Permissions(ps []agreement.Permission) { h.n.stopTunnels(ps) }

func (h dealHooks) Reservations(rs []agreement.Reservation) {
	n := h.n
	pools := map[uint64]bool{}
	for _, r := range rs {
		pools[r.Pool] = true
	}
	if n.runWG == nil {
		return
	}
	n.runWG.Add(1)
	go func() {
		defer n.runWG.Done()
		for pool := range pools {
			n.republishOffer(n.runCtx, pool)
		}
	}()
}

func (h dealHooks) Usage(id common.Hash) (deals.Metered, bool) { return h.n.providerUsage(id) }

func (h dealHooks) VoucherOK(id, connLog common.Hash) error { return h.n.voucherOK(id, connLog) }

// republishOffer publishes a new version of an own offer series with the
// IPs left free, or withdraws it when none are.
func (n *Node) republishOffer(ctx context.Context, pool uint64) {
	n.republishMu.Lock()
	defer n.republishMu.Unlock()
	avail, err := n.deals.Available(ctx, pool)
	if err != nil {
		return
	}
	cur, err := n.currentOffer(pool)
	if err != nil {
		n.log.Warn("own offer", "nonce", pool, "err", err)
		return
	}
	if cur != nil && cur.IPs == avail {
		return
	}
	if avail == 0 {
		if cur != nil {
			if _, err := n.Cancel(ctx, cur.ID()); err != nil {
				n.log.Warn("withdraw fully reserved offer", "order", cur.ID().Hex(), "err", err)
			}
		}
		return
	}
	n.offerMu.Lock()
	next := n.lastOffer[pool]
	n.offerMu.Unlock()
	if next == nil {
		next = cur
	}
	if next == nil {
		return // withdrawn before a restart: nothing to base a version on
	}
	o := *next
	o.Version, o.IPs, o.Created, o.Signature = next.Version+1, avail, uint64(n.now().Unix()), nil
	if o.Created >= o.Expires {
		return
	}
	if err := o.Sign(n.key); err != nil {
		return
	}
	if err := n.addLocal(ctx, &o); err != nil {
		n.log.Warn("publish offer version", "nonce", pool, "err", err)
		return
	}
	n.registerOwnOffer(ctx, &o)
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

// ---- peers ----

// learnPeer remembers the PeerID behind an address.
func (n *Node) learnPeer(a common.Address, p peer.ID) {
	n.peersMu.Lock()
	n.peerIDs[a] = p
	n.peersMu.Unlock()
}

// peerOf finds the PeerID behind an address: learnt from a stream or a
// deal record, or recovered from the signature of one of its orders.
func (n *Node) peerOf(a common.Address) (peer.ID, error) {
	n.peersMu.Lock()
	p, ok := n.peerIDs[a]
	n.peersMu.Unlock()
	if ok {
		return p, nil
	}
	if n.deals != nil {
		if hint, ok := n.deals.PeerOf(a); ok {
			if pid, err := n.usePeerHint(hint); err == nil {
				n.learnPeer(a, pid)
				return pid, nil
			}
		}
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

// usePeerHint puts a deal record's addresses of a counterparty into the
// peerstore, so that it is dialled without a DHT lookup.
func (n *Node) usePeerHint(h deals.Peer) (peer.ID, error) {
	pid, err := peer.Decode(h.ID)
	if err != nil {
		return "", err
	}
	var addrs []ma.Multiaddr
	for _, s := range h.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) > 0 && len(n.host.Peerstore().Addrs(pid)) == 0 {
		n.host.Peerstore().AddAddrs(pid, addrs, time.Hour)
	}
	return pid, nil
}

// ---- the API ----

// DealServing reports whether the tunnel may carry traffic for a deal now:
// on a provider, from the deal's requester; on a requester, to its provider.
func (n *Node) DealServing(id common.Hash) (agreement.Permission, bool) {
	if n.deals == nil {
		return agreement.Permission{}, false
	}
	return n.deals.Serving(id)
}

// dealRecord is a deal's record from the driver's view.
func (n *Node) dealRecord(id common.Hash) (deals.Record, bool) {
	if n.deals == nil {
		return deals.Record{}, false
	}
	return n.deals.Deal(id)
}

// Deals implements api.Backend.
func (n *Node) Deals(ctx context.Context) ([]sdk.Deal, error) {
	if n.deals == nil {
		return []sdk.Deal{}, nil
	}
	recs := n.deals.Deals()
	out := make([]sdk.Deal, len(recs))
	for i := range recs {
		out[i] = dealView(&recs[i], false)
		n.withGeo(&out[i])
	}
	return out, nil
}

// Deal implements api.Backend.
func (n *Node) Deal(ctx context.Context, id common.Hash) (sdk.Deal, error) {
	r, ok := n.dealRecord(id)
	if !ok {
		return sdk.Deal{}, fmt.Errorf("%w: %s", agreement.ErrUnknownDeal, id.Hex())
	}
	v := dealView(&r, true)
	n.withGeo(&v)
	return v, nil
}

// CloseDeal implements api.Backend.
func (n *Node) CloseDeal(ctx context.Context, id common.Hash) (sdk.Deal, error) {
	if n.deals == nil {
		return sdk.Deal{}, errNoDeals
	}
	if err := n.deals.Close(ctx, id); err != nil {
		return sdk.Deal{}, err
	}
	crash.Point("deal.close.requested")
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

// dealView is the API's view of a deal, with its history if asked.
func dealView(r *deals.Record, history bool) sdk.Deal {
	d := &r.Deal
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
		Unacked: len(r.Out), TxError: d.TxError, Acked: bigStr(r.Acked),
	}
	if d.Pending != agreement.TxNone {
		v.Pending = d.Pending.String()
	}
	if r.PeerStatus != agreement.StatusNone {
		v.PeerStatus = r.PeerStatus.String()
	}
	if sv := d.Voucher; sv != nil {
		v.Voucher = &sdk.Voucher{
			Amount: bigStr(sv.Voucher.Amount), Bytes: sv.Voucher.Bytes,
			ConnLogHash: sv.Voucher.ConnLogHash.Hex(), Signature: fmt.Sprintf("0x%x", sv.Signature),
		}
	}
	if history {
		for _, e := range r.History {
			v.History = append(v.History, sdk.DealEntry{
				At: unixTime(e.At), Event: e.Event, From: e.From.String(), To: e.To.String(),
				Status: e.Status.String(), Reason: string(e.Reason), Detail: e.Detail,
			})
		}
	}
	return v
}
