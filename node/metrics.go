package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's own Prometheus series; libp2p's register on the
// same registry.
type metrics struct {
	gossip   *prometheus.CounterVec // kind, verdict
	dropped  *prometheus.CounterVec // reason
	synced   *prometheus.CounterVec // result
	pulls    prometheus.Counter
	orders   prometheus.GaugeFunc
	ownCount prometheus.GaugeFunc
}

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
		orders: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ipsx_book_orders", Help: "Live orders in the book.",
		}, orders),
		ownCount: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ipsx_own_orders", Help: "Live orders of this node's own key.",
		}, own),
	}
	// Every series exists from the start, at zero, so a dashboard or a
	// test sees "no drops" rather than "no data".
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
	reg.MustRegister(m.gossip, m.dropped, m.synced, m.pulls, m.orders, m.ownCount,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
