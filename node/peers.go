package node

import (
	"bytes"
	"context"
	"crypto/rand"
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
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sctx := ctx
	if !direct {
		sctx = network.WithAllowLimitedConn(ctx, "ping")
	}
	if n.host.Network().Connectedness(pid) == network.NotConnected {
		ai := peer.AddrInfo{ID: pid}
		if len(n.host.Peerstore().Addrs(pid)) == 0 {
			if ai, err = n.dht.FindPeer(ctx, pid); err != nil {
				return sdk.PingResult{}, fmt.Errorf("%w: find peer %s in the DHT: %w", api.ErrUnreachable, pid, err)
			}
		}
		if err := n.host.Connect(sctx, ai); err != nil {
			return sdk.PingResult{}, fmt.Errorf("%w: connect to %s: %w", api.ErrUnreachable, pid, err)
		}
	}
	s, err := n.host.NewStream(sctx, pid, ping.ID)
	if err != nil {
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
