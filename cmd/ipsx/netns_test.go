package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ipsx/ipsx/geo"
	"github.com/ipsx/ipsx/geo/geotest"
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

// startMesh skips the test where namespaces are unavailable, else builds
// the mesh (see newMesh) and returns it with a context for the test's
// two minutes.
func startMesh(t *testing.T, symmetric bool, reqArgs ...string) (context.Context, *mesh) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx, newMesh(t, ctx, symmetric, reqArgs...)
}

// newMesh builds the namespaces and starts the nodes, and returns once the
// provider knows it is behind NAT and holds a relay reservation. With
// symmetric, the provider's router is a symmetric NAT. The requester
// runs with reqArgs.
func newMesh(t *testing.T, ctx context.Context, symmetric bool, reqArgs ...string) *mesh {
	n := netns.New(t)
	inet := n.Switch("inet")
	relayNS, provNS, reqNS := n.Namespace("relay"), n.Namespace("prov"), n.Namespace("req")
	relayIP := netip.MustParseAddr("11.77.0.1")
	inet.Attach(relayNS, netip.MustParsePrefix("11.77.0.1/24"))
	home := func(name string, outside, lan string, host *netns.NS, symmetric bool) {
		r := n.Namespace(name)
		out := inet.Attach(r, netip.MustParsePrefix(outside))
		gw := netip.MustParsePrefix(lan)
		hostAddr := netip.PrefixFrom(gw.Addr().Next(), gw.Bits())
		n.Link(r, gw, host, hostAddr)
		if symmetric {
			r.SymmetricNAT(out)
		} else {
			r.Masquerade(out)
		}
		host.DefaultRoute(gw.Addr())
	}
	home("natp", "11.77.0.2/24", "192.168.10.1/24", provNS, symmetric)
	home("natr", "11.77.0.3/24", "192.168.20.1/24", reqNS, false)

	relay := startNode(t, relayNS, "--relay-service")
	var relayID string
	await(t, ctx, "relay up", func() (bool, string) {
		st, err := relay.status(ctx)
		relayID = st.PeerID
		return err == nil && st.Reachability == "public", fmt.Sprint(st.Reachability, err)
	})
	boot := fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s,/ip4/%[1]s/tcp/4001/p2p/%[2]s", relayIP, relayID)

	// The provider's geolocation database knows its router's address.
	mmdb := geotest.WriteT(t, geotest.Entry{Prefix: netip.MustParsePrefix("11.77.0.2/32"),
		Loc: geo.Location{Country: "DE", Region: "BE", City: "Berlin", ASN: 64500}})
	prov := startNode(t, provNS, "--bootstrap", boot, "--geoip", mmdb)
	req := startNode(t, reqNS, append([]string{"--bootstrap", boot}, reqArgs...)...)
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
	ctx, m := startMesh(t, false, "--countries", "DE")
	prov, req := m.prov, m.req
	// No --country: the offer is located from the address the relay sees
	// the provider at, its router's.
	var offer orderbook.Order
	if err := prov.cli(ctx, &offer, "offer", "create", "--price-per-hour", "1000"); err != nil {
		t.Fatal(err)
	}
	if offer.Unverified || offer.Location != (orderbook.Location{Country: "DE", Region: "BE", City: "Berlin", ASN: 64500}) {
		t.Fatalf("offer located at %+v (unverified %v), want the database's answer for 11.77.0.2", offer.Location, offer.Unverified)
	}
	st, _ := prov.status(ctx)
	if len(st.ObservedAddrs) == 0 || !strings.HasPrefix(st.ObservedAddrs[0].Addr, "/ip4/11.77.0.2/") || st.PublicIP != "11.77.0.2" {
		t.Fatalf("provider status %+v: want its router's address observed", st)
	}

	// The requester is connected to nobody but the relay at first: it
	// finds the provider through the DHT rendezvous of shard DE and gets
	// the offer from it.
	awaitOffer(t, ctx, req, offer.ID())

	// Both NATs keep ports, so the two nodes, which found each other at
	// the rendezvous, get a direct connection through both NATs: by DCUtR
	// over the relayed one, or by dialling each other's observed address
	// at about the same time, which punches the same holes (status counts
	// the DCUtR attempts). Gossip, like tunnels, needs it; a stream that
	// insists on it runs straight to the provider's router.
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
	ps, _ := prov.status(ctx)
	rs, _ := req.status(ctx)
	t.Logf("provider reached through both NATs: direct stream over %s, rtt %s; connections to it now: %v; DCUtR attempts: provider %+v, requester %+v",
		direct.Conn.Addr, direct.RTT, kinds, ps.HolePunch, rs.HolePunch)
}

// TestHolePunch: a requester in no shard reaches a provider behind NAT that
// it knows by peer ID only: the DHT gives it the provider's relayed
// address, and a stream that needs a direct connection gets one by DCUtR
// over the relayed connection (neither node dials the other on its own:
// they share no rendezvous).
func TestHolePunch(t *testing.T) {
	ctx, m := startMesh(t, false)
	prov, req := m.prov, m.req
	pst, err := prov.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var direct sdk.PingResult
	if err := req.cli(ctx, &direct, "ping", "--direct", pst.PeerID); err != nil {
		t.Fatalf("no direct connection by hole punching: %v", err)
	}
	if direct.Conn.Relayed || !strings.HasPrefix(direct.Conn.Addr, "/ip4/11.77.0.2/") {
		t.Fatalf("a direct ping ran over %+v, want a direct connection to the provider's router", direct.Conn)
	}
	var ps, rs sdk.Status
	await(t, ctx, "a successful hole punch counted", func() (bool, string) {
		var perr, rerr error
		ps, perr = prov.status(ctx)
		rs, rerr = req.status(ctx)
		return perr == nil && rerr == nil && ps.HolePunch.Succeeded+rs.HolePunch.Succeeded > 0,
			fmt.Sprintf("provider %+v, requester %+v %v %v", ps.HolePunch, rs.HolePunch, perr, rerr)
	})
	t.Logf("hole-punched: direct stream over %s, rtt %s; DCUtR attempts: provider %+v, requester %+v",
		direct.Conn.Addr, direct.RTT, ps.HolePunch, rs.HolePunch)
}

// TestNATTraversalSymmetric: a provider behind a symmetric NAT (a new
// outside port for every flow, as carrier-grade NATs do) cannot be hole-
// punched, but the requester still finds it through the rendezvous, gets
// its offer, and reaches it through the relay; a stream that insists on a
// direct connection fails with a clear error instead of hanging.
func TestNATTraversalSymmetric(t *testing.T) {
	ctx, m := startMesh(t, true, "--countries", "DE")
	prov, req := m.prov, m.req
	var offer orderbook.Order
	if err := prov.cli(ctx, &offer, "offer", "create", "--price-per-hour", "1000"); err != nil {
		t.Fatal(err)
	}
	var pst sdk.Status
	if err := prov.cli(ctx, &pst, "status"); err != nil {
		t.Fatal(err)
	}
	await(t, ctx, "requester connected to the provider through the rendezvous", func() (bool, string) {
		var peers []sdk.Peer
		if err := req.cli(ctx, &peers, "peers"); err != nil {
			return false, err.Error()
		}
		for _, p := range peers {
			if p.PeerID == pst.PeerID {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d peers", len(peers))
	})

	var relayed sdk.PingResult
	if err := req.cli(ctx, &relayed, "ping", pst.PeerID); err != nil {
		t.Fatalf("no stream through the relay to a provider behind a symmetric NAT: %v", err)
	}
	if !relayed.Conn.Relayed || !strings.HasPrefix(relayed.Conn.Addr, "/ip4/11.77.0.1/") {
		t.Fatalf("ping ran over %+v, want the relay's circuit", relayed.Conn)
	}
	var direct sdk.PingResult
	err := req.cli(ctx, &direct, "ping", "--direct", pst.PeerID)
	if err == nil {
		t.Fatalf("a direct connection through a symmetric NAT: %+v", direct.Conn)
	}
	if !strings.Contains(err.Error(), "reachable through a relay only") {
		t.Errorf("direct ping through a symmetric NAT: %v, want an unreachable error", err)
	}
	// The provider, whose hole punches all failed, says so.
	await(t, ctx, "provider reports failed hole punches", func() (bool, string) {
		st, err := prov.status(ctx)
		return err == nil && st.HolePunch.Failed > 0 && st.HolePunch.Succeeded == 0, fmt.Sprintf("%+v %v", st.HolePunch, err)
	})
	t.Logf("provider behind a symmetric NAT reached through the relay only: stream over %s, rtt %s; direct: %v", relayed.Conn.Addr, relayed.RTT, err)
}

// awaitOffer waits until the offer is in m's book.
func awaitOffer(t *testing.T, ctx context.Context, m *meshNode, id common.Hash) {
	t.Helper()
	await(t, ctx, "offer at the requester", func() (bool, string) {
		var book []*orderbook.Order
		if err := m.cli(ctx, &book, "book", "--country", "DE"); err != nil {
			return false, err.Error()
		}
		for _, o := range book {
			if o.ID() == id {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d orders", len(book))
	})
}

// netnsRole runs this test binary as a helper program in a namespace:
// "plainhost" is a libp2p host with go-libp2p's default resource limits
// that prints its peer ID and waits to be killed; "fleet" starts
// IPSX_FLEET_SIZE hosts that all connect to each of IPSX_FLEET_TARGETS and
// prints, as JSON, how many of them stayed connected to each.
func netnsRole(role string) int {
	var err error
	switch role {
	case "plainhost":
		err = plainHost()
	case "fleet":
		err = fleet(os.Getenv("IPSX_FLEET_TARGETS"), os.Getenv("IPSX_FLEET_SIZE"))
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func plainHost() error {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/0.0.0.0/tcp/4002"))
	if err != nil {
		return err
	}
	defer h.Close()
	fmt.Println(h.ID())
	select {}
}

func fleet(targets, size string) error {
	n, err := strconv.Atoi(size)
	if err != nil {
		return err
	}
	var infos []peer.AddrInfo
	for _, t := range strings.Split(targets, ",") {
		ai, err := peer.AddrInfoFromString(t)
		if err != nil {
			return err
		}
		infos = append(infos, *ai)
	}
	hosts := make([]host.Host, n)
	for i := range hosts {
		if hosts[i], err = libp2p.New(libp2p.NoListenAddrs); err != nil {
			return err
		}
		defer hosts[i].Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range hosts {
		for _, ai := range infos {
			wg.Add(1)
			go func() { defer wg.Done(); _ = h.Connect(ctx, ai) }()
		}
	}
	wg.Wait()
	connected := map[string]int{}
	for _, ai := range infos {
		connected[ai.ID.String()] = 0
		for _, h := range hosts {
			if h.Network().Connectedness(ai.ID) == network.Connected {
				connected[ai.ID.String()]++
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(connected)
}

// TestManyPeersBehindOneAddress: a crawler fleet, or a houseful of
// requesters, reaches a node from one IPv4 address (its NAT's). A node
// serves them all, where a host with go-libp2p's default limits (8
// connections per address, 16 new ones in a burst) turns most away. The
// addresses are not loopback, which libp2p exempts from these limits.
func TestManyPeersBehindOneAddress(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	n := netns.New(t)
	inet := n.Switch("inet")
	prov, natNS, fleetNS := n.Namespace("prov"), n.Namespace("nat"), n.Namespace("fleet")
	inet.Attach(prov, netip.MustParsePrefix("11.78.0.1/24"))
	out := inet.Attach(natNS, netip.MustParsePrefix("11.78.0.2/24"))
	n.Link(natNS, netip.MustParsePrefix("192.168.30.1/24"), fleetNS, netip.MustParsePrefix("192.168.30.2/24"))
	natNS.Masquerade(out)
	fleetNS.DefaultRoute(netip.MustParseAddr("192.168.30.1"))

	node := startNode(t, prov)
	var nodeID string
	await(t, ctx, "node up", func() (bool, string) {
		st, err := node.status(ctx)
		nodeID = st.PeerID
		return err == nil, fmt.Sprint(err)
	})
	plain := prov.Exec(ctx, os.Args[0], "-test.run=^$")
	plain.Env = append(os.Environ(), "IPSX_TEST_NETNS_ROLE=plainhost", "GORACE=atexit_sleep_ms=0")
	plainOut, err := plain.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = plain.Wait() })
	line, err := bufio.NewReader(plainOut).ReadString('\n')
	if err != nil {
		t.Fatalf("plain host: %v", err)
	}
	plainID := strings.TrimSpace(line)

	const size = 60
	fl := fleetNS.Exec(ctx, os.Args[0], "-test.run=^$")
	fl.Env = append(os.Environ(), "IPSX_TEST_NETNS_ROLE=fleet", "GORACE=atexit_sleep_ms=0",
		fmt.Sprintf("IPSX_FLEET_SIZE=%d", size),
		"IPSX_FLEET_TARGETS=/ip4/11.78.0.1/tcp/4001/p2p/"+nodeID+",/ip4/11.78.0.1/tcp/4002/p2p/"+plainID)
	var stderr bytes.Buffer
	fl.Stderr = &stderr
	res, err := fl.Output()
	if err != nil {
		t.Fatalf("fleet: %v: %s", err, stderr.String())
	}
	var connected map[string]int
	if err := json.Unmarshal(res, &connected); err != nil {
		t.Fatalf("fleet said %s: %v", res, err)
	}
	t.Logf("%d peers from one address: %d connected to the node, %d to a host with libp2p's default limits", size, connected[nodeID], connected[plainID])
	if connected[nodeID] != size {
		t.Errorf("the node took %d of %d peers behind one address", connected[nodeID], size)
	}
	if connected[plainID] >= size {
		t.Errorf("a host with default limits took all %d peers: the test does not show the limit", size)
	}
}
