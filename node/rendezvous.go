package node

import (
	"context"
	"math/rand"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/discovery/backoff"
)

// Shard rendezvous: GossipSub advertises each joined topic in the DHT
// (a provider record for the topic's name) and looks for peers of a topic
// it has too few of there, so a node finds the peers of its shards
// without being connected to everyone.
//
// rendezvous retries a failed advertisement soon: a node joins its shards
// while it is still connecting to its bootstrap peers, when the DHT's
// routing table is empty and every advertisement fails, and GossipSub
// would otherwise wait two minutes before trying again — two minutes in
// which nobody could find the node's offers.
type rendezvous struct {
	discovery.Discovery
	retry time.Duration
}

const advertiseRetry = 5 * time.Second

func (r rendezvous) Advertise(ctx context.Context, ns string, opts ...discovery.Option) (time.Duration, error) {
	ttl, err := r.Discovery.Advertise(ctx, ns, opts...)
	if err != nil {
		return r.retry, err
	}
	return ttl, nil
}

// rendezvousConnector dials the peers a rendezvous finds. A peer found
// before it had a relay address fails to connect; GossipSub's default
// backoff for it grows to an hour, this one to two minutes, so a provider
// behind NAT is reached soon after it gets its relay reservation.
func rendezvousConnector(h host.Host) (*backoff.BackoffConnector, error) {
	b := backoff.NewExponentialBackoff(2*time.Second, 2*time.Minute, backoff.FullJitter, time.Second, 2, 0, rand.New(rand.NewSource(rand.Int63())))
	return backoff.NewBackoffConnector(h, 256, time.Minute, b)
}
