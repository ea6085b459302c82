package node

import (
	"context"
	"net"

	"github.com/ipsx/ipsx/node/api"
)

func (n *Node) serveAPI(ctx context.Context, ln net.Listener) error {
	opts := []api.Option{api.WithLogger(n.o.logger), api.WithMetrics(n.reg)}
	if n.cfg.MetricsAuth || !IsLoopbackAddr(ln.Addr().String()) {
		// Reachable from elsewhere (--allow-public-listen), or asked for
		// (--metrics-auth: other local users must not read them): the
		// metrics tell deals, traffic and earnings, so they need the token.
		opts = append(opts, api.WithMetricsAuth())
	}
	srv := api.New(n, n.token, opts...)
	return srv.Serve(ctx, ln)
}
