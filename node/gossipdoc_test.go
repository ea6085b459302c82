package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
	"github.com/ipsx/ipsx/testnet"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// docBlock returns the JSON code block after marker in docs/orders.md.
func docBlock(t *testing.T, marker string) []byte {
	t.Helper()
	doc, err := os.ReadFile("../docs/orders.md")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(doc, []byte("<!-- "+marker+" -->"))
	if i < 0 {
		t.Fatalf("docs/orders.md has no %s block", marker)
	}
	rest := doc[i:]
	start := bytes.Index(rest, []byte("```json\n"))
	end := bytes.Index(rest[start+8:], []byte("```"))
	if start < 0 || end < 0 {
		t.Fatalf("no json block after %s", marker)
	}
	return rest[start+8 : start+8+end]
}

// TestGossipDoc checks what docs/orders.md tells another implementation
// about the gossip against the node: topic names, message size bounds,
// the heartbeat interval and offer lifetime, the DHT and sync protocols,
// that a message's id is the 32 raw bytes of the SHA-256 of its data, and
// that the example heartbeat is valid, signed by the test vector's key,
// digests the test vector's offer, and has the message id the document
// names.
func TestGossipDoc(t *testing.T) {
	var p struct {
		Topic            string
		SignaturePolicy  string
		Author           string
		MaxMessageBytes  int
		MessageID        string
		MaxRPCBytes      int
		HeartbeatSeconds int
		LiveSeconds      int
		DHTProtocol      string
		SyncProtocol     string
	}
	if err := json.Unmarshal(docBlock(t, "gossip-params"), &p); err != nil {
		t.Fatal(err)
	}
	check := func(what string, doc, node any) {
		t.Helper()
		if fmt.Sprint(doc) != fmt.Sprint(node) {
			t.Errorf("%s: the document says %v, the node %v", what, doc, node)
		}
	}
	check("topic", p.Topic, node.TopicPrefix+"<CC>")
	check("max message size", p.MaxMessageBytes, orderbook.DefaultMaxSize)
	check("max RPC size", p.MaxRPCBytes, node.MaxRPCSize)
	check("heartbeat interval", p.HeartbeatSeconds, int(node.DefaultHeartbeat/time.Second))
	check("offer lifetime", p.LiveSeconds, int(orderbook.DefaultLiveTTL/time.Second))
	check("dht protocol", p.DHTProtocol, node.DHTPrefix+"/kad/1.0.0")
	check("sync protocol", p.SyncProtocol, node.SyncProtocol)
	check("signature policy", p.SignaturePolicy+"/"+p.Author, "StrictNoSign/none") // what TestGossipInterop exercises

	var vec struct {
		PrivateKey string
		Order      json.RawMessage
	}
	if err := json.Unmarshal(docBlock(t, "test-vector"), &vec); err != nil {
		t.Fatal(err)
	}
	offer, err := orderbook.DecodeOrder(vec.Order)
	if err != nil {
		t.Fatal(err)
	}
	hbRaw := docBlock(t, "heartbeat-example")
	msg, err := orderbook.DecodeMessage(hbRaw, orderbook.DefaultMaxSize)
	if err != nil || msg.Heartbeat == nil {
		t.Fatalf("heartbeat example: %v", err)
	}
	hb := msg.Heartbeat
	key, _ := ethcrypto.HexToECDSA(strings.TrimPrefix(vec.PrivateKey, "0x"))
	if signer, err := hb.Signer(); err != nil || signer != ethcrypto.PubkeyToAddress(key.PublicKey) || signer != hb.Maker {
		t.Errorf("heartbeat signer %s %v, want the vector key's %s", signer.Hex(), err, hb.Maker.Hex())
	}
	if d, n := orderbook.DigestOf([]*orderbook.Order{offer}); d != hb.Digest || n != hb.Count {
		t.Errorf("heartbeat digest %s count %d, the vector offer gives %s %d", hb.Digest.Hex(), hb.Count, d.Hex(), n)
	}
	if !strings.Contains(string(mustRead(t, "../docs/orders.md")), hb.ID().Hex()) {
		t.Errorf("the document does not name the heartbeat's id %s", hb.ID().Hex())
	}
	check("message id", p.MessageID, "sha256(data), 32 raw bytes")
	for _, data := range [][]byte{hbRaw, vec.Order, []byte("not json")} {
		h := sha256.Sum256(data)
		if id := node.MessageIDOf(&pb.Message{Data: data}); id != string(h[:]) {
			t.Errorf("message id %x, want the 32 raw bytes of SHA-256 %x", id, h)
		}
	}
	compact, err := orderbook.Message{Heartbeat: hb}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if id := sha256.Sum256(compact); !strings.Contains(string(mustRead(t, "../docs/orders.md")), "0x"+hex.EncodeToString(id[:])) {
		t.Errorf("the document does not name the heartbeat's message id 0x%x", id)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawPeer is a plain go-libp2p-pubsub peer on a shard topic.
func rawPeer(t *testing.T, ctx context.Context, target peer.AddrInfo, cc string, opts ...pubsub.Option) (*pubsub.Topic, peer.ID) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	pctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(pctx, h, append([]pubsub.Option{pubsub.WithFloodPublish(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, target); err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(node.TopicPrefix + cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topic.Close() })
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	if err := testnet.Await(ctx, func() error {
		for _, p := range topic.ListPeers() {
			if p == target.ID {
				return nil
			}
		}
		return fmt.Errorf("the node is not on %s yet", node.TopicPrefix+cc)
	}); err != nil {
		t.Fatal(err)
	}
	return topic, h.ID()
}

// TestGossipInterop: a peer set up as docs/orders.md says (StrictNoSign,
// no author, message id = SHA-256 of the data) publishes an offer that a node accepts;
// a peer with go-libp2p-pubsub's defaults (signed messages, as js-libp2p's
// defaults also are) publishes one that the node drops, and its score falls.
func TestGossipInterop(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 1, Countries: []string{"DE"}})
	ctx := awaitCtx(t)
	n := tn.Members[0].Node
	d := n.Status(ctx).Domain()
	maker, _ := ethcrypto.GenerateKey()

	good, goodID := rawPeer(t, ctx, n.AddrInfo(), "DE",
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(), pubsub.WithMessageIdFn(rawID))
	bad, badID := rawPeer(t, ctx, n.AddrInfo(), "DE") // the library's defaults

	signed := orderbooktest.Sign(orderbooktest.Offer(d, "DE", 1, time.Now()), maker)
	unsigned := orderbooktest.Sign(orderbooktest.Offer(d, "DE", 2, time.Now()), maker)
	for _, x := range []struct {
		topic *pubsub.Topic
		o     *orderbook.Order
	}{{bad, signed}, {good, unsigned}} {
		data, err := orderbook.Message{Order: x.o}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := x.topic.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := testnet.Await(ctx, func() error {
		if !n.Book().Has(unsigned.ID()) {
			return fmt.Errorf("the documented peer's offer is not in the book")
		}
		if s := n.PeerScores()[badID]; s >= 0 {
			return fmt.Errorf("the default peer's score is %.2f", s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n.Book().Has(signed.ID()) {
		t.Error("a pubsub-signed message was accepted")
	}
	if s := n.PeerScores()[goodID]; s < 0 {
		t.Errorf("the documented peer lost score: %.2f", s)
	}
}
