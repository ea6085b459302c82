package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
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
	sessions map[string]common.Hash          // sticky session -> deal
	country  map[common.Hash]string          // requester: deal -> offer's country
	egress   map[common.Hash][]netip.Addr    // provider: deal -> its exit IPs
	next     atomic.Uint64                   // rotation counter
	exit     *tunnel.Exit
	kick     chan struct{}             // wakes the usage reporter
	flows    map[peer.ID]chan struct{} // requester: open tunnel streams per provider (a semaphore)
	socksLn  net.Listener
	httpLn   net.Listener
}

// requesterMeter counts a deal's bytes on the requester's side and keeps
// the same connection log as the provider.
type requesterMeter struct {
	bytes atomic.Uint64
	mu    sync.Mutex
	log   tunnel.ConnLog
}

const keyDealCountry = "deal/country/"

func (n *Node) startTunnel(ctx context.Context, wg *sync.WaitGroup) error {
	t := &tunnels{
		meters: map[common.Hash]*tunnel.Meter{}, logs: map[common.Hash]*requesterMeter{},
		sessions: map[string]common.Hash{}, country: map[common.Hash]string{},
		egress: map[common.Hash][]netip.Addr{}, flows: map[peer.ID]chan struct{}{},
		kick: make(chan struct{}, 1),
	}
	n.tun = t
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
	t.exit, err = tunnel.NewExit(policy, n.authorizeTunnel)
	if err != nil {
		return err
	}
	n.host.SetStreamHandler(tunnel.ProtocolID, func(s network.Stream) {
		sctx := context.WithValue(n.runCtx, peerKey{}, s.Conn().RemotePeer())
		n.logTunnelStream(s.Conn().RemotePeer(), t.exit.ServeStream(sctx, s))
	})
	router := tunnel.RouterFunc(n.routeTunnel)
	plog := n.o.logger.With("component", "proxy")
	for _, l := range []struct {
		addr  string
		ln    *net.Listener
		serve func(context.Context, net.Listener) error
	}{
		{n.cfg.SOCKS, &t.socksLn, tunnel.NewSOCKSServer(router, tunnel.WithLogger(plog)).Serve},
		{n.cfg.HTTP, &t.httpLn, tunnel.NewHTTPProxy(router, tunnel.WithLogger(plog)).Serve},
	} {
		if l.addr == "" || l.addr == "off" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("node: proxy listen on %s: %w", l.addr, err)
		}
		*l.ln = ln
		serve := l.serve
		wg.Add(1)
		go func() { defer wg.Done(); _ = serve(ctx, ln) }()
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
		if r, err := n.readDeal(h.DealID); err == nil && r.Deal.Role == agreement.RoleProvider &&
			awaitsPayment(r.Deal.Provider) && r.Deal.Terms.Requester == addr {
			return tunnel.Grant{}, fmt.Errorf("%w: %s", tunnel.ErrNotPaid, h.DealID.Hex())
		}
		return tunnel.Grant{}, fmt.Errorf("%w: %s", tunnel.ErrDealInactive, h.DealID.Hex())
	}
	if perm.Peer != addr {
		return tunnel.Grant{}, fmt.Errorf("%w: %s is not the requester of %s", tunnel.ErrUnauthorized, addr.Hex(), h.DealID.Hex())
	}
	return tunnel.Grant{Egress: n.egressFor(h.DealID), Meter: n.meterFor(h.DealID)}, nil
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
		if r, err := n.readDeal(id); err == nil && r.Deal.Terms.IPs > 0 {
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
	if r, err := n.readDeal(id); err == nil {
		cfg.Deadline = time.Unix(int64(r.Deal.Terms.Deadline), 0)
		if o, err := n.book.Get(r.Deal.Terms.OfferID); err == nil {
			cfg.BitsPerSecond = uint64(o.Bandwidth) * 1_000_000
		}
		if v := r.Deal.Voucher; v != nil && n.dealState != nil {
			cfg.Allowance = v.Voucher.Bytes + 2*n.dealState.intervalBytes
		}
		used = r.Deal.Bytes
	}
	m := tunnel.NewMeter(id, cfg)
	m.Resume(used)
	t.meters[id] = m
	return m
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
func (n *Node) stopTunnels(st *dealState, ps []agreement.Permission) {
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
			d, known := st.m.Deal(p.DealID)
			if known && d.Provider == agreement.StatusActive {
				s := m.Stats()
				m.SetAllowance(max(s.Up+s.Down, 1))
			} else {
				m.Stop(tunnel.ErrNotPaid)
			}
		}
		for s, id := range t.sessions {
			if id == p.DealID {
				delete(t.sessions, s)
			}
		}
	}
}

// endTunnels cuts the streams of provider deals whose service is over.
func (n *Node) endTunnels(ups []agreement.Update) {
	if n.tun == nil {
		return
	}
	n.tun.mu.Lock()
	defer n.tun.mu.Unlock()
	for _, u := range ups {
		if u.Deal.Role != agreement.RoleProvider {
			continue
		}
		switch u.Deal.Provider {
		case agreement.StatusActive, agreement.StatusFunded, agreement.StatusAccepted:
			continue
		}
		if m, ok := n.tun.meters[u.Deal.ID]; ok {
			m.Stop(nil)
		}
	}
}

// refreshUsage steps the provider's current meter reading of a deal into
// the machine (on the deal loop).
func (n *Node) refreshUsage(m *agreement.Machine, id common.Hash) {
	if n.tun == nil {
		return
	}
	n.tun.mu.Lock()
	meter, ok := n.tun.meters[id]
	n.tun.mu.Unlock()
	if !ok {
		return
	}
	st := meter.Stats()
	head, _ := meter.Log().Head()
	if d, known := m.Deal(id); known && st.Up+st.Down > d.Bytes {
		_ = m.Step(agreement.Usage{At: n.now(), DealID: id, Bytes: st.Up + st.Down, ConnLogHash: head})
	}
}

// reportUsage feeds each deal's bytes and connection-log head to the
// machine, on both sides.
func (n *Node) reportUsage(ctx context.Context) {
	tick := time.NewTicker(n.o.dealTick())
	defer tick.Stop()
	last := map[common.Hash]uint64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.tun.kick:
		}
		type usage struct {
			id    common.Hash
			bytes uint64
			head  common.Hash
		}
		var us []usage
		n.tun.mu.Lock()
		for id, m := range n.tun.meters {
			st := m.Stats()
			head, _ := m.Log().Head()
			us = append(us, usage{id, st.Up + st.Down, head})
		}
		for id, m := range n.tun.logs {
			m.mu.Lock()
			head, _ := m.log.Head()
			m.mu.Unlock()
			us = append(us, usage{id, m.bytes.Load(), head})
		}
		n.tun.mu.Unlock()
		for _, u := range us {
			if b, ok := last[u.id]; ok && b == u.bytes {
				continue
			}
			err := n.dealDo(ctx, func(m *agreement.Machine) error {
				return m.Step(agreement.Usage{At: n.now(), DealID: u.id, Bytes: u.bytes, ConnLogHash: u.head})
			})
			if err == nil {
				last[u.id] = u.bytes
			} else if ctx.Err() == nil {
				n.log.Debug("usage report", "deal", u.id.Hex(), "err", err)
			}
		}
	}
}

// rememberCountry keeps the country of a requester's deal (its offer's), for
// routing by proxy username.
func (n *Node) rememberCountry(id common.Hash, cc string) {
	if n.tun == nil {
		return
	}
	n.tun.mu.Lock()
	n.tun.country[id] = cc
	n.tun.mu.Unlock()
	_ = n.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keyDealCountry+id.Hex()), []byte(cc)) })
}

// routeTunnel is the proxies' router: pick an active deal for the route
// (sticky per session, else rotating), open a tunnel stream to its
// provider, and meter the connection for the deal.
func (n *Node) routeTunnel(ctx context.Context, r tunnel.Route, target string) (net.Conn, error) {
	id, err := n.pickDeal(r)
	if err != nil && n.o.autoBuy != nil {
		id, err = n.autoBuy(ctx, r)
	}
	if err != nil {
		return nil, err
	}
	rec, err := n.readDeal(id)
	if err != nil {
		return nil, err
	}
	pid, err := n.peerOf(rec.Deal.Terms.Provider)
	if err != nil {
		return nil, fmt.Errorf("%w: provider unreachable: %v", tunnel.ErrNoRoute, err)
	}
	release, err := n.flowSlot(ctx, pid)
	if err != nil {
		return nil, err
	}
	c, err := n.openTunnel(ctx, pid, tunnel.Header{DealID: id, Time: time.Now(), Target: target, Session: r.Session})
	if err != nil {
		release()
		return nil, err
	}
	n.tun.mu.Lock()
	m, ok := n.tun.logs[id]
	if !ok {
		m = &requesterMeter{}
		n.tun.logs[id] = m
	}
	n.tun.mu.Unlock()
	step := uint64(1 << 20)
	if n.dealState != nil && n.dealState.intervalBytes >= 4 {
		step = n.dealState.intervalBytes / 4
	}
	return &meteredConn{Conn: c, m: m, step: step, kick: n.kickUsage, release: release}, nil
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
func (n *Node) openTunnel(ctx context.Context, pid peer.ID, h tunnel.Header) (*tunnel.Conn, error) {
	deadline := time.Now().Add(openPaidWait)
	if err := n.connect(ctx, pid); err != nil {
		return nil, fmt.Errorf("%w: %w", tunnel.ErrNoRoute, err)
	}
	for {
		s, err := n.host.NewStream(ctx, pid, tunnel.ProtocolID)
		if err != nil {
			return nil, fmt.Errorf("open tunnel to %s: %w", pid, err)
		}
		c, err := tunnel.OpenStream(ctx, s, h)
		if err == nil {
			return c, nil
		}
		_ = s.Reset()
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
// the machine lets carry traffic.
func (n *Node) pickDeal(r tunnel.Route) (common.Hash, error) {
	t := n.tun
	n.permMu.Lock()
	var ids []common.Hash
	for id, p := range n.perms {
		if p.Role == agreement.RoleRequester {
			ids = append(ids, id)
		}
	}
	n.permMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	var ok []common.Hash
	for _, id := range ids {
		if r.Country == "" || t.country[id] == r.Country {
			ok = append(ok, id)
		}
	}
	if len(ok) == 0 {
		return common.Hash{}, fmt.Errorf("%w: no active deal for %q", tunnel.ErrNoRoute, r.String())
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Cmp(ok[j]) < 0 })
	if r.Sticky() {
		if id, have := t.sessions[r.Session]; have {
			for _, x := range ok {
				if x == id {
					return id, nil
				}
			}
		}
	}
	id := ok[int(t.next.Add(1)-1)%len(ok)]
	if r.Sticky() {
		t.sessions[r.Session] = id
	}
	return id, nil
}

// meteredConn counts a tunnel connection's bytes for its deal and appends
// it to the deal's connection log when it closes.
type meteredConn struct {
	*tunnel.Conn
	m    *requesterMeter
	once sync.Once
	// Every step bytes the usage reporter is woken, so the next voucher
	// goes out before the paid-ahead interval runs out.
	step    uint64
	kick    func()
	release func() // gives the provider's flow slot back
}

func (c *meteredConn) count(k int) {
	if k <= 0 {
		return
	}
	after := c.m.bytes.Add(uint64(k))
	if after/c.step != (after-uint64(k))/c.step {
		c.kick()
	}
}

func (c *meteredConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.count(k)
	return k, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.count(k)
	return k, err
}

func (c *meteredConn) Close() error {
	c.once.Do(func() {
		c.m.mu.Lock()
		_, _, _ = c.m.log.Append(c.Conn.Entry())
		c.m.mu.Unlock()
	})
	err := c.Conn.Close()
	c.release()
	return err
}
