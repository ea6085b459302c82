package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// tcpFirstRanker orders a peer's addresses for dialling: direct TCP
// addresses first, then, quicAfterTCP later, everything else (QUIC, relays)
// in libp2p's own order. libp2p's default prefers QUIC, but a tunnel rides
// the connection its first dial made, and on this stack one flow over
// TCP+TLS+yamux moves three to four times what it does over quic-go, whose
// per-packet UDP system calls are most of its cost (issue 14's profile).
// QUIC stays the fallback when TCP does not connect, and hole punching is
// unaffected: libp2p dials a simultaneous connect without any ranker.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	var tcp, rest []ma.Multiaddr
	for _, a := range addrs {
		if isDirectTCP(a) {
			tcp = append(tcp, a)
		} else {
			rest = append(rest, a)
		}
	}
	if len(tcp) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	res := swarm.DefaultDialRanker(tcp)
	var last time.Duration
	for _, d := range res {
		last = max(last, d.Delay)
	}
	for _, d := range swarm.DefaultDialRanker(rest) {
		d.Delay += last + quicAfterTCP
		res = append(res, d)
	}
	return res
}

// quicAfterTCP is how long a dial waits for TCP before trying the rest: a
// TCP handshake and its upgrade, about one RTT (libp2p waits as long for
// TCP after QUIC on a public address).
const quicAfterTCP = swarm.PublicTCPDelay

// isDirectTCP: plain TCP to an IP or DNS name, not through a relay and not
// a websocket (whose framing costs what QUIC's packets do).
func isDirectTCP(a ma.Multiaddr) bool {
	tcp := false
	for _, c := range a {
		switch c.Code() {
		case ma.P_TCP:
			tcp = true
		case ma.P_CIRCUIT, ma.P_WS, ma.P_WSS, ma.P_TLS, ma.P_SNI:
			return false
		}
	}
	return tcp
}
