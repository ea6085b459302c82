package node

import (
	"context"
	"net"

	"github.com/ipsx/ipsx/node/api"
)

func (n *Node) serveAPI(ctx context.Context, ln net.Listener) error {
	opts := []api.Option{api.WithLogger(n.o.logger), api.WithMetrics(n.reg)}
	if !IsLoopbackAddr(ln.Addr().String()) {
		// Reachable from elsewhere (--allow-public-listen): the metrics
		// name peers, deals and traffic, so they need the token too.
		opts = append(opts, api.WithMetricsAuth())
	}
	srv := api.New(n, n.token, opts...)
	return srv.Serve(ctx, ln)
}
