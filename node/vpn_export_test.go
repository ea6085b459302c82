package node

import (
	"context"
	"net"

	"github.com/ipsx/ipsx/tunnel"
)

// RouteUDP opens a UDP flow for a route as the SOCKS5 proxy's UDP
// ASSOCIATE does.
func (n *Node) RouteUDP(ctx context.Context, r tunnel.Route, target string) (net.Conn, error) {
	return nodeRouter{n}.RouteUDP(ctx, r, target)
}
