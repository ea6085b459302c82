package node

import (
	"context"
	"net"

	"github.com/ipsx/ipsx/node/api"
)

func (n *Node) serveAPI(ctx context.Context, ln net.Listener) error {
	srv := api.New(n, n.token, api.WithLogger(n.o.logger), api.WithMetrics(n.reg))
	return srv.Serve(ctx, ln)
}
