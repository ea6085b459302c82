package node

import (
	"net/netip"
	"time"

	"github.com/ipsx/ipsx/tunnel"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
)

// Resource limits (the README's "Limits" explains them). go-libp2p's defaults
// suit a DHT server: 8 connections per IPv4 address, 16 new ones in a burst
// then one per 5 s, and 64-odd inbound streams per protocol per peer. A
// provider must serve many requesters behind one NAT (or one crawler
// fleet's many peers from one address) and hundreds of proxied flows over
// one requester's connection, so IPSX raises those while keeping every
// bound: per address, per peer, per protocol, memory and descriptors.
const (
	// LimitConnsPerIP bounds concurrent connections from one IPv4 address
	// (and one IPv6 /56).
	LimitConnsPerIP = 256
	// LimitConnsPerIPv6Net bounds concurrent connections from one IPv6 /48.
	LimitConnsPerIPv6Net = 1024
	// LimitNewConnsBurst new connections from one address are admitted at
	// once, then LimitNewConnsPerSec per second.
	LimitNewConnsBurst  = 128
	LimitNewConnsPerSec = 4
	// LimitTunnelStreamsPerPeer bounds the concurrent proxied flows of one
	// requester; LimitTunnelStreams those of all requesters together.
	LimitTunnelStreamsPerPeer = 1024
	LimitTunnelStreams        = 8192
	// LimitStreamsPerPeer bounds a peer's inbound streams of every protocol.
	LimitStreamsPerPeer = 2048
)

// resourceManager builds the libp2p resource manager with IPSX's limits,
// scaled to the machine's memory and file descriptors like libp2p's own.
func resourceManager() (network.ResourceManager, error) {
	cfg := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&cfg)
	// Memory: yamux reserves a stream's receive window (256 KiB to start)
	// against the stream's protocol and peer, so a requester's 1,024
	// flows need 256 MiB there before any grows.
	cfg.AddProtocolLimit(tunnel.ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: LimitTunnelStreams, StreamsOutbound: LimitTunnelStreams, Streams: LimitTunnelStreams, Memory: 1 << 30},
		rcmgr.BaseLimitIncrease{Memory: 256 << 20})
	cfg.AddProtocolPeerLimit(tunnel.ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: LimitTunnelStreamsPerPeer, StreamsOutbound: LimitTunnelStreamsPerPeer, Streams: LimitTunnelStreamsPerPeer, Memory: 384 << 20},
		rcmgr.BaseLimitIncrease{Memory: 64 << 20})
	cfg.PeerBaseLimit.Memory = max(cfg.PeerBaseLimit.Memory, 512<<20)
	cfg.PeerBaseLimit.StreamsInbound = LimitStreamsPerPeer
	cfg.PeerBaseLimit.StreamsOutbound = LimitStreamsPerPeer
	cfg.PeerBaseLimit.Streams = 2 * LimitStreamsPerPeer
	// The system must hold a few peers' worth of flows.
	cfg.SystemBaseLimit.StreamsInbound = max(cfg.SystemBaseLimit.StreamsInbound, 2*LimitTunnelStreams)
	cfg.SystemBaseLimit.Streams = max(cfg.SystemBaseLimit.Streams, 4*LimitTunnelStreams)
	cfg.SystemBaseLimit.ConnsInbound = max(cfg.SystemBaseLimit.ConnsInbound, 2*LimitConnsPerIP)
	cfg.SystemBaseLimit.Conns = max(cfg.SystemBaseLimit.Conns, 4*LimitConnsPerIP)
	cfg.SystemBaseLimit.FD = max(cfg.SystemBaseLimit.FD, 4*LimitConnsPerIP)

	perSubnet := rate.Limit{RPS: LimitNewConnsPerSec, Burst: LimitNewConnsBurst}
	rl := &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Limit: rate.Limit{}},
			{Prefix: netip.MustParsePrefix("::1/128"), Limit: rate.Limit{}},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: perSubnet}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: perSubnet},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 4 * LimitNewConnsPerSec, Burst: 4 * LimitNewConnsBurst}},
			},
			GracePeriod: time.Minute,
		},
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(cfg.AutoScale()),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: LimitConnsPerIP}},
			[]rcmgr.ConnLimitPerSubnet{
				{PrefixLength: 56, ConnCount: LimitConnsPerIP},
				{PrefixLength: 48, ConnCount: LimitConnsPerIPv6Net},
			}),
		rcmgr.WithConnRateLimiters(rl),
	)
}

// maxRPCSize bounds one GossipSub RPC frame, the most a peer can make the
// node read (and hash for the message id) before anything is validated. A
// valid message is at most orderbook.DefaultMaxSize (2 KiB) of data; the
// frame leaves room for a few dozen of them, or for the IHAVE ids of a
// burst of a thousand orders, or a PRUNE with its peer exchange records.
// go-libp2p-pubsub splits what it sends to fit its own limit; a peer that
// sends a larger frame has its stream reset (docs/orders.md).
const maxRPCSize = 64 << 10

// validationQueuePerPeer bounds the messages of one peer waiting for the
// validation pool: above a burst of a thousand orders from one maker
// (TestBurstDelivered), so that only a flood overflows it.
const validationQueuePerPeer = 2048
