package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
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

// inspectRPC drops the messages of a throttled or banned peer's RPC
// before GossipSub handles them: they are neither hashed for their ids
// nor queued for validation. Each is charged as a drop, as validate
// would, so a peer that keeps sending stays throttled. The RPC's
// subscriptions and control messages still count, so that a peer back
// from probation is still known to be on its topics.
func (n *Node) inspectRPC(from peer.ID, rpc *pubsub.RPC) error {
	if len(rpc.Publish) == 0 || !n.guard.throttledNow(from) {
		return nil
	}
	for range rpc.Publish {
		n.guard.admit(from)
	}
	n.metrics.dropped.WithLabelValues("peer_throttled").Add(float64(len(rpc.Publish)))
	rpc.Publish = nil
	return nil
}

// validate is the topic validator. Work grows with trust: a throttled or
// banned peer's message is dropped unread; then come the size check,
// the peer's rate limit, the decode and the cheap checks (topic, maker
// rate limit, fields, expiry, duplicates); only what passes them queues
// for the signature check, balance lookup and book write on the
// validation pool, in the sending peer's own queue. Every verdict is
// charged to the peer's spam budget (spam.go). Messages this node
// published itself were validated and stored before publishing.
func (n *Node) validate(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	defer n.metrics.validated(time.Now())
	if from == n.host.ID() {
		return pubsub.ValidationAccept
	}
	if !n.guard.admit(from) {
		n.metrics.dropped.WithLabelValues("peer_throttled").Inc()
		return pubsub.ValidationIgnore
	}
	cc := strings.TrimPrefix(msg.GetTopic(), TopicPrefix)
	if len(msg.Data) > n.params.MaxSize {
		return n.verdict("oversized", from, fmt.Errorf("%w: %d bytes, max %d", orderbook.ErrTooLarge, len(msg.Data), n.params.MaxSize))
	}
	if !n.peerLim.allow(from.String()) {
		return n.drop("rate_limit_peer", from)
	}
	m, err := orderbook.DecodeMessage(msg.Data, n.params.MaxSize)
	if err != nil {
		return n.verdict("malformed", from, err)
	}
	now := n.now()
	kind, err := n.precheck(cc, m, len(msg.Data), now)
	if errors.Is(err, errMakerLimit) {
		return n.drop("rate_limit_maker", from)
	}
	if err != nil {
		return n.verdict(kind, from, err)
	}
	err = n.vpool.do(ctx, from, func() error { return n.apply(cc, from, m, now) })
	switch {
	case errors.Is(err, errPeerQueueFull):
		return n.drop("peer_queue_full", from)
	case errors.Is(err, errPeerThrottled):
		n.metrics.dropped.WithLabelValues("peer_throttled").Inc()
		return pubsub.ValidationIgnore
	case errors.Is(err, errPoolClosed), ctx.Err() != nil:
		n.metrics.dropped.WithLabelValues("stopping").Inc()
		return pubsub.ValidationIgnore
	}
	return n.verdict(kind, from, err)
}

var errMakerLimit = errors.New("node: maker rate limit")

// precheck runs the cheap checks of a decoded message: the topic, the
// maker's rate limit and, for an order, orderbook.Precheck (fields, size,
// domain, times, duplicates). kind labels the message in the metrics.
func (n *Node) precheck(cc string, m orderbook.Message, size int, now time.Time) (kind string, err error) {
	switch {
	case m.Order != nil:
		o := m.Order
		kind = o.Kind.String()
		if o.Shard() != cc {
			return kind, fmt.Errorf("%w: order for %s on the %s topic", orderbook.ErrMalformed, o.Shard(), cc)
		}
		if !n.mkLim.allow(o.Maker.Hex()) {
			return kind, errMakerLimit
		}
		return kind, orderbook.Precheck(o, size, now, n.params, n.book)
	case m.Cancel != nil:
		return "cancel", nil
	case m.Heartbeat != nil:
		h := m.Heartbeat
		if h.Country != cc {
			return "heartbeat", fmt.Errorf("%w: heartbeat for %s on the %s topic", orderbook.ErrMalformed, h.Country, cc)
		}
		if h.Maker == n.addr {
			return "heartbeat", fmt.Errorf("%w: own heartbeat echoed", orderbook.ErrDuplicate)
		}
		return "heartbeat", nil
	}
	return "malformed", orderbook.ErrMalformed
}

// apply is the expensive part, run on the validation pool: the signature
// and balance checks, then the book.
func (n *Node) apply(cc string, from peer.ID, m orderbook.Message, now time.Time) error {
	switch {
	case m.Order != nil:
		o := m.Order
		if err := orderbook.Verify(o, n.balanceView()); err != nil {
			return err
		}
		added, err := n.book.Add(o)
		if err != nil {
			return err
		}
		n.emitAdded(o, added)
		return nil
	case m.Cancel != nil:
		c := m.Cancel
		if err := orderbook.ValidateCancel(c, now, n.params); err != nil {
			return err
		}
		if o, err := n.book.Get(c.OrderID); err == nil && o.Shard() != cc {
			return fmt.Errorf("%w: cancel of a %s order on the %s topic", orderbook.ErrMalformed, o.Shard(), cc)
		}
		o, err := n.book.Cancel(c)
		if err != nil {
			return err
		}
		if o != nil {
			n.events.publish("order.removed", sdk.OrderEvent{Order: o, Reason: "cancelled"})
		}
		return nil
	case m.Heartbeat != nil:
		h := m.Heartbeat
		if err := orderbook.ValidateHeartbeat(h, now, n.o.liveTTL, n.params); err != nil {
			return err
		}
		inSync, err := n.book.ApplyHeartbeat(h)
		if err != nil {
			return err
		}
		if !inSync {
			select {
			case n.reconcile <- pull{maker: h.Maker, cc: cc, from: from}:
			default:
				n.metrics.dropped.WithLabelValues("reconcile_queue_full").Inc()
			}
		}
		return nil
	}
	return orderbook.ErrMalformed
}

// drop ignores a message for reason (counted) and charges its sender.
func (n *Node) drop(reason string, from peer.ID) pubsub.ValidationResult {
	n.metrics.dropped.WithLabelValues(reason).Inc()
	n.guard.ignored(from)
	return pubsub.ValidationIgnore
}

func (n *Node) verdict(kind string, from peer.ID, err error) pubsub.ValidationResult {
	v := orderbook.VerdictOf(err)
	n.metrics.gossip.WithLabelValues(kind, v.String()).Inc()
	switch v {
	case orderbook.Accept:
		n.guard.accepted(from)
		return pubsub.ValidationAccept
	case orderbook.Ignore:
		n.guard.ignored(from)
		return pubsub.ValidationIgnore
	}
	n.guard.rejected(from)
	n.log.Debug("rejected gossip", "peer", from, "kind", kind, "err", err)
	return pubsub.ValidationReject
}

// runGuard runs the validation pool and, once a second, the spam guard's
// sweep, and disconnects the peers the guard bans; it returns when ctx
// ends, with the pool's workers joined.
func (n *Node) runGuard(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.vpool.run(ctx, validationWorkers()) }()
	defer wg.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.guard.sweep()
		case b := <-n.bans:
			n.log.Info("peer banned for gossip spam", "peer", b.p, "for", b.d.String(), "why", b.why)
			n.metrics.dropped.WithLabelValues("peer_banned").Inc()
			_ = n.host.Network().ClosePeer(b.p)
		}
	}
}

// banNote is a ban the guard made, for runGuard to carry out.
type banNote struct {
	p   peer.ID
	d   time.Duration
	why string
}

// validationWorkers: signature checks are CPU work, balance lookups and
// book writes wait on I/O; a few more workers than cores cover both.
func validationWorkers() int { return max(4, runtime.GOMAXPROCS(0)) }

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
