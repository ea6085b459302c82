package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/internal/netns"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// The public mesh in miniature: every node runs as its own `ipsx node`
// process in a network namespace, with a provider and a requester each
// behind a home router that masquerades (no port forwards), and a relay
// that is also the only bootstrap node on the "internet" between them.
//
// libp2p treats private address ranges as unreachable from outside (it
// would neither hole-punch nor relay for them), so the test's internet uses
// addresses that look public. They exist only inside the namespaces the
// test creates; none of those has a link to the machine's own network, so
// nothing leaves it.

// meshNode is one ipsx node in a namespace.
type meshNode struct {
	t    *testing.T
	ns   *netns.NS
	dir  string
	logs *syncBuffer
}

// ipsxIn runs `ipsx args...` (this test binary as the CLI) inside ns.
func ipsxIn(ctx context.Context, ns *netns.NS, args ...string) ([]byte, error) {
	cmd := ns.Exec(ctx, os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "IPSX_TEST_AS_CLI=1", "IPSX_PASSWORD=pw", "GORACE=atexit_sleep_ms=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ipsx %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// startNode inits a data dir and runs `ipsx node` in ns until the test
// ends.
func startNode(t *testing.T, ns *netns.NS, nodeArgs ...string) *meshNode {
	t.Helper()
	m := &meshNode{t: t, ns: ns, dir: t.TempDir(), logs: &syncBuffer{}}
	if _, err := ipsxIn(t.Context(), ns, "init", "--datadir", m.dir, "--scrypt", "light"); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-test.run=^$", "--", "node", "--datadir", m.dir, "--log-level", "debug",
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1"}, nodeArgs...)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.Exec(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "IPSX_TEST_AS_CLI=1", "IPSX_PASSWORD=pw", "GORACE=atexit_sleep_ms=0", "GOLOG_LOG_LEVEL="+os.Getenv("IPSX_NETNS_GOLOG"))
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node in %s logged:\n%s", ns.Name(), tail(m.logs.String(), 150))
		}
	})
	return m
}

// tail is the last lines of a node's log, without the API's request lines.
func tail(s string, lines int) string {
	var l []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, "msg=request component=api") {
			l = append(l, line)
		}
	}
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// cli runs a CLI command against the node and decodes its JSON answer.
func (m *meshNode) cli(ctx context.Context, out any, args ...string) error {
	b, err := ipsxIn(ctx, m.ns, append([]string{"--datadir", m.dir, "--json"}, args...)...)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// await polls cond until it holds, failing the test with what was last
// seen when the deadline passes.
func await(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not by the deadline; last seen: %s", what, last)
		case <-tick.C:
		}
	}
}

func (m *meshNode) status(ctx context.Context) (sdk.Status, error) {
	var st sdk.Status
	return st, m.cli(ctx, &st, "status")
}

// mesh is the test's internet: a relay and bootstrap node, and a provider
// and a requester each behind its own home router.
type mesh struct {
	relay, prov, req *meshNode
}

// newMesh builds the namespaces and starts the nodes, and returns once the
// provider knows it is behind NAT and holds a relay reservation.
func newMesh(t *testing.T, ctx context.Context) *mesh {
	n := netns.New(t)
	inet := n.Switch("inet")
	relayNS, provNS, reqNS := n.Namespace("relay"), n.Namespace("prov"), n.Namespace("req")
	relayIP := netip.MustParseAddr("11.77.0.1")
	inet.Attach(relayNS, netip.MustParsePrefix("11.77.0.1/24"))
	home := func(name string, outside, lan string, host *netns.NS) {
		r := n.Namespace(name)
		out := inet.Attach(r, netip.MustParsePrefix(outside))
		gw := netip.MustParsePrefix(lan)
		hostAddr := netip.PrefixFrom(gw.Addr().Next(), gw.Bits())
		n.Link(r, gw, host, hostAddr)
		r.Masquerade(out)
		host.DefaultRoute(gw.Addr())
	}
	home("natp", "11.77.0.2/24", "192.168.10.1/24", provNS)
	home("natr", "11.77.0.3/24", "192.168.20.1/24", reqNS)

	relay := startNode(t, relayNS, "--relay-service")
	var relayID string
	await(t, ctx, "relay up", func() (bool, string) {
		st, err := relay.status(ctx)
		relayID = st.PeerID
		return err == nil && st.Reachability == "public", fmt.Sprint(st.Reachability, err)
	})
	boot := fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s,/ip4/%[1]s/tcp/4001/p2p/%[2]s", relayIP, relayID)

	prov := startNode(t, provNS, "--bootstrap", boot)
	req := startNode(t, reqNS, "--bootstrap", boot, "--countries", "DE")
	for _, m := range []*meshNode{prov, req} {
		await(t, ctx, "node up", func() (bool, string) {
			_, err := m.status(ctx)
			return err == nil, fmt.Sprint(err)
		})
	}

	// Behind its router the provider finds out it is private, and takes a
	// relay reservation.
	await(t, ctx, "provider private with a relay address", func() (bool, string) {
		st, err := prov.status(ctx)
		return err == nil && st.Reachability == "private" && len(st.RelayAddrs) > 0, fmt.Sprintf("%+v %v", st, err)
	})
	return &mesh{relay: relay, prov: prov, req: req}
}

func TestNATTraversal(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	m := newMesh(t, ctx)
	prov, req := m.prov, m.req
	var offer orderbook.Order
	if err := prov.cli(ctx, &offer, "offer", "create", "--country", "DE", "--price-per-hour", "1000"); err != nil {
		t.Fatal(err)
	}
	st, _ := prov.status(ctx)
	if len(st.ObservedAddrs) == 0 || !strings.HasPrefix(st.ObservedAddrs[0].Addr, "/ip4/11.77.0.2/") || st.PublicIP != "11.77.0.2" {
		t.Fatalf("provider status %+v: want its router's address observed", st)
	}

	// The requester is connected to nobody but the relay at first: it
	// finds the provider through the DHT rendezvous of shard DE and gets
	// the offer from it.
	await(t, ctx, "offer at the requester", func() (bool, string) {
		var book []*orderbook.Order
		if err := req.cli(ctx, &book, "book", "--country", "DE"); err != nil {
			return false, err.Error()
		}
		for _, o := range book {
			if o.ID() == offer.ID() {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d orders", len(book))
	})

	// Both NATs keep ports, so the relayed connection the rendezvous made
	// was hole-punched into a direct one (gossip, like tunnels, needs one):
	// a stream that insists on it runs straight to the provider's router.
	var direct sdk.PingResult
	if err := req.cli(ctx, &direct, "ping", "--direct", offer.Maker.Hex()); err != nil {
		t.Fatalf("no direct connection through two port-preserving NATs: %v", err)
	}
	if direct.Conn.Relayed || !strings.HasPrefix(direct.Conn.Addr, "/ip4/11.77.0.2/") {
		t.Fatalf("a direct ping ran over %+v, want a direct connection to the provider's router", direct.Conn)
	}
	var peers []sdk.Peer
	if err := req.cli(ctx, &peers, "peers"); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, p := range peers {
		if p.PeerID == direct.PeerID {
			for _, c := range p.Conns {
				kinds[connKind(c)] = true
			}
		}
	}
	t.Logf("provider reached through the relay and hole-punched: direct stream over %s, rtt %s; connections to it now: %v", direct.Conn.Addr, direct.RTT, kinds)
}
