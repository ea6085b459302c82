package node

import (
	"errors"

	"github.com/ipsx/ipsx/tunnel"
	"github.com/libp2p/go-libp2p/core/peer"
)

// logTunnelStream logs how a tunnel stream served by the provider's exit
// ended. A refusal by the exit policy is logged at info, a few a second
// at most (a requester probing private ranges must not flood the log),
// so that a provider sees why a requester's connection failed; the
// requester has the same reason in its SOCKS reply or Proxy-Status.
// Everything else stays at debug.
func (n *Node) logTunnelStream(p peer.ID, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, tunnel.ErrNotAllowed) && n.exitLog.Allow() {
		n.log.Info("exit policy refused a destination", "peer", p, "err", err)
		return
	}
	n.log.Debug("tunnel stream", "peer", p, "err", err)
}
