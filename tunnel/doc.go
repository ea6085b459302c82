// Package tunnel carries a requester's proxied TCP connections and UDP
// flows out through a provider's IP.
//
// It owns four things:
//
//   - the requester front-ends: a SOCKS5 server (RFC 1928 CONNECT with remote
//     name resolution, i.e. socks5h, UDP ASSOCIATE over UDP flows for a
//     [UDPRouter], and RFC 1929 username/password) and an
//     HTTP proxy (CONNECT and absolute-URI forwarding of plain http://), both
//     meant for loopback, both handing every connection to a [Router];
//     and their front door: credentials ([Authenticator], [Passwords],
//     compared in constant time) with failed attempts limited per source
//     ([AuthLimiter]), the username grammar of commercial proxy networks
//     ([ParseRoute]), refusals a Router can make before a target is asked
//     for ([RouteChecker]), HTTP versions other than 1.0 and 1.1 answered
//     505 and ambiguous framing (request smuggling) refused, and an idle
//     timeout for established tunnels;
//   - the tunnel stream protocol /ipsx/tunnel/1.0.0 ([ProtocolID]): a bounded
//     binary [Header] (deal id, time, target host:port, session), a status
//     reply, then raw bytes both ways with half-close; [OpenStream] is the
//     requester's end and [Exit.ServeStream] the provider's; and its UDP
//     flow type (a version 2 header with [FlowUDP], then datagram frames,
//     see datagram.go; [OpenUDP], [PacketConn]);
//   - the provider's exit [Policy], checked on the resolved address inside
//     net.Dialer's Control hook, just before connect(2), so a name that
//     resolves (or re-resolves, as in DNS rebinding) to a forbidden address is
//     refused without a packet being sent to it;
//   - metering: per-deal byte counters, a token-bucket bandwidth limit, a
//     paid-ahead byte allowance and a stop switch ([Meter]), and the
//     connection log whose hash chain the vouchers co-sign ([ConnLog]).
//
// What it must not do: import chain, node or any libp2p package. Streams are
// plain interfaces ([Stream]; a libp2p network.Stream satisfies it, and so
// does *net.TCPConn) so that node can plug libp2p in. It does not decide
// which deal serves a route, whether a deal is active or paid, or when to
// buy one: those answers come in through [Router] (requester side) and
// [Authorizer] plus [Meter.Stop] / [Meter.SetAllowance] (provider side).
//
// Goroutines: [SOCKSServer.Serve], [HTTPProxy.Serve] and [Exit.ServeStream]
// block and join every goroutine they start before returning. Nothing here
// runs in the background on its own.
package tunnel
