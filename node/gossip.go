package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// TopicPrefix is the prefix of the per-country order topics.
const TopicPrefix = "/ipsx/orders/1/"

func topicName(cc string) string { return TopicPrefix + cc }

// shard is a joined country topic.
type shard struct {
	cc     string
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	synced atomic.Bool
	kick   chan struct{} // wakes the sync loop (a peer joined)
}

// pull asks the reconcile loop to fetch a maker's orders in a shard.
type pull struct {
	maker common.Address
	cc    string
	from  peer.ID
}

// messageID is a gossip message's id: the SHA-256 of its data, as 32 raw
// bytes. It decodes nothing: the pubsub event loop calls it on every
// message before the duplicate check, so its cost must not depend on what
// the data claims to be. A copy of an order padded with whitespace is a new
// message (with the EIP-712 digest as id it was a duplicate, dropped before
// the validator could reject it for its size). The RPC frame bounds the
// data hashed (maxRPCSize); the validator rejects any message over
// Params.MaxSize before decoding it.
func messageID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

// scoreParams: GossipSub v1.1 peer scoring. What counts is P4 (invalid
// messages) — a peer that forwards forged or malformed orders sinks fast
// and is graylisted — and P2 (first deliveries) rewarding useful peers.
// Mesh delivery rate (P3) is off: order traffic is bursty and sparse, so a
// quiet topic must not look like a failing peer.
func scoreParams() (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	p := &pubsub.PeerScoreParams{
		Topics:                    map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore:          func(peer.ID) float64 { return 0 },
		AppSpecificWeight:         1,
		IPColocationFactorWeight:  0, // many honest providers share NATs; limits live in the resource manager
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               10 * time.Minute,
		TopicScoreCap:             100,
	}
	t := &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -200,
		GraylistThreshold:           -400,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
	return p, t
}

func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                     1,
		TimeInMeshWeight:                0.01,
		TimeInMeshQuantum:               time.Second,
		TimeInMeshCap:                   100,
		FirstMessageDeliveriesWeight:    0.5,
		FirstMessageDeliveriesDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:       100,
		InvalidMessageDeliveriesWeight:  -50,
		InvalidMessageDeliveriesDecay:   pubsub.ScoreParameterDecay(time.Hour),
		SkipAtomicValidation:            true,
		MeshMessageDeliveriesWeight:     0,
		MeshFailurePenaltyWeight:        0,
		MeshMessageDeliveriesActivation: 0,
	}
}

// joinShard joins a country topic (idempotent): registers the validator,
// subscribes, and starts the shard's sync loop under wg.
func (n *Node) joinShard(ctx context.Context, wg *sync.WaitGroup, cc string) (*shard, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := n.shards[cc]; ok {
		return s, nil
	}
	if !orderbook.ValidCountry(cc) {
		return nil, fmt.Errorf("%w: %q", orderbook.ErrUnknownCountry, cc)
	}
	name := topicName(cc)
	if err := n.ps.RegisterTopicValidator(name, n.validate, pubsub.WithValidatorConcurrency(n.o.queue)); err != nil {
		return nil, fmt.Errorf("node: validator for %s: %w", name, err)
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("node: join %s: %w", name, err)
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		return nil, fmt.Errorf("node: score params for %s: %w", name, err)
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(n.o.queue))
	if err != nil {
		return nil, fmt.Errorf("node: subscribe %s: %w", name, err)
	}
	s := &shard{cc: cc, topic: t, sub: sub, kick: make(chan struct{}, 1)}
	n.shards[cc] = s
	wg.Add(3)
	go func() { defer wg.Done(); n.drain(ctx, s) }()
	go func() { defer wg.Done(); n.syncLoop(ctx, s) }()
	go func() { defer wg.Done(); n.watchPeers(ctx, s) }()
	return s, nil
}

// drain reads the subscription. The validator already stored what it
// accepted, so this only keeps the subscription from overflowing.
func (n *Node) drain(ctx context.Context, s *shard) {
	for {
		if _, err := s.sub.Next(ctx); err != nil {
			return
		}
	}
}

// watchPeers wakes the sync loop when a peer joins the topic.
func (n *Node) watchPeers(ctx context.Context, s *shard) {
	h, err := s.topic.EventHandler()
	if err != nil {
		return
	}
	defer h.Cancel()
	for {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if ev.Type == pubsub.PeerJoin {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
}

func (n *Node) shard(cc string) *shard {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.shards[cc]
}

// publish sends a message on a shard, joining it first if need be.
func (n *Node) publish(ctx context.Context, cc string, data []byte) error {
	s := n.shard(cc)
	if s == nil {
		if n.runWG == nil {
			return errors.New("node: not running")
		}
		var err error
		if s, err = n.joinShard(n.runCtx, n.runWG, cc); err != nil {
			return err
		}
	}
	return s.topic.Publish(ctx, data)
}

// validate is the topic validator: decode, rate-limit, run the validity
// function and apply what passes to the book. Messages this node published
// itself were validated and stored before publishing.
func (n *Node) validate(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	defer n.metrics.validated(time.Now())
	if from == n.host.ID() {
		return pubsub.ValidationAccept
	}
	cc := strings.TrimPrefix(msg.GetTopic(), TopicPrefix)
	if len(msg.Data) > n.params.MaxSize {
		return n.verdict("oversized", from, fmt.Errorf("%w: %d bytes, max %d", orderbook.ErrTooLarge, len(msg.Data), n.params.MaxSize))
	}
	m, err := orderbook.DecodeMessage(msg.Data, n.params.MaxSize)
	if err != nil {
		return n.verdict("malformed", from, err)
	}
	if !n.peerLim.allow(from.String()) {
		n.metrics.dropped.WithLabelValues("rate_limit_peer").Inc()
		return pubsub.ValidationIgnore
	}
	now := n.now()
	switch {
	case m.Order != nil:
		o := m.Order
		kind := o.Kind.String()
		if o.Shard() != cc {
			return n.verdict(kind, from, fmt.Errorf("%w: order for %s on the %s topic", orderbook.ErrMalformed, o.Shard(), cc))
		}
		if !n.mkLim.allow(o.Maker.Hex()) {
			n.metrics.dropped.WithLabelValues("rate_limit_maker").Inc()
			return pubsub.ValidationIgnore
		}
		if err := orderbook.Validate(o, len(msg.Data), now, n.params, n.book, n.balanceView()); err != nil {
			return n.verdict(kind, from, err)
		}
		added, err := n.book.Add(o)
		if err != nil {
			return n.verdict(kind, from, err)
		}
		n.emitAdded(o, added)
		return n.verdict(kind, from, nil)
	case m.Cancel != nil:
		c := m.Cancel
		if err := orderbook.ValidateCancel(c, now, n.params); err != nil {
			return n.verdict("cancel", from, err)
		}
		if o, err := n.book.Get(c.OrderID); err == nil && o.Shard() != cc {
			return n.verdict("cancel", from, fmt.Errorf("%w: cancel of a %s order on the %s topic", orderbook.ErrMalformed, o.Shard(), cc))
		}
		o, err := n.book.Cancel(c)
		if err != nil {
			return n.verdict("cancel", from, err)
		}
		if o != nil {
			n.events.publish("order.removed", sdk.OrderEvent{Order: o, Reason: "cancelled"})
		}
		return n.verdict("cancel", from, nil)
	case m.Heartbeat != nil:
		h := m.Heartbeat
		if h.Country != cc {
			return n.verdict("heartbeat", from, fmt.Errorf("%w: heartbeat for %s on the %s topic", orderbook.ErrMalformed, h.Country, cc))
		}
		if h.Maker == n.addr {
			return n.verdict("heartbeat", from, fmt.Errorf("%w: own heartbeat echoed", orderbook.ErrDuplicate))
		}
		if err := orderbook.ValidateHeartbeat(h, now, n.o.liveTTL, n.params); err != nil {
			return n.verdict("heartbeat", from, err)
		}
		inSync, err := n.book.ApplyHeartbeat(h)
		if err != nil {
			return n.verdict("heartbeat", from, err)
		}
		if !inSync {
			select {
			case n.reconcile <- pull{maker: h.Maker, cc: cc, from: from}:
			default:
				n.metrics.dropped.WithLabelValues("reconcile_queue_full").Inc()
			}
		}
		return n.verdict("heartbeat", from, nil)
	}
	return n.verdict("malformed", from, orderbook.ErrMalformed)
}

func (n *Node) verdict(kind string, from peer.ID, err error) pubsub.ValidationResult {
	v := orderbook.VerdictOf(err)
	n.metrics.gossip.WithLabelValues(kind, v.String()).Inc()
	switch v {
	case orderbook.Accept:
		return pubsub.ValidationAccept
	case orderbook.Ignore:
		return pubsub.ValidationIgnore
	}
	n.log.Debug("rejected gossip", "peer", from, "kind", kind, "err", err)
	return pubsub.ValidationReject
}

// tracer counts the drops GossipSub would otherwise make silently.
type tracer struct{ m *metrics }

func (t tracer) Join(string)                                          {}
func (t tracer) Leave(string)                                         {}
func (t tracer) Graft(peer.ID, string)                                {}
func (t tracer) Prune(peer.ID, string)                                {}
func (t tracer) ValidateMessage(*pubsub.Message)                      {}
func (t tracer) DeliverMessage(*pubsub.Message)                       {}
func (t tracer) DuplicateMessage(*pubsub.Message)                     {}
func (t tracer) ThrottlePeer(peer.ID)                                 {}
func (t tracer) RecvRPC(*pubsub.RPC)                                  {}
func (t tracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t tracer) OnClosedOutboundStream(peer.ID)                       {}

func (t tracer) RejectMessage(_ *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull:
		t.m.dropped.WithLabelValues("validation_queue_full").Inc()
	case pubsub.RejectValidationThrottled:
		t.m.dropped.WithLabelValues("validation_throttled").Inc()
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored:
		// counted by the validator itself
	default:
		t.m.dropped.WithLabelValues(strings.ReplaceAll(reason, " ", "_")).Inc()
	}
}

func (t tracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	t.m.dropped.WithLabelValues("outbound_queue_full").Add(float64(max(1, len(rpc.GetPublish()))))
}

func (t tracer) UndeliverableMessage(*pubsub.Message) {
	t.m.dropped.WithLabelValues("undeliverable").Inc()
}

// limiter is a set of token buckets by key. It forgets everything when it
// grows past limiterMax keys, which bounds memory against key churn at the
// cost of a fresh burst for everyone.
type limiter struct {
	mu    sync.Mutex // guards m
	m     map[string]*rate.Limiter
	r     rate.Limit
	burst int
}

const limiterMax = 100_000

func newLimiter(r rate.Limit, burst int) *limiter {
	return &limiter{m: map[string]*rate.Limiter{}, r: r, burst: burst}
}

func (l *limiter) allow(k string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[k]
	if !ok {
		if len(l.m) >= limiterMax {
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[k] = lim
	}
	return lim.Allow()
}
