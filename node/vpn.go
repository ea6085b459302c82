package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/tunnel"
	"github.com/ipsx/ipsx/vpn"
	ma "github.com/multiformats/go-multiaddr"
)

// The VPN. The TUN runs inside the requester's node process, because
// that is where the deals, their vouchers and the libp2p connection to
// each provider live: every flow of the TUN becomes a tunnel flow of one
// of the node's deals, metered and logged exactly as a proxy connection
// is, and nothing crosses a process boundary on the way. The node then
// needs CAP_NET_ADMIN (root) for the device and the routes, as wg-quick
// and tailscaled do; a node without it answers `vpn up` with the reason.
//
// Deal choice: new flows stick to one deal, so that the sites a VPN user
// visits see one IP, until that deal's provider cannot be reached (or the
// deal ends); then they move to the next deal of the VPN's routes, in
// route order, and the status counts the move. TCP flows of a provider
// that went away are reset (their TCP state was at the provider); UDP
// flows reopen on the next deal with their next datagram.

// vpnStateFile is where the VPN records its system changes (data dir).
const vpnStateFile = "vpn-state.json"

// vpnBadFor is how long a deal whose provider could not be reached is
// passed over by new flows.
const vpnBadFor = 30 * time.Second

// vpnService is the node's VPN: at most one running at a time. Its mutex
// guards every field.
type vpnService struct {
	n         *Node
	stateFile string

	mu      sync.Mutex
	v       *vpn.VPN // the running or last VPN
	params  sdk.VPNParams
	routes  []tunnel.Route
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returned
	runErr  error
	current common.Hash
	bad     map[common.Hash]time.Time
	moves   atomic.Uint64
}

func newVPNService(n *Node) *vpnService {
	s := &vpnService{n: n, stateFile: filepath.Join(n.dir, vpnStateFile), bad: map[common.Hash]time.Time{}}
	// A VPN of an earlier run that did not stop cleanly left rules, a
	// resolver file and maybe a kill switch behind: undo all but the kill
	// switch, which stays armed until `vpn up` or `vpn down`.
	if found, err := vpn.Recover(s.stateFile, true); err != nil {
		n.log.Warn("vpn: undo what a VPN left in the system", "err", err)
	} else if found {
		n.log.Warn("vpn: undid the system changes of a VPN that did not stop cleanly",
			"kill_switch_armed", vpn.KillSwitchArmed(s.stateFile))
	}
	return s
}

func (n *Node) vpnSvc() (*vpnService, error) {
	if n.tun == nil || n.tun.vpn == nil {
		return nil, fmt.Errorf("%w: the node runs no deals (no chain configured), so nothing could carry the VPN's flows", api.ErrVPNFailed)
	}
	return n.tun.vpn, nil
}

// VPNStatus implements api.VPNBackend.
func (n *Node) VPNStatus(ctx context.Context) sdk.VPNStatus {
	s, err := n.vpnSvc()
	if err != nil {
		return sdk.VPNStatus{State: string(vpn.StateDown), Error: err.Error(), Flows: []sdk.VPNFlow{}}
	}
	return s.status()
}

// VPNUp implements api.VPNBackend: it brings the VPN up and returns once
// it is up, or why it could not come up.
func (n *Node) VPNUp(ctx context.Context, p sdk.VPNParams) (sdk.VPNStatus, error) {
	s, err := n.vpnSvc()
	if err != nil {
		return sdk.VPNStatus{}, err
	}
	cfg, routes, err := s.config(ctx, p)
	if err != nil {
		return sdk.VPNStatus{}, err
	}
	s.mu.Lock()
	if s.done != nil {
		select {
		case <-s.done:
		default:
			s.mu.Unlock()
			return sdk.VPNStatus{}, api.ErrVPNBusy
		}
	}
	if n.runCtx == nil || n.runCtx.Err() != nil {
		s.mu.Unlock()
		return sdk.VPNStatus{}, fmt.Errorf("%w: the node is not running", api.ErrVPNFailed)
	}
	// A kill switch left armed is replaced by this VPN's (or removed,
	// if it has none).
	if _, err := vpn.Recover(s.stateFile, false); err != nil {
		n.log.Warn("vpn: disarm the kill switch left armed", "err", err)
	}
	v, err := vpn.New(cfg, vpnDialer{s}, vpn.WithLogger(n.o.logger))
	if err != nil {
		s.mu.Unlock()
		return sdk.VPNStatus{}, fmt.Errorf("%w: %w", api.ErrVPNParams, err)
	}
	// A node that stops with its VPN up keeps the kill switch armed;
	// VPNDown disarms it.
	v.KeepKillSwitch(true)
	rctx, cancel := context.WithCancel(n.runCtx)
	done := make(chan struct{})
	ready := make(chan struct{})
	s.v, s.params, s.routes, s.cancel, s.done, s.runErr = v, p, routes, cancel, done, nil
	s.current, s.bad = common.Hash{}, map[common.Hash]time.Time{}
	s.moves.Store(0)
	s.mu.Unlock()

	n.runWG.Add(1)
	go func() {
		defer n.runWG.Done()
		err := v.Run(rctx, func() { close(ready) })
		s.mu.Lock()
		s.runErr = err
		s.mu.Unlock()
		close(done)
		if err != nil {
			n.log.Warn("vpn stopped", "err", err)
		}
	}()
	select {
	case <-ready:
		return s.status(), nil
	case <-done:
		s.mu.Lock()
		err := s.runErr
		s.mu.Unlock()
		return s.status(), fmt.Errorf("%w: %w", api.ErrVPNFailed, err)
	case <-ctx.Done():
		cancel()
		<-done
		return s.status(), ctx.Err()
	}
}

// VPNDown implements api.VPNBackend: it takes the VPN down, undoing its
// routes and its kill switch, or disarms a kill switch left armed.
func (n *Node) VPNDown(ctx context.Context) (sdk.VPNStatus, error) {
	s, err := n.vpnSvc()
	if err != nil {
		return sdk.VPNStatus{}, err
	}
	s.mu.Lock()
	v, cancel, done := s.v, s.cancel, s.done
	s.mu.Unlock()
	if done != nil {
		v.KeepKillSwitch(false)
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return s.status(), ctx.Err()
		}
	}
	if _, err := vpn.Recover(s.stateFile, false); err != nil {
		return s.status(), fmt.Errorf("%w: undo the kill switch: %w", api.ErrVPNFailed, err)
	}
	return s.status(), nil
}

// config turns the API's parameters into the VPN's.
func (s *vpnService) config(ctx context.Context, p sdk.VPNParams) (vpn.Config, []tunnel.Route, error) {
	bad := func(format string, args ...any) (vpn.Config, []tunnel.Route, error) {
		return vpn.Config{}, nil, fmt.Errorf("%w: "+format, append([]any{api.ErrVPNParams}, args...)...)
	}
	var routes []tunnel.Route
	for _, r := range p.Routes {
		rt, err := tunnel.ParseRoute(r)
		if err != nil {
			return bad("route %q: %v", r, err)
		}
		routes = append(routes, rt)
	}
	if len(routes) == 0 {
		routes = []tunnel.Route{{}}
	}
	cfg := vpn.Config{Name: p.Device, MTU: p.MTU, DefaultRoute: p.DefaultRoute, KillSwitch: p.KillSwitch,
		StateFile: s.stateFile}
	for _, pf := range p.Prefixes {
		pr, err := netip.ParsePrefix(pf)
		if err != nil || pr != pr.Masked() {
			return bad("prefix %q: want a network like 203.0.113.0/24", pf)
		}
		cfg.Routes = append(cfg.Routes, pr)
	}
	if !p.DefaultRoute && len(cfg.Routes) == 0 {
		return bad("nothing to route into the TUN: give prefixes or the default route")
	}
	if p.DNSServer != "" && !p.DNS {
		return bad("a DNS server without dns")
	}
	if p.DNS {
		srv := p.DNSServer
		if srv == "" {
			srv = "1.1.1.1:53"
		}
		ap, err := netip.ParseAddrPort(srv)
		if err != nil {
			a, aerr := netip.ParseAddr(srv)
			if aerr != nil {
				return bad("DNS server %q: want an IP address, with or without a port", srv)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		cfg.DNS = ap
	}
	cfg.Bypass = s.bypass(ctx)
	return cfg, routes, nil
}

// bypass is the node's own traffic: its libp2p listen ports, which its
// connections use as their source, and its chain RPC host.
func (s *vpnService) bypass(ctx context.Context) vpn.Bypass {
	var b vpn.Bypass
	seen := map[uint16]bool{}
	for _, a := range s.n.host.Network().ListenAddresses() {
		for _, code := range []int{ma.P_TCP, ma.P_UDP} {
			if v, err := a.ValueForProtocol(code); err == nil {
				if p, err := strconv.ParseUint(v, 10, 16); err == nil && p != 0 && !seen[uint16(p)] {
					seen[uint16(p)] = true
					b.Ports = append(b.Ports, uint16(p))
				}
			}
		}
	}
	if s.n.cfg.ChainRPC != "" {
		if u, err := url.Parse(s.n.cfg.ChainRPC); err == nil && u.Hostname() != "" {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil {
				b.Hosts = append(b.Hosts, a)
			} else {
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				as, _ := net.DefaultResolver.LookupNetIP(lctx, "ip", u.Hostname())
				cancel()
				b.Hosts = append(b.Hosts, as...)
			}
		}
	}
	var hosts []netip.Addr
	for _, h := range b.Hosts {
		if !h.IsLoopback() {
			hosts = append(hosts, h.Unmap())
		}
	}
	b.Hosts = hosts
	return b
}

func (s *vpnService) status() sdk.VPNStatus {
	s.mu.Lock()
	v, routes, current, done, runErr := s.v, s.routes, s.current, s.done, s.runErr
	s.mu.Unlock()
	out := sdk.VPNStatus{State: string(vpn.StateDown), Flows: []sdk.VPNFlow{}}
	running := false
	if done != nil {
		select {
		case <-done:
		default:
			running = true
		}
	}
	if v != nil {
		st := v.Status()
		out.State, out.Since = string(st.State), st.Since
		out.Error = st.Error
		if runErr != nil && out.Error == "" {
			out.Error = runErr.Error()
		}
		if running || st.State == vpn.StateFailed {
			out.Device, out.MTU, out.Addrs, out.Prefixes, out.DNS, out.KillSwitch, out.System =
				st.Device, st.MTU, st.Addrs, st.Routes, st.DNS, st.KillSwitch, st.System
			for _, f := range st.Flows {
				out.Flows = append(out.Flows, sdk.VPNFlow{Proto: f.Proto, Src: f.Src, Dst: f.Dst, Target: f.Target, Deal: f.Deal,
					Up: f.Up, Down: f.Down, Started: f.Started, Reopened: f.Reopened})
			}
		}
		c := st.Counters
		out.Counters = sdk.VPNCounters{TCPFlows: c.TCPFlows, UDPFlows: c.UDPFlows, Refused: c.Refused, Failed: c.Failed,
			Up: c.Up, Down: c.Down, DroppedICMP: c.DroppedICMP, Moves: s.moves.Load()}
	}
	if running {
		for _, r := range routes {
			out.Routes = append(out.Routes, r.String())
		}
		if current != (common.Hash{}) {
			out.Deal = current.Hex()
			if rec, ok := s.n.dealRecord(current); ok {
				out.Provider = rec.Deal.Terms.Provider.Hex()
			}
		}
	} else {
		out.KillSwitchArmed = vpn.KillSwitchArmed(s.stateFile)
	}
	return out
}

// vpnDialer is the VPN's vpn.Dialer: the node's deals.
type vpnDialer struct{ s *vpnService }

func (d vpnDialer) DialTCP(ctx context.Context, target string) (net.Conn, error) {
	return d.s.dial(ctx, tunnel.FlowTCP, target)
}

func (d vpnDialer) DialUDP(ctx context.Context, target string) (net.Conn, error) {
	return d.s.dial(ctx, tunnel.FlowUDP, target)
}

// vpnTries bounds the deals one flow is tried on.
const vpnTries = 4

// dial opens one flow on the VPN's current deal, moving to another deal
// of its routes when the current one's provider cannot be reached.
func (s *vpnService) dial(ctx context.Context, flow tunnel.Flow, target string) (net.Conn, error) {
	tried := map[common.Hash]bool{}
	var lastErr error
	for range vpnTries {
		id, err := s.pick(flow, tried)
		if err != nil {
			if lastErr != nil {
				return nil, lastErr
			}
			if s.n.o.autoBuy == nil {
				return nil, err
			}
			if id, err = s.autoBuy(ctx); err != nil {
				return nil, err
			}
		}
		tried[id] = true
		c, err := s.n.dealFlow(ctx, id, "", target, flow, "")
		if err == nil {
			s.use(id)
			return c, nil
		}
		if targetsFault(err) || ctx.Err() != nil {
			return nil, err
		}
		s.markBad(id, err)
		lastErr = err
	}
	return nil, lastErr
}

// autoBuy buys for the first of the VPN's routes that names a country.
func (s *vpnService) autoBuy(ctx context.Context) (common.Hash, error) {
	s.mu.Lock()
	routes := s.routes
	s.mu.Unlock()
	for _, r := range routes {
		if r.Country != "" {
			return s.n.autoBuy(ctx, r, "")
		}
	}
	return common.Hash{}, fmt.Errorf("%w: no active deal for the VPN, and no route names a country to buy one in", tunnel.ErrNoRoute)
}

// targetsFault reports whether a flow failed because of its target (the
// exit policy, the target refusing or unreachable), which another deal
// would not change, rather than because of its deal or provider.
func targetsFault(err error) bool {
	var se *tunnel.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Status {
	case tunnel.StatusNotAllowed, tunnel.StatusRefused, tunnel.StatusNetUnreachable, tunnel.StatusHostUnreachable,
		tunnel.StatusDNSFailure, tunnel.StatusBadRequest, tunnel.StatusTimeout:
		return true
	}
	return false
}

// pick returns the deal for a new flow: the current one while it serves
// the routes and is not marked bad, else the first deal of the first
// route that has one (UDP flows only on deals whose offer carries UDP),
// not tried for this flow yet. Deals marked bad come last.
func (s *vpnService) pick(flow tunnel.Flow, tried map[common.Hash]bool) (common.Hash, error) {
	s.mu.Lock()
	routes, current := s.routes, s.current
	now := time.Now()
	isBad := func(id common.Hash) bool { t, ok := s.bad[id]; return ok && now.Sub(t) < vpnBadFor }
	s.mu.Unlock()
	var candidates []common.Hash
	seen := map[common.Hash]bool{}
	for _, r := range routes {
		for _, id := range s.n.dealsFor(r) {
			if !seen[id] && !tried[id] && (flow != tunnel.FlowUDP || s.requesterUDP(id)) {
				seen[id] = true
				candidates = append(candidates, id)
			}
		}
	}
	if len(candidates) == 0 {
		return common.Hash{}, fmt.Errorf("%w: no active deal for the VPN's routes %v", tunnel.ErrNoRoute, routes)
	}
	if seen[current] && !isBad(current) {
		return current, nil
	}
	for _, id := range candidates {
		if !isBad(id) {
			return id, nil
		}
	}
	return candidates[0], nil
}

// requesterUDP reports whether a requester's deal may carry UDP: its
// offer lists udp (a record without its offer: assume it does).
func (s *vpnService) requesterUDP(id common.Hash) bool {
	rec, ok := s.n.dealRecord(id)
	if !ok || rec.Offer == nil {
		return true
	}
	return rec.Offer.Protocols.Has(orderbook.ProtoUDP)
}

func (s *vpnService) use(id common.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == id {
		return
	}
	if s.current != (common.Hash{}) {
		s.moves.Add(1)
		s.n.log.Info("vpn moves to another deal", "deal", id.Hex(), "from", s.current.Hex())
	}
	s.current = id
	delete(s.bad, id)
}

func (s *vpnService) markBad(id common.Hash, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bad[id] = time.Now()
	s.n.log.Info("vpn: deal unreachable for new flows", "deal", id.Hex(), "err", err)
}
