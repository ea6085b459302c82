package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/node/deals"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/tunnel"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The tunnel. A provider serves /ipsx/tunnel/1.0.0 streams through its
// exit (policy checked at dial time, metered per deal, only for the deal's
// requester while the deal machine grants it). A requester runs SOCKS5 and
// HTTP proxies on loopback whose connections become tunnel streams to the
// provider of an active deal chosen by the proxy username's route. Both
// sides report each deal's bytes and connection-log head to the machine,
// which turns them into vouchers (requester) and cut-offs (provider).

type peerKey struct{}

// tunnels is the node's tunnel state; its mutex guards the maps.
type tunnels struct {
	mu       sync.Mutex
	meters   map[common.Hash]*tunnel.Meter   // provider: per deal
	logs     map[common.Hash]*requesterMeter // requester: per deal
	sessions map[string]stickyBind           // credential and sticky session -> deal
	country  map[common.Hash]string          // requester: deal -> offer's country (older data dirs)
	places   map[common.Hash]dealPlace       // requester: deal -> its offer's place and IP type
	complete map[common.Hash]bool            // provider: the deal's log holds every connection (no restart since)
	egress   map[common.Hash][]netip.Addr    // provider: deal -> its exit IPs
	down     map[common.Hash]time.Time       // requester: deal -> until when its provider counts as unreachable
	next     atomic.Uint64                   // rotation counter
	exit     *tunnel.Exit
	kick     chan struct{}             // wakes the usage reporter
	flows    map[peer.ID]chan struct{} // requester: open tunnel streams per provider (a semaphore)
	socksLn  net.Listener
	httpLn   net.Listener
	auth     *proxyAuth  // nil with --no-proxy-auth
	vpn      *vpnService // the requester's VPN (vpn.go)
}

// stickyBind is a sticky session's deal, kept until the session's
// lifetime (sesstime) is over; the deal's end ends it sooner.
type stickyBind struct {
	deal  common.Hash
	until time.Time
}

// dealPlace is what a requester's deal can serve: its offer's location
// and IP type (IPAny when unknown: a deal from before they were kept).
type dealPlace struct {
	loc orderbook.Location
	typ orderbook.IPType
}

func sessionKey(cred, session string) string { return cred + "\x00" + session }

// requesterMeter counts a deal's bytes on the requester's side and keeps
// the same connection log as the provider.
type requesterMeter struct {
	bytes atomic.Uint64
	log   tunnel.ConnLog // safe for concurrent use
}

const keyDealCountry = "deal/country/"

func (n *Node) startTunnel(ctx context.Context, wg *sync.WaitGroup) error {
	t := &tunnels{
		meters: map[common.Hash]*tunnel.Meter{}, logs: map[common.Hash]*requesterMeter{},
		sessions: map[string]stickyBind{}, country: map[common.Hash]string{},
		places: map[common.Hash]dealPlace{}, complete: map[common.Hash]bool{},
		egress: map[common.Hash][]netip.Addr{}, flows: map[peer.ID]chan struct{}{},
		down: map[common.Hash]time.Time{}, kick: make(chan struct{}, 1),
	}
	idle, err := n.cfg.tunnelIdle()
	if err != nil {
		return err
	}
	n.tun = t
	t.vpn = newVPNService(n)
	_ = n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyDealCountry)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id := common.HexToHash(string(it.Item().Key()[len(keyDealCountry):]))
			_ = it.Item().Value(func(v []byte) error { t.country[id] = string(v); return nil })
		}
		return nil
	})
	var own []netip.Addr
	for _, a := range n.host.Addrs() {
		if ip, err := a.ValueForProtocol(ma.P_IP4); err == nil {
			if p, err := netip.ParseAddr(ip); err == nil && !p.IsLoopback() && !p.IsUnspecified() {
				own = append(own, p)
			}
		}
	}
	pc := tunnel.PolicyConfig{OwnAddrs: own, UnsafeAllowLoopbackForTests: n.o.unsafeLoopbackExit}
	for _, p := range n.cfg.ExitAllow {
		pc.AllowPrefixes = append(pc.AllowPrefixes, netip.MustParsePrefix(p)) // validated with the config
	}
	for _, p := range n.cfg.ExitDeny {
		pc.DenyPrefixes = append(pc.DenyPrefixes, netip.MustParsePrefix(p))
	}
	policy, err := tunnel.NewPolicy(pc)
	if err != nil {
		return err
	}
	t.exit, err = tunnel.NewExit(policy, n.authorizeTunnel, tunnel.WithExitIdleTimeout(idle))
	if err != nil {
		return err
	}
	n.handle(tunnel.ProtocolID, func(s network.Stream) {
		sctx := context.WithValue(n.runCtx, peerKey{}, s.Conn().RemotePeer())
		cs := n.metrics.providerStream(s)
		err := t.exit.ServeStream(sctx, cs)
		cs.done()
		n.metrics.exitServed(err)
		n.logTunnelStream(s.Conn().RemotePeer(), err)
	})
	router := nodeRouter{n}
	plog := n.o.logger.With("component", "proxy")
	popts := []tunnel.ProxyOption{tunnel.WithLogger(plog), tunnel.WithTunnelIdleTimeout(idle), tunnel.WithObserver(n.metrics.proxyResult)}
	if !n.cfg.NoProxyAuth {
		if t.auth, err = newProxyAuth(n); err != nil {
			return err
		}
		// One limiter for both proxies: failed attempts count together.
		lim := tunnel.NewAuthLimiter(tunnel.DefaultAuthBurst, tunnel.DefaultAuthRefill)
		popts = append(popts, tunnel.WithAuth(t.auth), tunnel.WithAuthLimiter(lim))
	}
	for _, l := range []struct {
		name, addr string
		ln         *net.Listener
		serve      func(context.Context, net.Listener) error
	}{
		{"socks", n.cfg.SOCKS, &t.socksLn, tunnel.NewSOCKSServer(router, popts...).Serve},
		{"http-proxy", n.cfg.HTTP, &t.httpLn, tunnel.NewHTTPProxy(router, popts...).Serve},
	} {
		if l.addr == "" || l.addr == "off" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("node: proxy listen on %s: %w", l.addr, err)
		}
		*l.ln = ln
		lvl := slog.LevelInfo
		if !IsLoopbackAddr(ln.Addr().String()) {
			lvl = slog.LevelWarn
		}
		plog.Log(ctx, lvl, "proxy listening", "proxy", l.name, "addr", ln.Addr().String(),
			"auth", !n.cfg.NoProxyAuth, "loopback", IsLoopbackAddr(ln.Addr().String()))
		serve, addr := l.serve, ln.Addr()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A proxy that stops serving ends the node: a requester whose
			// proxy is gone must not look healthy.
			if err := serve(ctx, ln); err != nil && ctx.Err() == nil {
				n.fail(fmt.Errorf("node: proxy on %s: %w", addr, err))
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); n.reportUsage(ctx) }()
	return nil
}

// SOCKSAddr and HTTPProxyAddr are where the proxies listen (nil when off).
func (n *Node) SOCKSAddr() net.Addr {
	if n.tun == nil || n.tun.socksLn == nil {
		return nil
	}
	return n.tun.socksLn.Addr()
}

func (n *Node) HTTPProxyAddr() net.Addr {
	if n.tun == nil || n.tun.httpLn == nil {
		return nil
	}
	return n.tun.httpLn.Addr()
}

// authorizeTunnel is the exit's gate: the stream's peer must be the deal's
// requester and the deal machine must grant the deal now.
func (n *Node) authorizeTunnel(ctx context.Context, h tunnel.Header) (tunnel.Grant, error) {
	pid, _ := ctx.Value(peerKey{}).(peer.ID)
	addr, err := AddressOf(pid)
	if err != nil {
		return tunnel.Grant{}, tunnel.ErrUnauthorized
	}
	perm, ok := n.DealServing(h.DealID)
	if !ok || perm.Role != agreement.RoleProvider {
		// A deal not yet paid (the requester's first voucher is still on
		// its way: the requester starts routing as it signs it) or whose
		// paid-ahead amount is used up is "not paid": the requester may pay
		// and retry. Anything else is inactive.
		if r, ok := n.dealRecord(h.DealID); ok && r.Deal.Role == agreement.RoleProvider &&
			awaitsPayment(r.Deal.Provider) && r.Deal.Terms.Requester == addr {
			return tunnel.Grant{}, fmt.Errorf("%w: %s", tunnel.ErrNotPaid, h.DealID.Hex())
		}
		return tunnel.Grant{}, fmt.Errorf("%w: %s", tunnel.ErrDealInactive, h.DealID.Hex())
	}
	if perm.Peer != addr {
		return tunnel.Grant{}, fmt.Errorf("%w: %s is not the requester of %s", tunnel.ErrUnauthorized, addr.Hex(), h.DealID.Hex())
	}
	if h.Flow == tunnel.FlowUDP && !n.dealCarriesUDP(h.DealID) {
		return tunnel.Grant{}, fmt.Errorf("%w: udp: the deal's offer carries tcp only", tunnel.ErrNotAllowed)
	}
	return tunnel.Grant{Egress: n.egressFor(h.DealID), Meter: n.meterFor(h.DealID)}, nil
}

// dealCarriesUDP reports whether a provider's deal may carry UDP flows:
// its offer lists udp. The deal's offer version is often gone from the
// book (the deal took its IP, and a version with fewer superseded it);
// then every own offer series must list udp (versions keep their
// series' protocols), else UDP is refused.
func (n *Node) dealCarriesUDP(id common.Hash) bool {
	r, ok := n.dealRecord(id)
	if !ok {
		return false
	}
	if o, err := n.book.Get(r.Deal.Terms.OfferID); err == nil {
		return o.Protocols.Has(orderbook.ProtoUDP)
	}
	n.offerMu.Lock()
	defer n.offerMu.Unlock()
	if len(n.lastOffer) == 0 {
		return false
	}
	for _, o := range n.lastOffer {
		if !o.Protocols.Has(orderbook.ProtoUDP) {
			return false
		}
	}
	return true
}

// awaitsPayment reports whether a provider's deal in status st may still
// be paid for: accepted or funded before the first voucher, or active.
func awaitsPayment(st agreement.Status) bool {
	switch st {
	case agreement.StatusAccepted, agreement.StatusFunded, agreement.StatusActive:
		return true
	}
	return false
}

// egressFor picks the exit IP of a deal's next connection. Without a pool
// every deal leaves from the node's egress. With one, a deal is bound on
// its first connection to as many of the pool's addresses as it rents,
// the least used by other live deals first, and rotates over them.
func (n *Node) egressFor(id common.Hash) netip.Addr {
	pool := n.o.egressPool
	if len(pool) == 0 {
		return n.o.egress
	}
	t := n.tun
	t.mu.Lock()
	defer t.mu.Unlock()
	addrs, ok := t.egress[id]
	if !ok {
		want := uint32(1)
		if r, ok := n.dealRecord(id); ok && r.Deal.Terms.IPs > 0 {
			want = r.Deal.Terms.IPs
		}
		use := map[netip.Addr]int{}
		for did, as := range t.egress {
			if _, live := n.DealServing(did); !live {
				delete(t.egress, did)
				continue
			}
			for _, a := range as {
				use[a]++
			}
		}
		order := append([]netip.Addr(nil), pool...)
		sort.SliceStable(order, func(i, j int) bool { return use[order[i]] < use[order[j]] })
		addrs = order[:min(int(want), len(order))]
		t.egress[id] = addrs
	}
	return addrs[int(t.next.Add(1)-1)%len(addrs)]
}

// meterFor returns the provider's meter of a deal, creating it with the
// deal's deadline, its offer's bandwidth, the bytes its latest voucher pays
// for, and the bytes metered before (a restart).
func (n *Node) meterFor(id common.Hash) *tunnel.Meter {
	t := n.tun
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.meters[id]; ok {
		return m
	}
	cfg := tunnel.MeterConfig{OnStarved: n.kickUsage}
	var used uint64
	if r, ok := n.dealRecord(id); ok {
		cfg.Deadline = time.Unix(int64(r.Deal.Terms.Deadline), 0)
		if o, err := n.book.Get(r.Deal.Terms.OfferID); err == nil {
			cfg.BitsPerSecond = uint64(o.Bandwidth) * 1_000_000
		}
		if v := r.Deal.Voucher; v != nil {
			cfg.Allowance = v.Voucher.Bytes + 2*n.deals.IntervalBytes()
		}
		used = r.Deal.Bytes
	}
	m := tunnel.NewMeter(id, cfg)
	m.Resume(used)
	if rec, ok := n.dealRecord(id); ok && rec.Deal.ConnLogLen > 0 {
		// After a restart the log goes on from its head and length, so
		// that the connections keep their numbers.
		m.Log().Resume(rec.Deal.ConnLogLen, rec.Deal.ConnLogHash)
	}
	t.meters[id] = m
	// A log from before a restart does not know its earlier heads (and
	// connections numbered after the last usage report were lost with the
	// node): it cannot vouch for heads before the restart.
	t.complete[id] = used == 0 && !m.Log().Resumed()
	return m
}

// connLogMatches is the provider's check of the connection-log hash a
// requester's voucher carries (agreement.Voucher.ConnLogHash): it must be
// a head the provider's own log of the deal has had. The requester signs
// its log's head as of signing, so a voucher may lag the provider's
// current head: any of the last tunnel.MaxLogHistory heads matches. It
// answers true when it cannot tell: no meter yet (no connection served:
// only the empty log's zero hash is right, and it is checked), or a log
// restarted with the node (entries before the restart are gone). The deal
// driver asks it for each voucher (dealHooks.VoucherOK) and the node stops
// serving the deal on false.
func (n *Node) connLogMatches(id, hash common.Hash) bool {
	if n.tun == nil {
		return true
	}
	n.tun.mu.Lock()
	m, ok := n.tun.meters[id]
	complete := n.tun.complete[id]
	n.tun.mu.Unlock()
	if !ok {
		// No connection of the deal in this run yet: with traffic in the
		// record, an earlier run kept the log and it cannot be checked
		// (as after any restart, see complete); without, it is empty.
		return hash == (common.Hash{}) || n.dealHasBytes(id)
	}
	if !complete {
		return true
	}
	return m.Log().Had(hash)
}

// dealHasBytes reports whether a deal's record shows metered bytes (then
// its log was kept by an earlier run of the node).
func (n *Node) dealHasBytes(id common.Hash) bool {
	r, ok := n.dealRecord(id)
	return ok && r.Deal.Bytes > 0
}

// raiseAllowance lets a provider's deal carry the bytes a new voucher pays
// for: forwarding paused at the old allowance resumes.
func (n *Node) raiseAllowance(id common.Hash, total uint64) {
	if n.tun == nil {
		return
	}
	n.tun.mu.Lock()
	m, ok := n.tun.meters[id]
	n.tun.mu.Unlock()
	if ok {
		m.SetAllowance(total)
	}
}

// kickUsage asks the usage reporter to report now (non-blocking): when a
// provider's meter runs out of paid bytes, or a requester's deal used a
// good part of its interval, waiting for the next tick would stall the
// transfer.
func (n *Node) kickUsage() {
	select {
	case n.tun.kick <- struct{}{}:
	default:
	}
}

// stopTunnels acts on revoked permissions: a deal that ended has its
// streams cut; one that is only waiting for payment has them paused, so a
// voucher that arrives in time resumes them.
func (n *Node) stopTunnels(ps []agreement.Permission) {
	if n.tun == nil {
		return
	}
	t := n.tun
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range ps {
		if p.Allow {
			continue
		}
		if m, ok := t.meters[p.DealID]; ok {
			r, known := n.dealRecord(p.DealID)
			if known && r.Deal.Provider == agreement.StatusActive {
				s := m.Stats()
				m.SetAllowance(max(s.Up+s.Down, 1))
			} else {
				m.Stop(tunnel.ErrNotPaid)
			}
		}
		for s, b := range t.sessions {
			if b.deal == p.DealID {
				delete(t.sessions, s)
			}
		}
	}
}

// endTunnels cuts the streams of provider deals whose service is over.
func (n *Node) endTunnels(recs []deals.Record) {
	if n.tun == nil {
		return
	}
	n.tun.mu.Lock()
	defer n.tun.mu.Unlock()
	for i := range recs {
		d := &recs[i].Deal
		if d.Role != agreement.RoleProvider {
			continue
		}
		switch d.Provider {
		case agreement.StatusActive, agreement.StatusFunded, agreement.StatusAccepted:
			continue
		}
		if m, ok := n.tun.meters[d.ID]; ok {
			m.Stop(nil)
		}
	}
}

// providerUsage is the provider's current meter reading of a deal.
func (n *Node) providerUsage(id common.Hash) (deals.Metered, bool) {
	if n.tun == nil {
		return deals.Metered{}, false
	}
	n.tun.mu.Lock()
	meter, ok := n.tun.meters[id]
	n.tun.mu.Unlock()
	if !ok {
		return deals.Metered{}, false
	}
	st := meter.Stats()
	head, ln := meter.Log().Head()
	return deals.Metered{Bytes: st.Up + st.Down, ConnLog: head, ConnLogLen: ln}, true
}

// errConnLogMismatch: a voucher co-signs a connection log that is not the
// provider's.
var errConnLogMismatch = errors.New("node: the voucher's connection-log head is none this provider's log had")

// voucherOK is the provider's check of a voucher's connection log: on a
// mismatch the deal's meter stops (every stream cut, new ones refused)
// and the voucher is refused; the deal then ends on its last good one.
func (n *Node) voucherOK(id, connLog common.Hash) error {
	if n.connLogMatches(id, connLog) {
		return nil
	}
	if n.tun != nil {
		n.tun.mu.Lock()
		m, ok := n.tun.meters[id]
		n.tun.mu.Unlock()
		if ok {
			m.Stop(errConnLogMismatch)
		}
	}
	return fmt.Errorf("%w: deal %s, head %s", errConnLogMismatch, id.Hex(), connLog.Hex())
}

// reportUsage feeds each deal's bytes and connection-log head to the
// machine, on both sides.
func (n *Node) reportUsage(ctx context.Context) {
	tick := time.NewTicker(n.o.dealTick())
	defer tick.Stop()
	last := map[common.Hash]deals.Metered{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.tun.kick:
		}
		type usage struct {
			id common.Hash
			m  deals.Metered
		}
		var us []usage
		n.tun.mu.Lock()
		for id, m := range n.tun.meters {
			st := m.Stats()
			head, ln := m.Log().Head()
			us = append(us, usage{id, deals.Metered{Bytes: st.Up + st.Down, ConnLog: head, ConnLogLen: ln}})
		}
		for id, m := range n.tun.logs {
			head, ln := m.log.Head()
			us = append(us, usage{id, deals.Metered{Bytes: m.bytes.Load(), ConnLog: head, ConnLogLen: ln}})
		}
		n.tun.mu.Unlock()
		for _, u := range us {
			if l, ok := last[u.id]; ok && l == u.m {
				continue
			}
			err := n.deals.Usage(ctx, u.id, u.m)
			if err == nil {
				last[u.id] = u.m
			} else if ctx.Err() == nil {
				n.log.Debug("usage report", "deal", u.id.Hex(), "err", err)
			}
		}
	}
}

// placeOf returns what a requester's deal can serve, from the offer it was
// proposed for (in its record; records from before kept it apart), else
// the country alone. The caller holds t.mu.
func (n *Node) placeOf(id common.Hash) dealPlace {
	t := n.tun
	if p, ok := t.places[id]; ok {
		return p
	}
	if rec, ok := n.dealRecord(id); ok && rec.Offer != nil {
		p := dealPlace{loc: rec.Offer.Location, typ: rec.Offer.IPType}
		t.places[id] = p
		return p
	}
	var ol offerLoc
	if err := n.dbGetJSON([]byte(keyOfferLoc+id.Hex()), &ol); err == nil {
		p := dealPlace{loc: ol.Location, typ: ol.IPType}
		t.places[id] = p
		return p
	}
	return dealPlace{loc: orderbook.Location{Country: t.country[id]}}
}

// nodeRouter is the proxies' router: tunnel.Router and
// tunnel.RouteChecker over the node's deals and book.
type nodeRouter struct{ n *Node }

func (r nodeRouter) Route(ctx context.Context, rt tunnel.Route, target string) (net.Conn, error) {
	return r.n.routeTunnel(ctx, rt, target)
}

func (r nodeRouter) CheckRoute(ctx context.Context, rt tunnel.Route) error {
	return r.n.checkRoute(ctx, rt)
}

// RouteUDP makes nodeRouter a tunnel.UDPRouter: SOCKS5 UDP ASSOCIATE's
// flows go as UDP tunnel flows, picked and metered as connections are.
func (r nodeRouter) RouteUDP(ctx context.Context, rt tunnel.Route, target string) (net.Conn, error) {
	return r.n.routeFlow(ctx, rt, target, tunnel.FlowUDP)
}

// checkRoute refuses, right after a proxy client authenticated, a route
// that nothing can serve: no active deal matches it and no offer in the
// node's book does, in a shard the node follows and has synced (else it
// cannot tell, and auto-buy may still find one). The any route is never
// refused here.
func (n *Node) checkRoute(ctx context.Context, r tunnel.Route) error {
	if r.Any() {
		return nil
	}
	if n.hasDealFor(r) {
		return nil
	}
	var shards []string
	if r.Country != "" {
		shards = []string{r.Country}
	} else {
		n.mu.Lock()
		for cc := range n.shards {
			shards = append(shards, cc)
		}
		n.mu.Unlock()
		sort.Strings(shards)
	}
	now := uint64(n.now().Unix())
	for _, cc := range shards {
		n.mu.Lock()
		sh := n.shards[cc]
		n.mu.Unlock()
		if sh == nil || !sh.synced.Load() {
			return nil // a shard the node does not know (yet)
		}
		offers, err := n.book.List(orderbook.Query{Country: cc, Kind: orderbook.KindOffer})
		if err != nil {
			return nil
		}
		for _, o := range offers {
			if o.Maker != n.addr && o.Expires > now && r.Matches(o.Location, o.IPType) {
				return nil
			}
		}
	}
	if len(shards) == 0 {
		return nil
	}
	return fmt.Errorf("%w: no active deal and no offer in %s matches %s", tunnel.ErrRouteRefused, strings.Join(shards, ", "), r.String())
}

// hasDealFor reports whether an active deal of the requester serves r.
func (n *Node) hasDealFor(r tunnel.Route) bool {
	return len(n.dealsFor(r)) > 0 || n.hasDownDealFor(r)
}

// hasDownDealFor reports whether a deal set aside (its provider
// unreachable) serves r: the route is not refused at login for it.
func (n *Node) hasDownDealFor(r tunnel.Route) bool {
	t := n.tun
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.down {
		p := n.placeOf(id)
		if r.Any() || r.Matches(p.loc, p.typ) {
			return true
		}
	}
	return false
}

// dealsFor lists, in id order, the requester's deals the machine lets
// carry traffic whose offer matches r.
func (n *Node) dealsFor(r tunnel.Route) []common.Hash {
	t := n.tun
	ids := n.deals.ServingDeals(agreement.RoleRequester)
	t.mu.Lock()
	defer t.mu.Unlock()
	var ok []common.Hash
	now := time.Now()
	for _, id := range ids {
		if until, down := t.down[id]; down {
			if now.Before(until) {
				continue
			}
			delete(t.down, id)
		}
		p := n.placeOf(id)
		if r.Any() || r.Matches(p.loc, p.typ) {
			ok = append(ok, id)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Cmp(ok[j]) < 0 })
	return ok
}

// routeTunnel is the proxies' router: pick an active deal for the route
// (sticky per session, else rotating), open a tunnel stream to its
// provider, and meter the connection for the deal and for the credential
// that asked (tunnel.CredentialOf).
func (n *Node) routeTunnel(ctx context.Context, r tunnel.Route, target string) (net.Conn, error) {
	return n.routeFlow(ctx, r, target, tunnel.FlowTCP)
}

// routeFlow is routeTunnel for a flow of either type.
func (n *Node) routeFlow(ctx context.Context, r tunnel.Route, target string, flow tunnel.Flow) (net.Conn, error) {
	cred := tunnel.CredentialOf(ctx)
	var err error
	for range maxRouteTries {
		var id common.Hash
		id, err = n.pickDeal(r, cred)
		if err != nil && n.o.autoBuy != nil {
			id, err = n.autoBuy(ctx, r, cred)
		}
		if err != nil {
			return nil, err
		}
		var c *meteredConn
		c, err = n.dealFlow(ctx, id, r.Session, target, flow, cred)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errProviderDown) || ctx.Err() != nil {
			break
		}
		// The deal's provider did not answer: the deal is set aside for
		// a while and the route tries another deal, or buys one.
		n.tun.mu.Lock()
		n.tun.down[id] = time.Now().Add(providerDownFor)
		n.tun.mu.Unlock()
		n.log.Info("provider unreachable; its deal is set aside", "deal", id.Hex(), "for", providerDownFor, "err", err)
	}
	return nil, err // not a nil *meteredConn in a non-nil net.Conn
}

// dealDown reports whether a requester's deal is set aside because its
// provider was unreachable.
func (n *Node) dealDown(id common.Hash) bool {
	if n.tun == nil {
		return false
	}
	n.tun.mu.Lock()
	defer n.tun.mu.Unlock()
	until, ok := n.tun.down[id]
	return ok && time.Now().Before(until)
}

// providerBack ends the set-aside of the deals with a provider that just
// connected.
func (n *Node) providerBack(a common.Address) {
	if n.tun == nil {
		return
	}
	t := n.tun
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.down {
		if r, ok := n.deals.Deal(id); ok && r.Deal.Terms.Provider == a {
			delete(t.down, id)
		}
	}
}

// errProviderDown marks a flow that failed because the deal's provider
// could not be reached (as opposed to a refusal from it, or its target).
var errProviderDown = errors.New("provider unreachable")

const (
	// providerDownFor is how long a deal whose provider was unreachable
	// is left out of its routes.
	providerDownFor = 30 * time.Second
	// maxRouteTries bounds the deals one flow tries.
	maxRouteTries = 3
)

// dealFlow opens one flow of deal id to target and meters it for the deal
// and the credential cred ("" for none).
func (n *Node) dealFlow(ctx context.Context, id common.Hash, session, target string, flow tunnel.Flow, cred string) (*meteredConn, error) {
	rec, ok := n.dealRecord(id)
	if !ok {
		return nil, fmt.Errorf("%w: deal %s is gone", tunnel.ErrNoRoute, id.Hex())
	}
	pid, err := n.peerOf(rec.Deal.Terms.Provider)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", tunnel.ErrNoRoute, errProviderDown, err)
	}
	release, err := n.flowSlot(ctx, pid)
	if err != nil {
		return nil, err
	}
	c, err := n.openTunnel(ctx, pid, tunnel.Header{DealID: id, Time: time.Now(), Target: target, Session: session, Flow: flow})
	if err != nil {
		release()
		return nil, err
	}
	n.tun.mu.Lock()
	m, ok := n.tun.logs[id]
	if !ok {
		// After a restart the deal's count and log go on from its record.
		m = &requesterMeter{}
		m.bytes.Store(rec.Deal.Bytes)
		m.log.Resume(rec.Deal.ConnLogLen, rec.Deal.ConnLogHash)
		n.tun.logs[id] = m
	}
	n.tun.mu.Unlock()
	// Logged as the provider numbered it, at once: both sides' logs hold a
	// connection from its start.
	if e := c.Entry(); e.Flow > 0 {
		if err := m.log.Add(e); err != nil {
			n.log.Warn("connection log", "deal", id.Hex(), "err", err)
		}
	}
	step := uint64(1 << 20)
	if ib := n.deals.IntervalBytes(); ib >= 4 {
		step = ib / 4
	}
	mc := &meteredConn{flowConn: c, deal: id, m: m, step: step, kick: n.kickUsage, release: release, obs: n.metrics.requesterFlow()}
	if a := n.tun.auth; a != nil && cred != "" {
		price := rec.Deal.Terms.PricePerGB
		mc.spent = func(bytes uint64) { a.spend(cred, bytesCost(bytes, price)) }
	}
	return mc, nil
}

// bytesCost is what bytes cost at a price per GB (10^9 bytes), rounded up.
func bytesCost(bytes uint64, perGB *big.Int) *big.Int {
	if perGB == nil || bytes == 0 {
		return new(big.Int)
	}
	c := new(big.Int).Mul(new(big.Int).SetUint64(bytes), perGB)
	c.Add(c, big.NewInt(999_999_999))
	return c.Div(c, big.NewInt(1_000_000_000))
}

// listenerStatus fills in where the local services listen and the proxies'
// front door.
func (n *Node) listenerStatus(st *sdk.Status) {
	add := func(name string, a net.Addr) {
		if a != nil {
			st.Listeners = append(st.Listeners, sdk.Listener{Name: name, Addr: a.String(), Public: !IsLoopbackAddr(a.String())})
		}
	}
	add("api", n.apiAddr)
	add("socks", n.SOCKSAddr())
	add("http-proxy", n.HTTPProxyAddr())
	if n.tun != nil && (n.tun.socksLn != nil || n.tun.httpLn != nil) {
		ps := &sdk.ProxyStatus{Auth: n.tun.auth != nil}
		if n.tun.auth != nil {
			ps.Credentials = n.tun.auth.status()
		}
		st.Proxy = ps
	}
}

// ProxyPassword is the default proxy credential's password ("" with
// --no-proxy-auth or before Run).
func (n *Node) ProxyPassword() string {
	if n.tun == nil || n.tun.auth == nil {
		return ""
	}
	p, err := ProxyPassword(n.dir)
	if err != nil {
		return ""
	}
	return p
}

// maxFlowsPerProvider caps the tunnel streams a requester holds open to
// one provider at once. All of them share one connection, and over QUIC a
// peer accepts at most 256 streams at a time (go-libp2p's setting): past
// that, stream opens wait, the deal's next voucher among them, and the
// deal ends stalled for want of payment. The cap leaves room for deal
// messages, gossip and the like; a connection over the cap waits up to
// flowSlotWait for a flow to end.
const (
	maxFlowsPerProvider = 224
	flowSlotWait        = 10 * time.Second
)

// flowSlot takes one of the provider's flow slots, waiting while all are
// taken; release gives it back (once, however often it is called).
func (n *Node) flowSlot(ctx context.Context, pid peer.ID) (release func(), err error) {
	t := n.tun
	t.mu.Lock()
	sem, ok := t.flows[pid]
	if !ok {
		sem = make(chan struct{}, maxFlowsPerProvider)
		t.flows[pid] = sem
	}
	t.mu.Unlock()
	select {
	case sem <- struct{}{}:
	default:
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, flowSlotWait)
		defer cancel()
		select {
		case sem <- struct{}{}:
			n.log.Debug("tunnel waited for a flow slot", "provider", pid, "waited", time.Since(start))
		case <-wctx.Done():
			return nil, fmt.Errorf("node: %d connections already open through provider %s, the most at once; none ended within %s",
				maxFlowsPerProvider, pid, time.Since(start).Round(time.Millisecond))
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-sem }) }, nil
}

// openTunnel opens a tunnel stream. A provider refuses new streams as "not
// paid" until a voucher covers them: the deal's first voucher is still on
// its way (or the provider's clock has not reached the deal's start yet),
// or the last one is used up. The requester reports its usage at once
// (which renews the voucher) and tries again for a while.
func (n *Node) openTunnel(ctx context.Context, pid peer.ID, h tunnel.Header) (flowConn, error) {
	deadline := time.Now().Add(openPaidWait)
	if err := n.connect(ctx, pid); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", tunnel.ErrNoRoute, errProviderDown, err)
	}
	for {
		s, err := n.host.NewStream(ctx, pid, tunnel.ProtocolID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("open tunnel to %s: %w", pid, err)
			}
			return nil, fmt.Errorf("%w: %w: open tunnel to %s: %w", tunnel.ErrNoRoute, errProviderDown, pid, err)
		}
		var c flowConn
		if h.Flow == tunnel.FlowUDP {
			c, err = tunnel.OpenUDP(ctx, s, h)
		} else {
			c, err = tunnel.OpenStream(ctx, s, h)
		}
		if err == nil {
			return c, nil
		}
		_ = s.Reset()
		var st *tunnel.StatusError
		if !errors.As(err, &st) && ctx.Err() == nil {
			// No status came back (the stream timed out or was reset):
			// the provider did not answer, as opposed to refusing.
			return nil, fmt.Errorf("%w: %w: %w", tunnel.ErrNoRoute, errProviderDown, err)
		}
		if !errors.Is(err, tunnel.ErrNotPaid) || time.Now().After(deadline) {
			return nil, err
		}
		n.kickUsage()
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openPaidWait is how long openTunnel retries a provider answering "not
// paid": long enough for a voucher to cross a loaded network and for
// clocks a few seconds apart, short enough that a stalled deal fails a
// client's connection well before its own timeout.
const openPaidWait = 10 * time.Second

// pickDeal chooses the deal for a route among the requester's deals that
// the machine lets carry traffic: the session's deal while its lifetime
// lasts and the deal serves the route, else the next in rotation.
func (n *Node) pickDeal(r tunnel.Route, cred string) (common.Hash, error) {
	ok := n.dealsFor(r)
	if len(ok) == 0 {
		return common.Hash{}, fmt.Errorf("%w: no active deal for %q", tunnel.ErrNoRoute, r.String())
	}
	t := n.tun
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	key := sessionKey(cred, r.Session)
	if r.Sticky() {
		if b, have := t.sessions[key]; have && now.Before(b.until) {
			for _, x := range ok {
				if x == b.deal {
					return b.deal, nil
				}
			}
		}
	}
	id := ok[int(t.next.Add(1)-1)%len(ok)]
	if r.Sticky() {
		if len(t.sessions) >= maxSessions {
			for k, b := range t.sessions {
				if !now.Before(b.until) {
					delete(t.sessions, k)
				}
			}
		}
		t.sessions[key] = stickyBind{deal: id, until: now.Add(r.SessionTTL())}
	}
	return id, nil
}

// maxSessions is where pickDeal starts forgetting sessions past their
// lifetime.
const maxSessions = 10_000

// flowConn is an open tunnel flow: a *tunnel.Conn (TCP) or a
// *tunnel.PacketConn (UDP, one datagram per Read and Write).
type flowConn interface {
	net.Conn
	CloseWrite() error
	Reset() error
	Entry() tunnel.LogEntry
}

// meteredConn counts a tunnel connection's bytes for its deal.
type meteredConn struct {
	flowConn
	deal common.Hash
	m    *requesterMeter
	once sync.Once
	// Every step bytes the usage reporter is woken, so the next voucher
	// goes out before the paid-ahead interval runs out.
	step    uint64
	kick    func()
	release func() // gives the provider's flow slot back
	// n counts this connection's bytes; spent, if set, is told them when
	// it closes (the credential's spending).
	n     atomic.Uint64
	spent func(bytes uint64)
	obs   flowMetrics // the connection's bytes and its end, in the metrics
}

func (c *meteredConn) count(k int) {
	if k <= 0 {
		return
	}
	c.n.Add(uint64(k))
	after := c.m.bytes.Add(uint64(k))
	if after/c.step != (after-uint64(k))/c.step {
		c.kick()
	}
}

func (c *meteredConn) Read(p []byte) (int, error) {
	k, err := c.flowConn.Read(p)
	c.count(k)
	c.obs.down(k)
	return k, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	k, err := c.flowConn.Write(p)
	c.count(k)
	c.obs.up(k)
	return k, err
}

// Deal names the deal the flow runs under (the VPN's status shows it).
func (c *meteredConn) Deal() string { return c.deal.Hex() }

func (c *meteredConn) Close() error {
	c.once.Do(func() {
		if c.spent != nil {
			c.spent(c.n.Load())
		}
		c.obs.end()
	})
	err := c.flowConn.Close()
	c.release()
	return err
}
