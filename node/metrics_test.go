package node_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/testnet"
	dto "github.com/prometheus/client_model/go"
)

// metricValue sums a family's series whose labels include every
// name=value pair of want: a counter's or gauge's value, a histogram's
// sample count. A family with no series yet (a vector none of whose
// label values came up) is 0.
func metricValue(t *testing.T, n *node.Node, name string, want ...string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	return 0
}

func labelsMatch(m *dto.Metric, want []string) bool {
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// awaitMetric waits until a metric reaches at least min.
func awaitMetric(t *testing.T, n *node.Node, min float64, name string, labels ...string) {
	t.Helper()
	if err := testnet.Await(awaitCtx(t), func() error {
		if v := metricValue(t, n, name, labels...); v < min {
			return fmt.Errorf("%s%v = %v, want at least %v", name, labels, v, min)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsFollowDeal: as a deal is proposed, funded, carries traffic,
// is paid and settled, every family of the node's metrics moves on the
// side it describes: deals by status and role, transitions, tunnel bytes
// by role and direction, open flows, proxy requests by result, exit
// policy denials by rule, vouchers paid and earned, settlements, chain
// transaction latency and errors, gossip validation latency, peers by
// transport and connection, and the build.
func TestMetricsFollowDeal(t *testing.T) {
	if testing.Short() {
		t.Skip("a deal on a testnet")
	}
	_, tn := startDealNet(t, 2, "DE")
	ctx := awaitCtx(t)
	prov, req := tn.Members[0].Node, tn.Members[1].Node

	for _, n := range []*node.Node{prov, req} {
		if v := metricValue(t, n, "ipsx_build_info", "version="+node.Version); v != 1 {
			t.Errorf("ipsx_build_info = %v", v)
		}
		if v := metricValue(t, n, "ipsx_peers", "connection=direct"); v < 1 {
			t.Errorf("ipsx_peers{connection=direct} = %v", v)
		}
		for _, zero := range []string{"ipsx_deals", "ipsx_deal_transitions_total", "ipsx_vouchers_total", "ipsx_tunnel_bytes_total", "ipsx_tunnel_flows"} {
			if v := metricValue(t, n, zero); v != 0 {
				t.Errorf("%s = %v before any deal", zero, v)
			}
		}
	}
	before := metricValue(t, req, "ipsx_gossip_validation_duration_seconds")
	if _, err := prov.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	if v := metricValue(t, req, "ipsx_gossip_validation_duration_seconds"); v <= before {
		t.Errorf("gossip validation latency: %v samples, %v before the offer", v, before)
	}

	r, err := req.CreateRequest(ctx, dealRequest("DE", 300))
	if err != nil {
		t.Fatal(err)
	}
	deal := awaitDeal(t, ctx, req, r.ID().Hex(), "active")
	awaitDeal(t, ctx, prov, r.ID().Hex(), "active")
	awaitMetric(t, req, 1, "ipsx_deals", "role=requester", "status=active")
	awaitMetric(t, prov, 1, "ipsx_deals", "role=provider", "status=active")
	awaitMetric(t, req, 1, "ipsx_deal_transitions_total", "role=requester", "to=active")
	awaitMetric(t, prov, 1, "ipsx_deal_transitions_total", "role=provider", "from=none")
	// (The open's receipt may come in after the watcher saw its event.)
	if err := testnet.Await(ctx, func() error {
		if v := metricValue(t, prov, "ipsx_chain_tx_duration_seconds", "kind=open") + metricValue(t, req, "ipsx_chain_tx_duration_seconds", "kind=open"); v < 1 {
			return fmt.Errorf("chain tx latency of open: %v samples on both sides", v)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	// Traffic: an echoed connection held open, then closed.
	echo := echoServer(t)
	pw := req.ProxyPassword()
	c, err := socksDial(req.SOCKSAddr().String(), pw, echo)
	if err != nil {
		t.Fatal(err)
	}
	awaitMetric(t, req, 1, "ipsx_tunnel_flows", "role=requester")
	awaitMetric(t, prov, 1, "ipsx_tunnel_flows", "role=provider")
	msg := strings.Repeat("x", 64<<10)
	go func() { _, _ = io.WriteString(c, msg) }()
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, dir := range []string{"up", "down"} {
		awaitMetric(t, req, float64(len(msg)), "ipsx_tunnel_bytes_total", "role=requester", "direction="+dir)
		awaitMetric(t, prov, float64(len(msg)), "ipsx_tunnel_bytes_total", "role=provider", "direction="+dir)
	}
	if err := testnet.Await(ctx, func() error {
		if v := metricValue(t, req, "ipsx_tunnel_flows") + metricValue(t, prov, "ipsx_tunnel_flows"); v != 0 {
			return fmt.Errorf("%v flows open after the close", v)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	awaitMetric(t, req, 1, "ipsx_proxy_requests_total", "proxy=socks", "result=ok")

	// Refusals: a wrong password, a route no deal covers, a port the exit
	// refuses.
	if _, err := socksDial(req.SOCKSAddr().String(), "wrong", echo); err == nil {
		t.Error("a wrong proxy password was accepted")
	}
	awaitMetric(t, req, 1, "ipsx_proxy_requests_total", "proxy=socks", "result=auth_failed")
	if out, err := curlOut(t, "-f", "--proxy", "http://"+req.HTTPProxyAddr().String(), "--proxy-user", "country-JP:"+pw, "http://"+echo.String()+"/"); err == nil {
		t.Errorf("country-JP without a deal: %q", out)
	}
	awaitMetric(t, req, 1, "ipsx_proxy_requests_total", "proxy=http", "result=no_route")
	if _, err := socksDial(req.SOCKSAddr().String(), pw, netip.MustParseAddrPort("127.0.0.1:25")); err == nil {
		t.Error("port 25 through the exit was allowed")
	}
	awaitMetric(t, req, 1, "ipsx_proxy_requests_total", "proxy=socks", "result=policy_denied")
	awaitMetric(t, prov, 1, "ipsx_exit_policy_denials_total", "reason=port")

	// Payment: vouchers paid by the requester, earned by the provider.
	awaitMetric(t, req, 2, "ipsx_vouchers_total", "role=requester")
	awaitMetric(t, prov, 2, "ipsx_vouchers_total", "role=provider")
	for _, m := range []struct {
		n    *node.Node
		name string
	}{{req, "ipsx_vouchers_paid_tokens_total"}, {prov, "ipsx_vouchers_earned_tokens_total"}} {
		if v := metricValue(t, m.n, m.name); v <= 0 {
			t.Errorf("%s = %v", m.name, v)
		}
	}

	// Settlement.
	if _, err := req.CloseDeal(ctx, common.HexToHash(deal.ID)); err != nil {
		t.Fatal(err)
	}
	awaitDeal(t, ctx, prov, r.ID().Hex(), "settled")
	awaitMetric(t, prov, 1, "ipsx_deals", "role=provider", "status=settled")
	awaitMetric(t, prov, 1, "ipsx_deal_transitions_total", "role=provider", "to=settled")
	awaitMetric(t, prov, 1e-12, "ipsx_deals_settled_tokens_total", "role=provider")
	// (The settle's receipt may come in after the watcher saw its event.)
	awaitMetric(t, prov, 1, "ipsx_chain_tx_duration_seconds", "kind=settle")
	if v := metricValue(t, prov, "ipsx_deals", "status=active"); v != 0 {
		t.Errorf("%v deals still active on the provider", v)
	}

	// A failing chain call: withdrawing more than the escrow holds.
	tooMuch := new(big.Int).Mul(big.NewInt(1_000_000_000), chain.Token)
	if _, err := req.Withdraw(ctx, tooMuch); err == nil {
		t.Fatal("withdrew more than the balance")
	}
	if v := metricValue(t, req, "ipsx_chain_rpc_errors_total", "call=withdraw", "kind=revert"); v != 1 {
		t.Errorf("chain errors of the failed withdraw: %v", v)
	}
	if v := metricValue(t, req, "ipsx_chain_tx_duration_seconds", "kind=withdraw"); v != 1 {
		t.Errorf("chain tx latency of the failed withdraw: %v samples", v)
	}

	// Every family the Grafana dashboard charts exists by now on one of
	// the two nodes.
	families := map[string]bool{}
	for _, n := range []*node.Node{prov, req} {
		mfs, err := n.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			families[mf.GetName()] = true
		}
	}
	dash, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dash) {
		t.Fatal("docs/grafana-dashboard.json is not JSON")
	}
	used := regexp.MustCompile(`ipsx_[a-z_]+`).FindAllString(string(dash), -1)
	if len(used) < 15 {
		t.Fatalf("the dashboard uses %d ipsx series", len(used))
	}
	for _, name := range used {
		base := strings.TrimSuffix(name, "_bucket")
		if !families[base] {
			t.Errorf("docs/grafana-dashboard.json charts %s, which the node does not export", name)
		}
	}
}
