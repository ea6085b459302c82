package node

import (
	"errors"
	"math/big"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node/deals"
	"github.com/ipsx/ipsx/tunnel"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's own Prometheus series; libp2p's register on the
// same registry. Names follow Prometheus's conventions: a unit suffix
// (_seconds, _bytes, _tokens), _total on counters, base units (amounts in
// whole tokens, 10^18 base units each, as a float). docs/grafana-dashboard.json
// charts them.
//
// Gauges that describe state the node already holds (deals by status,
// peers, own orders) are computed at scrape time from it, so they cannot
// drift; counters are bumped where the thing happens. Every labelled
// series the node knows in advance exists from the start at zero, so a
// dashboard or a test sees "none yet" rather than "no data".
type metrics struct {
	gossip   *prometheus.CounterVec // kind, verdict
	dropped  *prometheus.CounterVec // reason
	synced   *prometheus.CounterVec // result
	pulls    prometheus.Counter
	lookups  *prometheus.CounterVec // result
	orders   prometheus.GaugeFunc
	ownCount prometheus.GaugeFunc

	// gossipValidation times the topic validator (validate in gossip.go).
	gossipValidation prometheus.Histogram

	dealTransitions *prometheus.CounterVec // role, from, to
	vouchers        *prometheus.CounterVec // role
	paid, earned    prometheus.Counter     // tokens, by the vouchers
	settled         *prometheus.CounterVec // role; tokens paid to the provider on chain

	tunnelBytes   *prometheus.CounterVec // role, direction
	tunnelFlows   *prometheus.GaugeVec   // role
	proxyRequests *prometheus.CounterVec // proxy, result
	exitDenied    *prometheus.CounterVec // reason

	chainTx     *prometheus.HistogramVec // kind
	chainErrors *prometheus.CounterVec   // call, kind

	// Per deal, what the deal hooks saw last: the transitions and voucher
	// counters count from it.
	mu    sync.Mutex // guards last
	last  map[common.Hash]dealMark
	peers func() []network.Conn // the host's connections (nil before Run)
	deals func() []deals.Record // the deal driver's records (nil without deals)
}

// dealMark is what the metrics remember of a deal between updates.
type dealMark struct {
	status  agreement.Status
	voucher *big.Int
}

// Label values known in advance.
var (
	roleNames     = []string{"provider", "requester"}
	proxyNames    = []string{"socks", "http"}
	chainTxKinds  = []string{"open", "settle", "refund", "cancel", "deposit", "withdraw"}
	chainCalls    = []string{"submit", "events", "header", "balances", "wallet", "deposit", "withdraw"}
	chainErrKinds = []string{"revert", "rpc"}
)

func newMetrics(reg *prometheus.Registry, orders, own func() float64) *metrics {
	m := &metrics{
		gossip: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_gossip_messages_total",
			Help: "Gossip messages validated, by kind (offer, request, cancel, heartbeat, malformed) and verdict (accept, ignore, reject).",
		}, []string{"kind", "verdict"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_gossip_dropped_total",
			Help: "Gossip messages dropped without validation, by reason (rate_limit_peer, rate_limit_maker, validation_queue_full, validation_throttled, outbound_queue_full, undeliverable, reconcile_queue_full, or a GossipSub reject reason).",
		}, []string{"reason"}),
		synced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_ordersync_orders_total",
			Help: "Orders received through order sync, by result (added, ignored, rejected).",
		}, []string{"result"}),
		pulls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipsx_ordersync_digest_pulls_total",
			Help: "Pulls of a maker's orders after a heartbeat digest did not match the book.",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_peer_lookups_total",
			Help: "DHT lookups of a peer's addresses before dialling a peer with none known, by result (found, not_found: looked up again until the lookup's deadline, error).",
		}, []string{"result"}),
		orders: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ipsx_book_orders", Help: "Live orders in the book.",
		}, orders),
		ownCount: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ipsx_own_orders", Help: "Live orders of this node's own key.",
		}, own),
		gossipValidation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ipsx_gossip_validation_duration_seconds",
			Help:    "Time the gossip topic validator takes per message (decode, signature, validity, store).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		dealTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_deal_transitions_total",
			Help: "Changes of a deal's status (derived from both sides), by this node's role and the statuses before and after.",
		}, []string{"role", "from", "to"}),
		vouchers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_vouchers_total",
			Help: "Vouchers signed (requester) or accepted (provider), by this node's role.",
		}, []string{"role"}),
		paid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipsx_vouchers_paid_tokens_total",
			Help: "Tokens this node promised its providers by vouchers (the increase of each deal's cumulative voucher).",
		}),
		earned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipsx_vouchers_earned_tokens_total",
			Help: "Tokens this node earned by the vouchers its requesters sent (the increase of each deal's cumulative voucher).",
		}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_deals_settled_tokens_total",
			Help: "Tokens the escrow paid the provider at settlement (before commission), by this node's role.",
		}, []string{"role"}),
		tunnelBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_tunnel_bytes_total",
			Help: "Bytes through tunnel streams, by this node's role and direction (up: requester to target, down: target to requester).",
		}, []string{"role", "direction"}),
		tunnelFlows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ipsx_tunnel_flows",
			Help: "Tunnel flows open now, by this node's role (provider: streams being served; requester: proxied connections).",
		}, []string{"role"}),
		proxyRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_proxy_requests_total",
			Help: "Requests to the requester's proxies, by proxy (socks, http) and result (ok, auth_failed, rate_limited, route_refused, no_route, policy_denied, not_paid, deal_inactive, target_unreachable, timeout, bad_request, error).",
		}, []string{"proxy", "result"}),
		exitDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_exit_policy_denials_total",
			Help: "Tunnel connections the provider's exit policy refused, by rule (loopback, private, link_local, cgnat, multicast, broadcast, documentation, benchmarking, reserved, own_address, deny_list, port, numeric_host, network, unspecified, other).",
		}, []string{"reason"}),
		chainTx: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ipsx_chain_tx_duration_seconds",
			Help:    "Time from submitting an escrow transaction to its receipt (or failure), by kind (open, settle, refund, cancel, deposit, withdraw).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"kind"}),
		chainErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipsx_chain_rpc_errors_total",
			Help: "Failed calls to the chain, by call (submit, events, header, balances, wallet, deposit, withdraw) and kind (revert: the contract refused; rpc: the endpoint failed or timed out).",
		}, []string{"call", "kind"}),
		last: map[common.Hash]dealMark{},
	}
	for _, k := range []string{"offer", "request", "cancel", "heartbeat", "malformed"} {
		for _, v := range []string{"accept", "ignore", "reject"} {
			m.gossip.WithLabelValues(k, v)
		}
	}
	for _, r := range []string{"rate_limit_peer", "rate_limit_maker", "validation_queue_full", "validation_throttled", "outbound_queue_full", "undeliverable", "reconcile_queue_full"} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"added", "ignored", "rejected"} {
		m.synced.WithLabelValues(r)
	}
	for _, r := range []string{"found", "not_found", "error"} {
		m.lookups.WithLabelValues(r)
	}
	for _, role := range roleNames {
		m.vouchers.WithLabelValues(role)
		m.settled.WithLabelValues(role)
		m.tunnelFlows.WithLabelValues(role)
		for _, d := range []string{"up", "down"} {
			m.tunnelBytes.WithLabelValues(role, d)
		}
	}
	for _, p := range proxyNames {
		for _, r := range []string{"ok", "auth_failed", "no_route", "policy_denied"} {
			m.proxyRequests.WithLabelValues(p, r)
		}
	}
	for _, k := range chainTxKinds {
		m.chainTx.WithLabelValues(k)
	}
	for _, c := range chainCalls {
		for _, k := range chainErrKinds {
			m.chainErrors.WithLabelValues(c, k)
		}
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ipsx_build_info",
		Help: "The node's build: always 1, with the version, the Go version and the VCS revision as labels.",
	}, []string{"version", "goversion", "revision"})
	build.WithLabelValues(Version, runtime.Version(), buildRevision()).Set(1)
	reg.MustRegister(m.gossip, m.dropped, m.synced, m.pulls, m.lookups, m.orders, m.ownCount,
		m.gossipValidation, m.dealTransitions, m.vouchers, m.paid, m.earned, m.settled,
		m.tunnelBytes, m.tunnelFlows, m.proxyRequests, m.exitDenied, m.chainTx, m.chainErrors,
		build, stateCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func buildRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// validated observes one run of the gossip validator that began at start:
// defer n.metrics.validated(time.Now()).
func (m *metrics) validated(start time.Time) {
	m.gossipValidation.Observe(time.Since(start).Seconds())
}

// tokens converts base units (10^18 per token) to tokens.
func tokens(x *big.Int) float64 {
	f, _ := new(big.Float).Quo(new(big.Float).SetInt(x), new(big.Float).SetInt(chain.Token)).Float64()
	return f
}

// dealsUpdated counts what changed in deals since the metrics last saw
// them: status transitions, new vouchers with their amounts, settlements.
// Called from the deal hooks, on the driver's loop.
func (m *metrics) dealsUpdated(recs []deals.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range recs {
		d := &recs[i].Deal
		role := d.Role.String()
		prev, seen := m.last[d.ID]
		if !seen {
			prev = dealMark{status: agreement.StatusNone, voucher: new(big.Int)}
		}
		cur := dealMark{status: d.Status(), voucher: prev.voucher}
		if cur.status != prev.status {
			m.dealTransitions.WithLabelValues(role, prev.status.String(), cur.status.String()).Inc()
			if cur.status == agreement.StatusSettled && d.SettledAmount != nil {
				m.settled.WithLabelValues(role).Add(tokens(d.SettledAmount))
			}
		}
		if v := d.Voucher; v != nil && v.Voucher.Amount != nil && v.Voucher.Amount.Cmp(prev.voucher) > 0 {
			delta := new(big.Int).Sub(v.Voucher.Amount, prev.voucher)
			m.vouchers.WithLabelValues(role).Inc()
			if d.Role == agreement.RoleProvider {
				m.earned.Add(tokens(delta))
			} else {
				m.paid.Add(tokens(delta))
			}
			cur.voucher = new(big.Int).Set(v.Voucher.Amount)
		}
		m.last[d.ID] = cur
	}
}

// seedDeals remembers the deals a restarted node loaded, so that their
// next update counts only what changed since, not their whole past.
func (m *metrics) seedDeals(recs []deals.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range recs {
		d := &recs[i].Deal
		mark := dealMark{status: d.Status(), voucher: new(big.Int)}
		if d.Voucher != nil && d.Voucher.Voucher.Amount != nil {
			mark.voucher = new(big.Int).Set(d.Voucher.Voucher.Amount)
		}
		m.last[d.ID] = mark
	}
}

// chainCall counts a failed chain call (nil err counts nothing).
func (m *metrics) chainCall(call string, err error) {
	if err == nil {
		return
	}
	kind := "rpc"
	if errors.Is(err, chain.ErrReverted) {
		kind = "revert"
	}
	m.chainErrors.WithLabelValues(call, kind).Inc()
}

// chainTxDone observes a transaction's latency from start and counts its
// failure, if any.
func (m *metrics) chainTxDone(kind, call string, start time.Time, err error) {
	m.chainTx.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	m.chainCall(call, err)
}

// proxyResult is a tunnel.Observer: it counts each proxy request's result.
func (m *metrics) proxyResult(proxy string, res tunnel.Result) {
	m.proxyRequests.WithLabelValues(proxy, string(res)).Inc()
}

// exitRules name the exit policy's rules in ipsx_exit_policy_denials_total.
var exitRules = []struct {
	err  error
	name string
}{
	{tunnel.ErrDestLoopback, "loopback"},
	{tunnel.ErrDestUnspecified, "unspecified"},
	{tunnel.ErrDestPrivate, "private"},
	{tunnel.ErrDestLinkLocal, "link_local"},
	{tunnel.ErrDestCGNAT, "cgnat"},
	{tunnel.ErrDestMulticast, "multicast"},
	{tunnel.ErrDestBroadcast, "broadcast"},
	{tunnel.ErrDestDocumentation, "documentation"},
	{tunnel.ErrDestBenchmarking, "benchmarking"},
	{tunnel.ErrDestReserved, "reserved"},
	{tunnel.ErrDestOwnAddress, "own_address"},
	{tunnel.ErrDestDenyList, "deny_list"},
	{tunnel.ErrDestPort, "port"},
	{tunnel.ErrDestNumericHost, "numeric_host"},
	{tunnel.ErrDestNetwork, "network"},
}

// exitServed counts an exit policy denial among the errors of served
// tunnel streams.
func (m *metrics) exitServed(err error) {
	if err == nil || !errors.Is(err, tunnel.ErrNotAllowed) {
		return
	}
	for _, r := range exitRules {
		if errors.Is(err, r.err) {
			m.exitDenied.WithLabelValues(r.name).Inc()
			return
		}
	}
	// A refusal by the provider's own StatusError (relayed) or a rule
	// added later.
	m.exitDenied.WithLabelValues("other").Inc()
}

// stateCollector reports, at each scrape, the gauges read off the node's
// state: deals by role and status, peers by transport and connection.
type stateCollector struct{ m *metrics }

var (
	dealsDesc = prometheus.NewDesc("ipsx_deals",
		"Deals the node holds, by its role and the deal's status (derived from both sides).", []string{"role", "status"}, nil)
	peersDesc = prometheus.NewDesc("ipsx_peers",
		"Connected peers, by transport (tcp, quic, websocket, webtransport, webrtc, other) and connection (direct, relayed); a peer connected several ways counts in each.", []string{"transport", "connection"}, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dealsDesc
	ch <- peersDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	dealsOf, conns := c.m.deals, c.m.peers
	c.m.mu.Unlock()

	type dk struct{ role, status string }
	byDeal := map[dk]int{}
	for _, role := range roleNames {
		for _, st := range []agreement.Status{agreement.StatusProposed, agreement.StatusAccepted, agreement.StatusFunded, agreement.StatusActive, agreement.StatusCompleted, agreement.StatusSettled} {
			byDeal[dk{role, st.String()}] = 0
		}
	}
	if dealsOf != nil {
		for _, r := range dealsOf() {
			byDeal[dk{r.Deal.Role.String(), r.Deal.Status().String()}]++
		}
	}
	for k, v := range byDeal {
		ch <- prometheus.MustNewConstMetric(dealsDesc, prometheus.GaugeValue, float64(v), k.role, k.status)
	}

	type pk struct{ transport, conn string }
	peers := map[pk]map[string]bool{}
	for _, t := range []string{"tcp", "quic"} {
		for _, cn := range []string{"direct", "relayed"} {
			peers[pk{t, cn}] = map[string]bool{}
		}
	}
	if conns != nil {
		for _, cn := range conns() {
			k := pk{transportOf(cn.RemoteMultiaddr()), "direct"}
			if cn.Stat().Limited || isRelayed(cn.RemoteMultiaddr()) {
				k.conn = "relayed"
			}
			if peers[k] == nil {
				peers[k] = map[string]bool{}
			}
			peers[k][cn.RemotePeer().String()] = true
		}
	}
	for k, set := range peers {
		ch <- prometheus.MustNewConstMetric(peersDesc, prometheus.GaugeValue, float64(len(set)), k.transport, k.conn)
	}
}

// transportOf names a connection's transport from its remote multiaddr;
// for a relayed one, the transport to the relay.
func transportOf(a ma.Multiaddr) string {
	if a == nil {
		return "other"
	}
	has := map[int]bool{}
	for _, p := range a.Protocols() {
		if p.Code == ma.P_CIRCUIT {
			break
		}
		has[p.Code] = true
	}
	switch {
	case has[ma.P_WEBTRANSPORT]:
		return "webtransport"
	case has[ma.P_WEBRTC_DIRECT] || has[ma.P_WEBRTC]:
		return "webrtc"
	case has[ma.P_QUIC_V1] || has[ma.P_QUIC]:
		return "quic"
	case has[ma.P_WS] || has[ma.P_WSS]:
		return "websocket"
	case has[ma.P_TCP]:
		return "tcp"
	}
	return "other"
}

// flowMetrics counts one tunnel flow's bytes and open flows for a role.
type flowMetrics struct {
	upC, downC prometheus.Counter
	open       prometheus.Gauge
}

func (f flowMetrics) up(k int) {
	if k > 0 {
		f.upC.Add(float64(k))
	}
}

func (f flowMetrics) down(k int) {
	if k > 0 {
		f.downC.Add(float64(k))
	}
}

func (f flowMetrics) end() { f.open.Dec() }

func (m *metrics) flow(role string) flowMetrics {
	f := flowMetrics{upC: m.tunnelBytes.WithLabelValues(role, "up"), downC: m.tunnelBytes.WithLabelValues(role, "down"),
		open: m.tunnelFlows.WithLabelValues(role)}
	f.open.Inc()
	return f
}

// requesterFlow counts a new proxied connection; its end() must be called
// once, when it closes.
func (m *metrics) requesterFlow() flowMetrics { return m.flow("requester") }

// providerStream counts a tunnel stream the provider serves (open until
// it is closed or reset, or done is called; header, refusal and status
// included): reads are up (from the requester), writes down.
func (m *metrics) providerStream(s network.Stream) *countedStream {
	return &countedStream{Stream: s, f: m.flow("provider")}
}

type countedStream struct {
	network.Stream
	f    flowMetrics
	once sync.Once
}

func (s *countedStream) Read(p []byte) (int, error) {
	k, err := s.Stream.Read(p)
	s.f.up(k)
	return k, err
}

func (s *countedStream) Write(p []byte) (int, error) {
	k, err := s.Stream.Write(p)
	s.f.down(k)
	return k, err
}

func (s *countedStream) Close() error { s.done(); return s.Stream.Close() }
func (s *countedStream) Reset() error { s.done(); return s.Stream.Reset() }
func (s *countedStream) done()        { s.once.Do(s.f.end) }

// attachPeers and attachDeals give the scrape-time gauges their sources.
func (m *metrics) attachPeers(conns func() []network.Conn) {
	m.mu.Lock()
	m.peers = conns
	m.mu.Unlock()
}

func (m *metrics) attachDeals(recs func() []deals.Record) {
	m.mu.Lock()
	m.deals = recs
	m.mu.Unlock()
}
