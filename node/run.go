package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// DHTPrefix keeps the IPSX DHT apart from the IPFS one.
const DHTPrefix = "/ipsx"

// Run starts the node and blocks until ctx ends, then stops everything it
// started and returns. It returns early with an error if the node cannot
// start, or if a part of it fails while running (the deal driver cannot
// save a record, a proxy or API listener dies). The database stays open
// until Close.
//
// Shutdown happens in one place: cancel, stop taking new streams and wait
// for the stream handlers running, join every goroutine Run started, then
// close what was opened, newest first (the chain client last: an
// in-flight transaction never sees it closed).
func (n *Node) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var closers []func()
	errc := make(chan error, 8)
	n.handlers = &handlerGroup{}
	defer func() {
		cancel()
		n.handlers.close()
		wg.Wait()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		// The last line of a run, whatever ended it (a failure was
		// logged as it happened).
		n.log.Info("node stopped", "uptime", time.Since(n.started).Round(time.Second).String(), "clean", err == nil)
	}()
	n.runCtx, n.runWG, n.runErr = ctx, &wg, errc
	n.started = time.Now()
	if n.cfg.ExitAllowLoopback {
		n.log.Warn("UNSAFE: --exit-allow-loopback is on: requesters of this provider reach 127.0.0.0/8, this machine's own services; for local smoke tests only, never on a provider serving the public")
	}

	if err := n.connectChain(ctx); err != nil {
		return err
	}
	if n.chainClose != nil {
		closers = append(closers, n.chainClose)
	}
	if err := n.startHost(ctx); err != nil {
		return err
	}
	closers = append(closers, func() { n.host.Close() }, func() { n.dht.Close() })
	wg.Add(1)
	go func() { defer wg.Done(); n.runGuard(ctx) }()
	n.metrics.attachPeers(n.host.Network().Conns)
	wg.Add(1)
	go func() { defer wg.Done(); n.watchReach(ctx) }()

	n.handle(SyncProtocol, n.serveSync)
	if err := n.newDeals(ctx); err != nil {
		return err
	}
	if n.deals != nil {
		// The tunnel state first: the driver's hooks use it.
		if err := n.startTunnel(ctx, &wg); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.deals.Run(ctx); err != nil {
				n.fail(fmt.Errorf("node: deals: %w", err))
			}
		}()
		n.registerOffers(ctx)
		n.handle(agreement.ProtocolID, n.serveDeal)
		closers = append(closers, n.watchDealPeers())
	}

	for _, cc := range n.wantedShards() {
		if _, err := n.joinShard(ctx, &wg, cc); err != nil {
			return err
		}
	}

	if !n.o.noAPI {
		ln, err := net.Listen("tcp", n.cfg.API)
		if err != nil {
			return fmt.Errorf("node: api listen on %s: %w", n.cfg.API, err)
		}
		n.apiAddr = ln.Addr()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.serveAPI(ctx, ln); err != nil && ctx.Err() == nil {
				n.fail(fmt.Errorf("node: api: %w", err))
			}
		}()
	}

	wg.Add(5)
	go func() { defer wg.Done(); n.unmatchedLoop(ctx) }()
	go func() { defer wg.Done(); n.addressBook(ctx) }()
	go func() { defer wg.Done(); n.heartbeatLoop(ctx) }()
	go func() { defer wg.Done(); n.sweepLoop(ctx) }()
	go func() { defer wg.Done(); n.reconcileLoop(ctx) }()
	if len(n.cfg.Bootstrap) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); n.bootstrap(ctx) }()
	}
	n.republishOwn(ctx)

	n.log.Info("node running", "peer", n.host.ID(), "addrs", n.host.Addrs(), "api", n.apiAddr)
	close(n.ready)

	select {
	case <-ctx.Done():
		if err := n.savePeers(); err != nil {
			n.log.Warn("save address book", "err", err)
		}
		return nil
	case err := <-errc:
		n.log.Error("node stops", "err", err)
		return err
	}
}

// fail ends Run with err (the first failure wins; later ones are logged).
func (n *Node) fail(err error) {
	select {
	case n.runErr <- err:
	default:
		n.log.Error("node part failed", "err", err)
	}
}

// handle registers a stream handler that Run waits for at shutdown.
func (n *Node) handle(proto protocol.ID, h network.StreamHandler) {
	n.host.SetStreamHandler(proto, n.handlers.wrap(h))
}

// handlerGroup tracks the stream handlers running, so that Run waits for
// them before it closes what they use; once closed it resets new streams.
type handlerGroup struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

func (g *handlerGroup) wrap(h network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			_ = s.Reset()
			return
		}
		g.wg.Add(1)
		g.mu.Unlock()
		defer g.wg.Done()
		h(s)
	}
}

func (g *handlerGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

func (n *Node) startHost(ctx context.Context) error {
	p2pKey, err := P2PKey(n.key)
	if err != nil {
		return err
	}
	cm, err := connmgr.NewConnManager(100, 400, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return err
	}
	rm, err := resourceManager()
	if err != nil {
		return fmt.Errorf("node: resource manager: %w", err)
	}
	h, err := libp2p.New(append([]libp2p.Option{
		libp2p.Identity(p2pKey),
		libp2p.ListenAddrStrings(n.cfg.Listen...),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(n.guard),
		libp2p.PrometheusRegisterer(n.reg),
		libp2p.SwarmOpts(swarm.WithDialRanker(tcpFirstRanker)),
	}, n.reachOptions()...)...)
	if err != nil {
		return fmt.Errorf("node: libp2p host: %w", err)
	}
	boot, err := parseAddrInfos(n.cfg.Bootstrap)
	if err != nil {
		h.Close()
		return err
	}
	mode := dht.ModeAuto
	if n.cfg.DHTServer {
		mode = dht.ModeServer
	}
	kad, err := dht.New(h, dht.ProtocolPrefix(DHTPrefix), dht.Mode(mode), dht.BootstrapPeers(boot...))
	if err != nil {
		h.Close()
		return fmt.Errorf("node: dht: %w", err)
	}
	sp, st := scoreParams()
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithPeerScore(sp, st),
		// A maker sends its own messages to every peer on the topic, not
		// just its mesh: a peer that joined a moment ago and is not grafted
		// yet would otherwise miss them (GossipSub v0.19 defaults to off).
		pubsub.WithFloodPublish(true),
		pubsub.WithMaxMessageSize(maxRPCSize),
		pubsub.WithPeerOutboundQueueSize(n.o.queue),
		pubsub.WithValidateQueueSize(n.o.queue),
		pubsub.WithValidateThrottle(n.o.queue),
		pubsub.WithRawTracer(tracer{n.metrics}),
		pubsub.WithAppSpecificRpcInspector(n.inspectRPC),
		pubsub.WithLogger(n.pubsubLogger(ctx)),
		pubsub.WithDiscovery(rendezvous{drouting.NewRoutingDiscovery(kad), advertiseRetry}, pubsub.WithDiscoverConnector(rendezvousConnector)),
		pubsub.WithPeerScoreInspect(pubsub.ExtendedPeerScoreInspectFn(n.inspectScores), time.Second),
	)
	if err != nil {
		kad.Close()
		h.Close()
		return fmt.Errorf("node: gossipsub: %w", err)
	}
	n.host, n.dht, n.ps = h, kad, ps
	if err := n.subscribeReach(); err != nil {
		kad.Close()
		h.Close()
		return err
	}
	return nil
}

// wantedShards are the configured countries plus those of own orders.
func (n *Node) wantedShards() []string {
	seen := map[string]bool{}
	var out []string
	for _, cc := range n.cfg.Countries {
		if !seen[cc] {
			seen[cc] = true
			out = append(out, cc)
		}
	}
	own, err := n.ownOrders()
	if err != nil {
		n.log.Warn("list own orders", "err", err)
	}
	for _, o := range own {
		if cc := o.Shard(); !seen[cc] {
			seen[cc] = true
			out = append(out, cc)
		}
	}
	return out
}

// bootstrap connects to the configured peers and retries the ones that fail
// until each has connected once.
func (n *Node) bootstrap(ctx context.Context) {
	boot, _ := parseAddrInfos(n.cfg.Bootstrap)
	pending := boot
	backoff := time.Second
	for len(pending) > 0 {
		var left []peer.AddrInfo
		for _, ai := range pending {
			if ai.ID == n.host.ID() {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := n.host.Connect(cctx, ai)
			cancel()
			if err != nil {
				n.log.Warn("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				left = append(left, ai)
			}
		}
		if len(left) == 0 {
			_ = n.dht.Bootstrap(ctx)
			return
		}
		pending = left
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// republishOwn sends the node's own live orders again after a start, since
// peers may have dropped them while it was away.
func (n *Node) republishOwn(ctx context.Context) {
	own, err := n.ownOrders()
	if err != nil {
		n.log.Warn("list own orders", "err", err)
		return
	}
	for _, o := range own {
		data, err := orderbook.Message{Order: o}.Encode()
		if err == nil {
			err = n.publish(ctx, o.Shard(), data)
		}
		if err != nil {
			n.log.Warn("republish order", "order", o.ID().Hex(), "err", err)
		}
	}
}

// heartbeatLoop signs and publishes a heartbeat per shard with own orders.
func (n *Node) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(n.o.heartbeat)
	defer t.Stop()
	for {
		n.sendHeartbeats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) sendHeartbeats(ctx context.Context) {
	own, err := n.ownOrders()
	if err != nil {
		n.log.Warn("list own orders", "err", err)
		return
	}
	byShard := map[string][]*orderbook.Order{}
	for _, o := range own {
		byShard[o.Shard()] = append(byShard[o.Shard()], o)
	}
	for cc, orders := range byShard {
		d, cnt := orderbook.DigestOf(orders)
		h := &orderbook.Heartbeat{
			ChainID: n.params.Domain.ChainID, VerifyingContract: n.params.Domain.VerifyingContract,
			Country: cc, Created: uint64(n.now().Unix()), Count: cnt, Digest: d,
		}
		if err := h.Sign(n.key); err != nil {
			n.log.Error("sign heartbeat", "err", err)
			return
		}
		data, err := orderbook.Message{Heartbeat: h}.Encode()
		if err == nil {
			err = n.publish(ctx, cc, data)
		}
		if err != nil && ctx.Err() == nil {
			n.log.Warn("publish heartbeat", "shard", cc, "err", err)
		}
	}
}

// sweepLoop removes orders past their deadline.
func (n *Node) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.Sweep()
	}
}

// Sweep removes expired and dead orders now, emitting order.removed.
func (n *Node) Sweep() {
	now := n.now()
	removed, err := n.book.Sweep(now)
	if err != nil {
		n.log.Error("sweep book", "err", err)
		return
	}
	for _, o := range removed {
		reason := "expired"
		if o.Expires > uint64(now.Unix()) {
			reason = "dead" // no heartbeat from its maker within the TTL
		}
		n.events.publish("order.removed", sdk.OrderEvent{Order: o, Reason: reason})
	}
}

// reconcileLoop pulls a maker's orders when its heartbeat digest did not
// match the book. It waits a moment first, since the orders may still be on
// their way by gossip, and checks again before pulling.
func (n *Node) reconcileLoop(ctx context.Context) {
	const settle = 2 * time.Second
	type key struct {
		maker common.Address
		cc    string
	}
	pending := map[key]pull{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	armed := false
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-n.reconcile:
			pending[key{p.maker, p.cc}] = p
			if !armed {
				timer.Reset(settle)
				armed = true
			}
		case <-timer.C:
			armed = false
			for k, p := range pending {
				delete(pending, k)
				if ctx.Err() != nil {
					return
				}
				n.pullMaker(ctx, p)
			}
		}
	}
}

func (n *Node) pullMaker(ctx context.Context, p pull) {
	h, err := n.book.HeartbeatOf(p.maker, p.cc)
	if err != nil {
		return
	}
	orders, err := n.book.ByMaker(p.maker, p.cc)
	if err != nil {
		return
	}
	if d, c := orderbook.DigestOf(orders); d == h.Digest && c == h.Count {
		return // gossip caught up
	}
	n.metrics.pulls.Inc()
	// Ask the maker itself when connected (its PeerID follows from the
	// heartbeat's signature), else the peer that forwarded the heartbeat.
	sources := []peer.ID{p.from}
	if pub, err := heartbeatPubkey(h); err == nil {
		if pid, err := PeerIDOfPubkey(pub); err == nil && n.host.Network().Connectedness(pid) == network.Connected {
			sources = []peer.ID{pid, p.from}
		}
	}
	for _, src := range sources {
		if src == "" || src == n.host.ID() {
			continue
		}
		_, err := n.syncFrom(ctx, src, syncRequest{Country: p.cc, Maker: &p.maker})
		if err == nil {
			return
		}
		n.log.Debug("pull maker orders", "peer", src, "maker", p.maker.Hex(), "err", err)
	}
}

// inspectScores keeps the latest GossipSub scores for PeerScores.
func (n *Node) inspectScores(m map[peer.ID]*pubsub.PeerScoreSnapshot) {
	scores := make(map[peer.ID]float64, len(m))
	gray := map[peer.ID]bool{}
	_, th := scoreParams()
	for id, s := range m {
		scores[id] = s.Score
		if s.Score < th.GraylistThreshold {
			gray[id] = true
		}
	}
	n.guard.graylisted(gray)
	n.scoreMu.Lock()
	n.scores = scores
	n.scoreMu.Unlock()
}

// PeerScores returns the GossipSub scores this node gives its peers, as of
// the last inspection (once a second).
func (n *Node) PeerScores() map[peer.ID]float64 {
	n.scoreMu.Lock()
	defer n.scoreMu.Unlock()
	out := make(map[peer.ID]float64, len(n.scores))
	for k, v := range n.scores {
		out[k] = v
	}
	return out
}

// GossipPeers lists the peers this node sees on a shard's topic.
func (n *Node) GossipPeers(cc string) []peer.ID { return n.ps.ListPeers(topicName(cc)) }

// Publish sends raw bytes on a shard's topic, bypassing the local checks
// (tests use it to play a misbehaving peer).
func (n *Node) Publish(ctx context.Context, cc string, data []byte) error {
	return n.publish(ctx, cc, data)
}

// pubsubLogger hands GossipSub the node's logger only at debug level: its
// warnings (e.g. no DHT peers to advertise a topic to, as on any lone node)
// are noise in a daemon's log.
func (n *Node) pubsubLogger(ctx context.Context) *slog.Logger {
	if n.o.logger.Enabled(ctx, slog.LevelDebug) {
		return n.o.logger.With("component", "pubsub")
	}
	return slog.New(slog.DiscardHandler)
}
