// Package node wires an IPSX node together: the libp2p host (TCP and QUIC),
// the Kademlia DHT under the /ipsx protocol prefix, GossipSub with one topic
// per country shard (/ipsx/orders/1/<CC>), order sync
// (/ipsx/ordersync/1.0.0), the badger database, the local REST API and the
// metrics. It is the only package whose goroutines live as long as the node;
// the pure cores (orderbook validation, matching, agreement) are called from
// here and do no I/O of their own.
//
// Gossip. Orders carry their own EIP-712 signatures, so pubsub-level signing
// is off and a message's id is the digest of the order (or cancel, or
// heartbeat) it carries: duplicates die at the first hop. The topic
// validator runs orderbook.Validate — signature included — before anything
// is forwarded, stores what it accepts, and answers Reject for malformed or
// forged messages (the sender's GossipSub score drops) and Ignore for stale,
// duplicate or rate-limited ones (free). Queues are sized for bursts and
// every drop is counted in ipsx_gossip_dropped_total.
//
// Liveness. An offer lives TTL (90 s) after its maker's latest signed
// heartbeat in its shard; a maker heartbeats every TTL/3 with the digest
// of its live orders there. A node whose book disagrees with a heartbeat's
// digest pulls that maker's orders by order sync, so a lost gossip message
// is repaired within one heartbeat. A node joining a shard pulls the shard's
// live book, page by page, from a peer on the topic, validating each order
// as if it had been gossiped.
//
// Chain. Config.Network names a network file (package network): the chain
// id, escrow and bootstrap peers come from it, and its RPC URLs (after
// Config.ChainRPC) are dialled together, calls failing over from one to
// the next (chain.DialAll). A dialled chain whose escrow is not this
// build's code, or takes another commission than the file says, is
// refused at start (chain.VerifyDeployment). Confirmations and ChainStart
// tell the deal driver how many blocks to wait on top of a deal event and
// where the escrow's events begin; chain.Follower does the waiting and
// reports reorged events.
//
// Why not matched. GET /v1/requests/{id} and the request.unmatched event
// (requests.go) come from the book and matching.Explain alone.
package node
