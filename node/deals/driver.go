package deals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/orderbook"
)

// Driver runs the deals of one node. New loads the records and starts
// nothing; Run owns the core on one loop goroutine, runs the chain watcher
// and the proposer, and joins every goroutine it started (exchanges and
// transactions included) before it returns. The query methods (Deals,
// Deal, Serving…) read a snapshot the loop keeps current and are safe
// for concurrent use at any time; the commands (Close, SetOffer, Usage,
// Receive…) need Run.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	core   *core
	tr     Transport
	chain  Chain
	offers Offers
	hooks  Hooks

	inputs  chan input
	started chan struct{}   // closed when Run has started the loop
	stopped chan struct{}   // closed when the loop ends
	kick    chan struct{}   // wakes the proposer
	wake    chan struct{}   // wakes the chain watcher
	runCtx  context.Context // set before running
	running atomic.Bool
	wg      sync.WaitGroup
	cursor  Cursor

	chainTime atomic.Uint64

	viewMu sync.RWMutex
	views  map[common.Hash]Record
	perms  map[common.Hash]agreement.Permission
}

type input struct {
	fn   func(c *core) error
	done chan error // nil: nobody waits
}

// New loads the driver's state from store. cfg.Machine must be complete
// (agreement.DefaultConfig with the node's signer and the escrow's
// domain).
func New(cfg Config, store Store, tr Transport, ch Chain, offers Offers, hooks Hooks, log *slog.Logger) (*Driver, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := agreement.New(cfg.Machine)
	if err != nil {
		return nil, err
	}
	d := &Driver{
		cfg: cfg, log: log, tr: tr, chain: ch, offers: offers, hooks: hooks,
		inputs: make(chan input), started: make(chan struct{}), stopped: make(chan struct{}), kick: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		views: map[common.Hash]Record{}, perms: map[common.Hash]agreement.Permission{},
	}
	d.core = newCore(cfg, m, store, offers, hooks, log)
	d.core.chainTime = d.chainTime.Load
	if err := d.core.restore(cfg.Now()); err != nil {
		return nil, err
	}
	if d.cursor, err = store.LoadCursor(); err != nil {
		return nil, fmt.Errorf("deals: load chain cursor: %w", err)
	}
	for id, r := range d.core.recs {
		d.views[id] = r.clone()
	}
	return d, nil
}

// Run drives the deals until ctx ends or a record cannot be saved (then
// it returns ErrStore's error).
func (d *Driver) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.runCtx = ctx
	d.running.Store(true)
	close(d.started)
	errc := make(chan error, 1)
	var loops sync.WaitGroup
	loops.Add(3)
	go func() {
		defer loops.Done()
		defer close(d.stopped)
		if err := d.loop(ctx); err != nil {
			errc <- err
		}
		cancel()
	}()
	go func() { defer loops.Done(); d.watch(ctx) }()
	go func() { defer loops.Done(); d.proposer(ctx) }()
	loops.Wait()
	d.wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (d *Driver) loop(ctx context.Context) error {
	c := d.core
	// What Restore produced (grants of deals that were serving) and the
	// syncs with every counterparty of an open deal.
	if err := c.tick(d.cfg.Now()); err != nil {
		return err
	}
	d.dispatch(ctx)
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	// start wakes the loop when a funded deal's service may begin (see
	// startDue); the tick covers every other timer.
	start := time.NewTimer(time.Hour)
	start.Stop()
	defer start.Stop()
	var startAt time.Time
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case in := <-d.inputs:
			err = in.fn(c)
			d.dispatch(ctx)
			if in.done != nil {
				in.done <- err
			}
		case <-t.C:
			err = c.tick(d.cfg.Now())
			d.dispatch(ctx)
		case <-start.C:
			startAt = time.Time{}
			err = c.tick(d.cfg.Now())
			d.dispatch(ctx)
		}
		now := d.cfg.Now()
		if due := c.startDue(now); !due.IsZero() && (startAt.IsZero() || due.Before(startAt)) {
			startAt = due
			start.Reset(due.Sub(now))
		}
		if errors.Is(err, ErrStore) {
			d.log.Error("deal driver stops: a record could not be saved", "err", err)
			return err
		}
	}
}

// dispatch acts on the effects of the last input: the records are saved.
func (d *Driver) dispatch(ctx context.Context) {
	e := d.core.takeEffects()
	if e.empty() {
		return
	}
	if len(e.updated) > 0 || len(e.perms) > 0 {
		d.viewMu.Lock()
		for _, r := range e.updated {
			d.views[r.Deal.ID] = r
		}
		for _, p := range e.perms {
			if p.Allow {
				d.perms[p.DealID] = p
			} else {
				delete(d.perms, p.DealID)
			}
		}
		d.viewMu.Unlock()
	}
	if e.pollChain {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	if len(e.perms) > 0 {
		d.hooks.Permissions(e.perms)
	}
	if len(e.updated) > 0 {
		d.hooks.Updated(e.updated)
	}
	if len(e.reservations) > 0 {
		d.hooks.Reservations(e.reservations)
	}
	for _, s := range e.sends {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.log.Debug("deal packet out", "peer", s.To.Hex(), "msgs", msgKinds(s.Packet), "acks", len(s.Packet.Acks), "sync", s.Packet.Sync)
			xctx, cancel := context.WithTimeout(ctx, d.cfg.ExchangeTimeout)
			reply, reached, err := d.tr.Exchange(xctx, s.To, s.Hint, s.Packet)
			cancel()
			if ctx.Err() != nil {
				return
			}
			d.post(ctx, func(c *core) error { return c.replied(d.cfg.Now(), s.To, s.Packet, reply, reached, err) })
		}()
	}
	for _, tx := range e.txs {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			err := d.chain.Submit(ctx, tx)
			if ctx.Err() != nil {
				return // a restart resubmits what is pending
			}
			outcome := TxRetry
			if err != nil {
				outcome = d.chain.Classify(err)
			}
			d.post(ctx, func(c *core) error { return c.txDone(d.cfg.Now(), tx, err, outcome) })
		}()
	}
}

// post hands fn to the loop without waiting for it.
func (d *Driver) post(ctx context.Context, fn func(c *core) error) {
	select {
	case d.inputs <- input{fn: fn}:
	case <-ctx.Done():
	case <-d.stopped:
	}
}

// do runs fn on the loop and waits until it and its effects are done. It
// waits for Run to start. On an error (ctx ended, the driver stopped) fn
// may still run later: what fn writes may be read only after a nil error.
func (d *Driver) do(ctx context.Context, fn func(c *core) error) error {
	select {
	case <-d.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	select {
	case d.inputs <- input{fn: fn, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopped:
		return ErrStopped
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopped:
		return ErrStopped
	}
}

// ---- commands ----

// Receive handles a packet that arrived on a deal stream from the
// counterparty `from` (authenticated by the secure channel) and returns
// the answer to write back; everything the packet caused is saved and
// acted on first.
func (d *Driver) Receive(ctx context.Context, from common.Address, hint Peer, p agreement.Packet) (agreement.Packet, error) {
	var reply agreement.Packet
	err := d.do(ctx, func(c *core) error {
		var err error
		reply, err = c.receive(d.cfg.Now(), from, hint, p)
		return err
	})
	if err != nil {
		// fn may still run after do gave up: reply is not read then.
		return agreement.Packet{}, err
	}
	return reply, nil
}

// Close ends a deal from this side.
func (d *Driver) Close(ctx context.Context, id common.Hash) error {
	return d.do(ctx, func(c *core) error {
		return c.command(d.cfg.Now(), agreement.CloseDeal{At: d.cfg.Now(), DealID: id})
	})
}

// Usage reports a deal's metered bytes and connection log.
func (d *Driver) Usage(ctx context.Context, id common.Hash, u Metered) error {
	return d.do(ctx, func(c *core) error {
		return c.command(d.cfg.Now(), agreement.Usage{At: d.cfg.Now(), DealID: id, Bytes: u.Bytes, ConnLogHash: u.ConnLog, ConnLogLen: u.ConnLogLen})
	})
}

// SetOffer registers an own offer version for proposals.
func (d *Driver) SetOffer(ctx context.Context, o *orderbook.Order) error {
	return d.do(ctx, func(c *core) error { return c.setOffer(d.cfg.Now(), o) })
}

// Available is how many IPs of an own offer series are free.
func (d *Driver) Available(ctx context.Context, pool uint64) (uint32, error) {
	var n uint32
	err := d.do(ctx, func(c *core) error { n = c.m.Available(pool); return nil })
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Capacity is the total IPs of an own offer series, and whether it is
// known.
func (d *Driver) Capacity(ctx context.Context, pool uint64) (uint32, bool, error) {
	var n uint32
	var ok bool
	err := d.do(ctx, func(c *core) error { n, ok = c.capacity[pool]; return nil })
	if err != nil {
		return 0, false, err
	}
	return n, ok, nil
}

// PeerConnected tells the driver a counterparty is connected: open deals
// with it are synced.
func (d *Driver) PeerConnected(a common.Address) {
	if !d.running.Load() {
		return
	}
	ctx := d.runCtx
	go d.post(ctx, func(c *core) error { c.peerConnected(d.cfg.Now(), a); return nil })
}

// KickProposer makes the proposer look at the own requests now.
func (d *Driver) KickProposer() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// ChainTime is the latest block time the watcher saw.
func (d *Driver) ChainTime() uint64 { return d.chainTime.Load() }

// IntervalBytes is the pay-ahead interval in bytes.
func (d *Driver) IntervalBytes() uint64 { return d.cfg.Machine.IntervalBytes }

// ---- queries ----

// Deals returns the records, newest proposal first.
func (d *Driver) Deals() []Record {
	d.viewMu.RLock()
	out := make([]Record, 0, len(d.views))
	for _, r := range d.views {
		out = append(out, r)
	}
	d.viewMu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Deal.ProposedAt != out[j].Deal.ProposedAt {
			return out[i].Deal.ProposedAt > out[j].Deal.ProposedAt
		}
		return out[i].Deal.ID.Cmp(out[j].Deal.ID) < 0
	})
	return out
}

// Deal returns one record (a copy the caller owns apart from its
// history, which it must not change).
func (d *Driver) Deal(id common.Hash) (Record, bool) {
	d.viewMu.RLock()
	defer d.viewMu.RUnlock()
	r, ok := d.views[id]
	return r, ok
}

// Serving reports whether the tunnel may carry a deal's traffic now, and
// for whom.
func (d *Driver) Serving(id common.Hash) (agreement.Permission, bool) {
	d.viewMu.RLock()
	defer d.viewMu.RUnlock()
	p, ok := d.perms[id]
	return p, ok
}

// ServingDeals lists the deals the machine lets carry traffic in role.
func (d *Driver) ServingDeals(role agreement.Role) []common.Hash {
	d.viewMu.RLock()
	defer d.viewMu.RUnlock()
	var out []common.Hash
	for id, p := range d.perms {
		if p.Role == role {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cmp(out[j]) < 0 })
	return out
}

// PeerOf is the last known identity of a counterparty from its deals.
func (d *Driver) PeerOf(a common.Address) (Peer, bool) {
	d.viewMu.RLock()
	defer d.viewMu.RUnlock()
	var best Peer
	var at time.Time
	for _, r := range d.views {
		if r.Deal.Peer() == a && r.Peer.ID != "" && !r.Updated.Before(at) {
			best, at = r.Peer, r.Updated
		}
	}
	return best, best.ID != ""
}
