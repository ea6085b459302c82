package node

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ipsx/ipsx/sdk"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reachability: AutoNAT tells a node whether others can dial it; a node
// that cannot be dialled reserves a slot on a relay (any peer running
// --relay-service) and advertises the relayed address, and DCUtR turns a
// relayed connection into a direct one by hole punching where the NATs
// allow. Peers tell a node the address they see it at (identify's observed
// address); the node reports those, and a provider's public IP, the one its
// location is looked up for, comes from them.

// Relay service limits: enough for peers to meet and hole-punch, and for
// the deal protocol's small messages, while a relay's operator gives away
// little bandwidth. Tunnels need a direct connection (see openTunnel).
var relayResources = func() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: 10 * time.Minute, Data: 1 << 20}
	r.MaxReservations = 256
	r.MaxCircuits = 16
	r.MaxReservationsPerIP = 16
	r.MaxReservationsPerASN = 64
	return r
}()

// reachOptions are the libp2p options of NAT traversal.
func (n *Node) reachOptions() []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.AddrsFactory(n.withObservedAddrs),
		// Answer other nodes' AutoNAT probes (rate-limited by libp2p).
		libp2p.EnableNATService(),
		libp2p.EnableHolePunching(holepunch.WithTracer(punchTracer{n})),
		libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates,
			autorelay.WithMinCandidates(1),
			autorelay.WithBootDelay(0),
			autorelay.WithMinInterval(10*time.Second),
			autorelay.WithBackoff(30*time.Second),
		),
	}
	if n.cfg.RelayService {
		// A relay must be dialable, and its operator says it is: no need to
		// wait for AutoNAT before serving.
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(relayResources)),
			libp2p.ForceReachabilityPublic())
	}
	if n.cfg.UPnP {
		opts = append(opts, libp2p.NATPortMap())
	}
	return opts
}

// withObservedAddrs adds to the addresses the node advertises the public
// QUIC addresses its peers see it at on its listen ports, even if only one
// peer does (libp2p waits for four). Behind a NAT that keeps the port
// (Linux masquerade, most home routers) that is the address a hole punch
// must dial; in the node's signed peer record, a peer's hole punch cannot
// lose it to the peerstore's clean-up of temporary addresses that identify
// runs on the relayed connection at the same moment. Only QUIC: two peers
// dialling each other's TCP address uncoordinated may meet in a TCP
// simultaneous open, which fails the security handshake, while QUIC
// connections from both sides simply both succeed.
func (n *Node) withObservedAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	ports := map[string]bool{}
	for _, a := range addrs {
		if p, ok := listenPort(a); ok {
			ports[p] = true
		}
	}
	for _, o := range n.observedAddrs() {
		a, err := ma.NewMultiaddr(o.Addr)
		if err != nil || !manet.IsPublicAddr(a) || isRelayed(a) || !isQUIC(a) {
			continue
		}
		if p, ok := listenPort(a); ok && ports[p] && !slices.ContainsFunc(addrs, a.Equal) {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

func isQUIC(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_QUIC_V1)
	return err == nil
}

// listenPort is an address's transport and port, such as "tcp/4001" or
// "udp/4001/quic-v1".
func listenPort(a ma.Multiaddr) (string, bool) {
	_, rest := ma.SplitFirst(a)
	if len(rest) == 0 {
		return "", false
	}
	return rest.String(), true
}

// relayCandidates feeds autorelay: connected peers that serve relays
// (bootstrap peers usually do), up to num.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	h := n.host
	if h == nil {
		return out
	}
	for _, p := range h.Network().Peers() {
		if len(out) == num {
			break
		}
		if ok, _ := h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) == 0 {
			continue
		}
		out <- peer.AddrInfo{ID: p, Addrs: h.Peerstore().Addrs(p)}
	}
	return out
}

// reach follows the host's reachability and the addresses peers observe.
type reach struct {
	mu           sync.Mutex
	reachability network.Reachability
	observed     map[peer.ID]ma.Multiaddr // per connected peer, the address it sees us at
	sub          event.Subscription       // set by startHost
	punched      int                      // hole-punch attempts (DCUtR) that gave a direct connection
	punchFailed  int                      // and those that did not
	punchErr     string                   // the last failure's reason
}

// punchTracer counts the outcome of each hole-punch attempt (DCUtR, up
// to three per relayed connection) the node takes part in, on either side. A node that only ever fails to punch is reachable through
// relays alone, which rules out tunnels; its operator is told once.
type punchTracer struct{ n *Node }

// punchWarnAfter is how many hole-punch attempts must fail, none succeeding,
// before the node warns that it looks relay-only.
const punchWarnAfter = 3

func (t punchTracer) Trace(e *holepunch.Event) {
	var ok bool
	var reason string
	switch ev := e.Evt.(type) {
	case *holepunch.DirectDialEvt:
		// The side that got the relayed connection first dials the
		// other's public addresses; a failure there is not final.
		if !ev.Success {
			return
		}
		ok = true
	case *holepunch.EndHolePunchEvt:
		ok, reason = ev.Success, ev.Error
	default:
		return
	}
	n := t.n
	n.reach.mu.Lock()
	defer n.reach.mu.Unlock()
	if ok {
		n.reach.punched++
		return
	}
	n.reach.punchFailed++
	n.reach.punchErr = reason
	if n.reach.punched == 0 && n.reach.punchFailed == punchWarnAfter {
		n.log.Warn("hole punching has failed every time: peers reach this node through relays only, so requesters cannot open tunnels to it "+
			"(a symmetric NAT, as with carrier-grade NAT?); forward a port to the node's --listen port, or try --upnp",
			"failed", n.reach.punchFailed, "last", reason)
	}
}

const maxObservers = 1000

// subscribeReach subscribes to the events watchReach follows; startHost
// calls it before the host makes any connection, so no identify is missed.
func (n *Node) subscribeReach() error {
	sub, err := n.host.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtPeerIdentificationCompleted),
	})
	if err != nil {
		return fmt.Errorf("node: reachability events: %w", err)
	}
	n.reach.sub = sub
	return nil
}

// watchReach follows reachability and identify events until ctx ends.
func (n *Node) watchReach(ctx context.Context) {
	sub := n.reach.sub
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			n.reach.mu.Lock()
			switch e := e.(type) {
			case event.EvtLocalReachabilityChanged:
				if e.Reachability != n.reach.reachability {
					n.log.Info("reachability", "now", e.Reachability.String())
				}
				n.reach.reachability = e.Reachability
			case event.EvtPeerIdentificationCompleted:
				if e.ObservedAddr == nil || isRelayed(e.ObservedAddr) {
					break
				}
				if len(n.reach.observed) >= maxObservers {
					n.pruneObservers()
				}
				if len(n.reach.observed) < maxObservers {
					n.reach.observed[e.Peer] = e.ObservedAddr
				}
			}
			n.reach.mu.Unlock()
		}
	}
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// pruneObservers forgets the observations of peers no longer connected.
// The caller holds reach.mu.
//
// libp2p asks for addresses (withObservedAddrs) while it builds the host,
// before n.host is set; the map is empty until watchReach, started after
// that, fills it, so n.host is only read once it is there.
func (n *Node) pruneObservers() {
	for p := range n.reach.observed {
		if n.host.Network().Connectedness(p) != network.Connected {
			delete(n.reach.observed, p)
		}
	}
}

// observedAddrs are the addresses connected peers see this node at, most
// observed first. (Peers are checked here rather than forgotten on
// disconnect events, which may arrive after a reconnection's identify.)
func (n *Node) observedAddrs() []sdk.ObservedAddr {
	n.reach.mu.Lock()
	n.pruneObservers()
	count := map[string]int{}
	for _, a := range n.reach.observed {
		count[a.String()]++
	}
	n.reach.mu.Unlock()
	out := make([]sdk.ObservedAddr, 0, len(count))
	for a, c := range count {
		out = append(out, sdk.ObservedAddr{Addr: a, Observers: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Observers != out[j].Observers {
			return out[i].Observers > out[j].Observers
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}

// PublicIP is the node's public address as its peers see it: the public IP
// observed by most peers, else a public interface address. ok is false when
// neither is known yet.
func (n *Node) PublicIP() (netip.Addr, bool) {
	for _, o := range n.observedAddrs() {
		if ip, ok := publicIP(o.Addr); ok {
			return ip, true
		}
	}
	if n.host == nil {
		return netip.Addr{}, false
	}
	for _, a := range n.host.Addrs() {
		if ip, ok := publicIP(a.String()); ok {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func publicIP(addr string) (netip.Addr, bool) {
	a, err := ma.NewMultiaddr(addr)
	if err != nil || isRelayed(a) || !manet.IsPublicAddr(a) {
		return netip.Addr{}, false
	}
	ip, err := manet.ToIP(a)
	if err != nil {
		return netip.Addr{}, false
	}
	p, ok := netip.AddrFromSlice(ip)
	return p.Unmap(), ok
}

// reachStatus fills the reachability part of the status.
func (n *Node) reachStatus(st *sdk.Status) {
	n.reach.mu.Lock()
	st.Reachability = reachabilityName(n.reach.reachability)
	st.HolePunch = sdk.HolePunchStats{Succeeded: n.reach.punched, Failed: n.reach.punchFailed, LastError: n.reach.punchErr}
	n.reach.mu.Unlock()
	st.ObservedAddrs = n.observedAddrs()
	st.RelayService = n.cfg.RelayService
	for _, a := range n.host.Addrs() {
		if isRelayed(a) {
			st.RelayAddrs = append(st.RelayAddrs, a.String()+"/p2p/"+n.host.ID().String())
		}
	}
	if ip, ok := n.PublicIP(); ok {
		st.PublicIP = ip.String()
	}
	slices.Sort(st.RelayAddrs)
}

func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}
