package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/sdk"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Peers lists the connected peers and how each is connected.
func (n *Node) Peers(ctx context.Context) []sdk.Peer {
	var out []sdk.Peer
	for _, p := range n.host.Network().Peers() {
		sp := sdk.Peer{PeerID: p.String()}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			sp.Conns = append(sp.Conns, connInfo(c))
		}
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PeerID < out[j].PeerID })
	return out
}

func connInfo(c network.Conn) sdk.Conn {
	st := c.Stat()
	return sdk.Conn{
		Addr:      c.RemoteMultiaddr().String(),
		Direction: strings.ToLower(st.Direction.String()),
		Relayed:   st.Limited || isRelayed(c.RemoteMultiaddr()),
		Opened:    st.Opened,
	}
}

// resolvePeer turns a peer ID or a maker's address into a peer ID.
func (n *Node) resolvePeer(s string) (peer.ID, error) {
	if common.IsHexAddress(s) {
		pid, err := n.peerOf(common.HexToAddress(s))
		if err != nil {
			return "", fmt.Errorf("%w: no peer known for maker %s yet", api.ErrBadPeer, s)
		}
		return pid, nil
	}
	pid, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q is neither a peer ID nor an address", api.ErrBadPeer, s)
	}
	if pid == n.host.ID() {
		return "", fmt.Errorf("%w: that is this node", api.ErrBadPeer)
	}
	return pid, nil
}

// pingTimeout bounds a ping, lookup and hole punch included (libp2p tries
// a hole punch three times, some 15 s), and ends it before an SDK call's
// default timeout would, so the caller gets the reason.
const pingTimeout = 20 * time.Second

// findPeerTimeout bounds a DHT lookup of a peer's addresses, repeats
// included; a lookup that finds nothing is repeated after findPeerPause,
// the pause doubling up to findPeerMaxPause.
const (
	findPeerTimeout  = 15 * time.Second
	findPeerPause    = 250 * time.Millisecond
	findPeerMaxPause = 2 * time.Second
)

// connect makes sure there is a connection to pid, dialling the addresses
// the peerstore holds or, when it holds none, those a DHT lookup finds
// (a provider behind NAT is found with its relay addresses). ctx decides,
// as for a stream, whether a relayed connection will do.
func (n *Node) connect(ctx context.Context, pid peer.ID) error {
	if n.host.Network().Connectedness(pid) != network.NotConnected {
		// Connected, or through a relay only: a stream that needs a
		// direct connection waits for the hole punch on its own.
		return nil
	}
	ai := peer.AddrInfo{ID: pid}
	if len(n.host.Peerstore().Addrs(pid)) == 0 {
		found, err := n.findPeer(ctx, pid)
		if err != nil {
			return fmt.Errorf("%w: find peer %s in the DHT: %w", api.ErrUnreachable, pid, err)
		}
		ai = found
	}
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("%w: connect to %s: %w", api.ErrUnreachable, pid, err)
	}
	return nil
}

// findPeer looks pid's addresses up in the DHT. A peer that has only just
// come up is not found at first, nor is one behind NAT whose relay
// address has not yet reached the nodes it is connected to (they learn it
// from its identify push, a moment after its reservation, and until then
// know no address of it they would hand out), so a lookup that finds
// nothing is repeated until findPeerTimeout. The lookups may use relayed
// connections whatever ctx says: their queries are small, and a lookup
// that reaches its target only through a relay would otherwise wait for a
// hole punch that may never come.
func (n *Node) findPeer(ctx context.Context, pid peer.ID) (peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "find peer"), findPeerTimeout)
	defer cancel()
	pause := findPeerPause
	for tries := 1; ; tries++ {
		ai, err := n.dht.FindPeer(ctx, pid)
		switch {
		case err == nil:
			n.metrics.lookups.WithLabelValues("found").Inc()
			return ai, nil
		case !errors.Is(err, routing.ErrNotFound):
			n.metrics.lookups.WithLabelValues("error").Inc()
			return peer.AddrInfo{}, err
		}
		n.metrics.lookups.WithLabelValues("not_found").Inc()
		select {
		case <-ctx.Done():
			return peer.AddrInfo{}, fmt.Errorf("%w (%d lookups)", err, tries)
		case <-time.After(pause):
		}
		pause = min(2*pause, findPeerMaxPause)
	}
}

// Ping opens a stream to a peer (by peer ID or maker address) and times a
// ping round trip over it. With direct, the stream must run over a direct
// connection: a peer reached only through a relay is hole-punched first
// (as tunnels are); without, a relayed connection is used as it is. A peer
// not connected and with no known address is looked up in the DHT.
func (n *Node) Ping(ctx context.Context, target string, direct bool) (sdk.PingResult, error) {
	pid, err := n.resolvePeer(target)
	if err != nil {
		return sdk.PingResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	sctx := ctx
	if !direct {
		sctx = network.WithAllowLimitedConn(ctx, "ping")
	}
	if err := n.connect(sctx, pid); err != nil {
		return sdk.PingResult{}, err
	}
	s, err := n.host.NewStream(sctx, pid, ping.ID)
	if err != nil {
		if direct && n.host.Network().Connectedness(pid) == network.Limited {
			return sdk.PingResult{}, fmt.Errorf("%w: %s is reachable through a relay only: hole punching gave no direct connection (a symmetric NAT on its side or ours?): %w", api.ErrUnreachable, pid, err)
		}
		return sdk.PingResult{}, fmt.Errorf("%w: open stream to %s: %w", api.ErrUnreachable, pid, err)
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	buf, back := make([]byte, ping.PingSize), make([]byte, ping.PingSize)
	_, _ = rand.Read(buf)
	start := time.Now()
	if _, err := s.Write(buf); err != nil {
		return sdk.PingResult{}, fmt.Errorf("%w: ping %s: %w", api.ErrUnreachable, pid, err)
	}
	if _, err := io.ReadFull(s, back); err != nil {
		return sdk.PingResult{}, fmt.Errorf("%w: ping %s: %w", api.ErrUnreachable, pid, err)
	}
	rtt := time.Since(start)
	if !bytes.Equal(buf, back) {
		return sdk.PingResult{}, fmt.Errorf("node: ping %s: wrong echo", pid)
	}
	return sdk.PingResult{PeerID: pid.String(), RTT: rtt.String(), RTTMillis: float64(rtt.Microseconds()) / 1000, Conn: connInfo(s.Conn())}, nil
}
