// Package vpn is the requester's VPN mode: a TUN device whose TCP and UDP
// flows are terminated in a userspace network stack and carried as
// tunnel flows through a rented IP.
//
// It owns:
//
//   - the device (wireguard-go's tun package, Linux's /dev/net/tun) and a
//     gVisor tcpip stack over it (stack.go): promiscuous and spoofing, so
//     it is the far end of every flow the system routes into the TUN, as
//     wireguard-go's tun/netstack and tailscale's userspace mode are;
//   - the flows (flows.go): each TCP connection becomes one tunnel flow,
//     opened before the handshake completes (a target the tunnel cannot
//     reach is refused with a reset, not accepted and then cut), spliced
//     with half-close; each UDP 4-tuple becomes one UDP flow with a
//     NAT-style idle timeout, opened again on its next datagram if its
//     tunnel breaks — on another deal if the Dialer picks one, since a UDP
//     flow has no connection state to lose, while a TCP flow whose tunnel
//     breaks is reset (its state is at the provider, which cannot move);
//   - the system configuration that routes into the TUN (system.go): split
//     routes, or a default route by policy routing with a fwmark as
//     wg-quick does, the node's own traffic (its libp2p ports, its chain
//     RPC host, connections that came in from outside) marked by nftables
//     so it stays off the TUN; DNS pointed at a resolver on the TUN whose
//     queries leave from the provider; a kill switch; all recorded in a
//     state file before it is applied, undone when Run ends, and undone by
//     Recover after a crash (the kill switch stays armed then, until the
//     VPN comes up again or is taken down).
//
// Raw IP never crosses the tunnel: TCP over the tunnel is the provider's
// own TCP connection to the target, so there is no TCP-over-TCP meltdown,
// and the provider needs no root, no TUN and no NAT rules. The exit
// policy, metering and vouchers apply per flow exactly as for the proxies,
// because the flows are the proxies' tunnel streams ([Dialer] is node's,
// over the same deals). ICMP is not carried (ping through the VPN fails);
// nor is anything else but TCP and UDP.
//
// What it must not do: import node, chain or libp2p (node implements
// [Dialer]), or decide which deal a flow uses. It imports tunnel only for
// its wire types and errors.
//
// Goroutines: [VPN.Run] starts the stack's packet loops and one goroutine
// per flow (the TCP forwarder's per connection, registered with the VPN
// before it does anything) and joins them all before returning.
package vpn
