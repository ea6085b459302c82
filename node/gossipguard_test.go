package node_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
	"github.com/ipsx/ipsx/testnet"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
)

// rawID is the documented message id: SHA-256 of the data, 32 raw bytes.
func rawID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

// pad returns data followed by n bytes of JSON whitespace (still the same
// order to a JSON decoder).
func pad(data []byte, n int) []byte {
	b := make([]byte, len(data)+n) // one allocation: the flood test's attacker pads 150 a second
	copy(b, data)
	for i := len(data); i < len(b); i++ {
		b[i] = ' '
	}
	return b
}

// TestMessageIDIsRawHash: the message id is the SHA-256 of the data, so a
// copy of a valid order padded with whitespace is a message of its own (not
// a free duplicate of the original), and the id of anything, decodable or
// not, is 32 bytes computed without decoding.
func TestMessageIDIsRawHash(t *testing.T) {
	k, _ := ethcrypto.GenerateKey()
	o := orderbooktest.Sign(orderbooktest.Offer(orderbook.Domain{ChainID: 1}, "DE", 1, time.Now()), k)
	data, err := orderbook.Message{Order: o}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range [][]byte{data, pad(data, 200_000), []byte("garbage"), nil} {
		id := node.MessageIDOf(&pb.Message{Data: d})
		if id != rawID(&pb.Message{Data: d}) || len(id) != 32 {
			t.Errorf("id of %d bytes is %x, want their SHA-256", len(d), id)
		}
	}
	if node.MessageIDOf(&pb.Message{Data: data}) == node.MessageIDOf(&pb.Message{Data: pad(data, 1000)}) {
		t.Error("a padded copy has the original's id: it would be dropped as a duplicate, unvalidated")
	}
}

// TestPaddedDuplicateRejected: a peer that re-sends a valid order padded
// past the maximum message size gets each copy rejected (it loses score)
// instead of having it dropped for free as a duplicate after a full decode.
func TestPaddedDuplicateRejected(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 1, Countries: []string{"DE"}})
	ctx := awaitCtx(t)
	n := tn.Members[0].Node
	o, err := n.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := orderbook.Message{Order: o}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	topic, from := rawPeer(t, ctx, n.AddrInfo(), "DE",
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(), pubsub.WithMessageIdFn(rawID))
	for i := range 5 {
		if err := topic.Publish(ctx, pad(data, node.MaxRPCSize/2+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := testnet.Await(ctx, func() error {
		// The first copies are rejected; the peer is graylisted after a
		// few (its later copies are not even read).
		if got := counter(t, n, "ipsx_gossip_messages_total", "oversized", "reject"); got < 1 {
			return fmt.Errorf("no padded copy rejected; score %.1f", n.PeerScores()[from])
		}
		if s := n.PeerScores()[from]; s >= 0 {
			return fmt.Errorf("the padding peer's score is %.1f", s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestThrottledRPCsDropped: once a peer is throttled, the messages of its
// RPCs are dropped before GossipSub handles them (inspectRPC): charged as
// drops, but never hashed, queued or handed to the validator.
func TestThrottledRPCsDropped(t *testing.T) {
	lim := node.DefaultSpamLimits()
	lim.Grace = time.Hour // throttled, not banned: the peer stays connected
	tn := startTestnet(t, testnet.Config{Nodes: 1, Countries: []string{"DE"},
		NodeOptions: []node.Option{node.WithSpamLimits(lim)}})
	ctx := awaitCtx(t)
	n := tn.Members[0].Node
	topic, from := rawPeer(t, ctx, n.AddrInfo(), "DE", pubsub.WithPeerOutboundQueueSize(4096),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(), pubsub.WithMessageIdFn(rawID))
	sent := 0
	// Expired offers: ignored (not rejected, so the peer's GossipSub
	// score stays above the graylist and only the spam guard acts).
	expired := func() {
		t.Helper()
		sent++
		o := orderbooktest.Offer(n.Status(ctx).Domain(), "DE", uint64(sent), time.Now().Add(-3*time.Hour))
		o.Maker, o.Signature = randomAddress(), randomBytes(65)
		data, err := orderbook.Message{Order: o}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := topic.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := testnet.Await(ctxTimeout(ctx, 30*time.Second), func() error {
		if !n.SpamState(from).Throttled {
			expired()
			return fmt.Errorf("not throttled after %d expired offers: %+v", sent, n.SpamState(from))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	validated := counter(t, n, "ipsx_gossip_validation_duration_seconds")
	dropped := counter(t, n, "ipsx_gossip_dropped_total", "peer_throttled")
	const more = 100 // about 80 arrive: the sender's GossipSub drops some
	for range more {
		expired()
	}
	if err := testnet.Await(ctxTimeout(ctx, 30*time.Second), func() error {
		if got := counter(t, n, "ipsx_gossip_dropped_total", "peer_throttled") - dropped; got < more/2 {
			return fmt.Errorf("%.0f of %d messages of the throttled peer dropped, want half", got, more)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A few sent before the throttle may still have been in the queue.
	if got := counter(t, n, "ipsx_gossip_validation_duration_seconds") - validated; got > 10 {
		t.Errorf("%.0f messages of the throttled peer reached the validator, want none", got)
	}
}
