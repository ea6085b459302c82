package node

import (
	"context"
	"crypto/ecdsa"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ValidateGossip runs the topic validator on a message as if from had
// forwarded it on the shard cc.
func (n *Node) ValidateGossip(from peer.ID, cc string, data []byte) pubsub.ValidationResult {
	topic := topicName(cc)
	msg := &pubsub.Message{Message: &pb.Message{Data: data, Topic: &topic}, ReceivedFrom: from}
	return n.validate(context.Background(), from, msg)
}

// Key is the node's key (tests sign orders "elsewhere" with it).
func (n *Node) Key() *ecdsa.PrivateKey { return n.key }

// RankOffers orders offers as the requester ranks its candidates after
// matching (by local reputation, then verified before declared).
func (n *Node) RankOffers(offers []*orderbook.Order) []*orderbook.Order {
	fills := make([]matching.Fill, len(offers))
	for i, o := range offers {
		fills[i] = matching.Fill{Offer: o, OfferID: o.ID()}
	}
	n.rankCandidates(fills)
	out := make([]*orderbook.Order, len(fills))
	for i, f := range fills {
		out[i] = f.Offer
	}
	return out
}

// MaxFlowsPerProvider is the cap on a requester's open tunnel streams to
// one provider.
const MaxFlowsPerProvider = maxFlowsPerProvider

// SaveAddressBook writes the address book now, as the node does every
// bookSaveEvery.
func (n *Node) SaveAddressBook() error { return n.savePeers() }

// ConnLogMatches is the provider's check of a voucher's connection-log
// hash (connLogMatches).
func (n *Node) ConnLogMatches(deal, hash common.Hash) bool { return n.connLogMatches(deal, hash) }

// BreakSOCKSListener closes the SOCKS proxy's listener under the running
// node, as a dying socket would.
func (n *Node) BreakSOCKSListener() error { return n.tun.socksLn.Close() }

// ConnLogHead is the head and length of a deal's connection log on this
// node (provider: its meter's; requester: its own).
func (n *Node) ConnLogHead(deal common.Hash) (common.Hash, uint64, bool) {
	n.tun.mu.Lock()
	defer n.tun.mu.Unlock()
	if m, ok := n.tun.meters[deal]; ok {
		h, l := m.Log().Head()
		return h, l, true
	}
	if m, ok := n.tun.logs[deal]; ok {
		h, l := m.log.Head()
		return h, l, true
	}
	return common.Hash{}, 0, false
}

// ForgeConnLog makes a requester's log of a deal claim a head its
// provider never had, as a requester co-signing someone else's log would.
func (n *Node) ForgeConnLog(deal common.Hash) {
	n.tun.mu.Lock()
	defer n.tun.mu.Unlock()
	m := n.tun.logs[deal]
	_, l := m.log.Head()
	m.log.Resume(l+1, common.HexToHash("0xbad"))
}
