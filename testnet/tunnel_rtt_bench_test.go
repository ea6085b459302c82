//go:build linux

package testnet_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipsx/ipsx/tunnel"
)

// Knobs of BenchmarkTunnelRTT and BenchmarkTunnel200Flows.
const (
	// benchSecondsEnv overrides how long each timed download lasts, in
	// seconds.
	benchSecondsEnv = "IPSX_BENCH_SECONDS"
	benchSeconds    = 10
	// benchRTTsEnv overrides BenchmarkTunnelRTT's RTTs: milliseconds,
	// comma-separated.
	benchRTTsEnv = "IPSX_BENCH_RTT_MS"
	rttPings     = 3 // new connections per path and RTT before the download
)

// benchRTTs are the emulated round-trip times of BenchmarkTunnelRTT.
var benchRTTs = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}

// BenchmarkTunnelRTT measures one connection's download throughput
// through the tunnel and through `ssh -D` at 20, 50 and 100 ms of
// emulated round-trip time between the two ends of each (delay links in
// processes of their own, see delay_bench_test.go: the kernel has no
// netem), each a timed download of IPSX_BENCH_SECONDS (10 s) from the
// loopback byte source, and prints
//
//	bench: tunnel_rtt tunnel_mbps_rtt20=… tcp_mbps_rtt20=… ssh_mbps_rtt20=… ratio_ssh_rtt20=… tcp_ratio_ssh_rtt20=… … udp_drops=… fails=…
//
// with one group of keys per RTT (IPSX_BENCH_RTT_MS, comma-separated,
// overrides the RTTs; 0 shows what the links alone cost), and a table
// with each path's time to first byte (a new connection: dial, SOCKS5, a
// 1-byte request), the median of rttPings taken just before the
// download, and how late each link released what it held.
//
// The tunnel is two libp2p hosts in this process built as node builds
// its host (libp2p's default transports, security and muxer), which know
// each other only through a delay link: a requester with the SOCKS5
// front-end of package tunnel routing every connection over a
// /ipsx/tunnel stream, and a provider serving them with tunnel.Exit
// under an unlimited meter. It has none of the node's deal machinery
// (vouchers, usage reports, connection-log co-signing): it is the
// transport and the tunnel protocol at that RTT. "tunnel" rides QUIC
// over a UDP delay link, as a node's tunnel does when both ends have
// QUIC addresses (node dials what the peerstore has and libp2p prefers
// QUIC); "tunnel-tcp" rides libp2p's TCP transport (TLS or noise, yamux)
// over a TCP delay link, the alternative the issue names. ssh connects to
// sshd through a TCP delay link. Each RTT has its own links, hosts and
// ssh connection, made with the delay in place: yamux sizes its window
// growth on the RTT it measures when the session starts. The resource
// managers have no limits: a node's do not bind on one flow (QUIC's
// windows are quic-go's, and a node lets a yamux stream grow to its
// maximum window). A TCP link ends TCP on each side (delay_bench_test.go), so
// the tcp and ssh figures leave out what kernel TCP's windows would do
// over a real path of that RTT.
//
// udp_drops counts the datagrams the kernel dropped for full socket
// buffers, machine-wide, while the benchmark ran. The links run on the
// same 2 cores as both ends; under load they release bursts, which
// quic-go's receiver drops when its queue of 256 packets per connection
// overflows (QLOGDIR=dir shows them as packet_dropped, "dos_prevention"),
// losses that QUIC's congestion control then backs off from.
func BenchmarkTunnelRTT(b *testing.B) {
	dur := benchDuration(b)
	rtts := benchRTTs
	if s := os.Getenv(benchRTTsEnv); s != "" {
		rtts = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || n < 0 {
				b.Fatalf("%s=%q: want milliseconds, comma-separated", benchRTTsEnv, s)
			}
			rtts = append(rtts, time.Duration(n*float64(time.Millisecond)))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	target := startByteSource(b)
	prov := startBenchProvider(ctx, b)
	// Each RTT gets its own links and connections, made with the delay in
	// place, as on a real path: yamux measures the RTT when a session
	// starts and sizes its window growth on it.
	names := []string{"tunnel", "tunnel-tcp", "ssh -D"}
	keys := []string{"tunnel", "tcp", "ssh"}
	const sshIdx = 2
	paths := map[time.Duration][]*tunnelPath{}
	links := map[time.Duration][]*linkProcess{}
	for _, rtt := range rtts {
		udpLink := startLinkProcess(b, "udp", prov.udp.String(), rtt)
		tcpLink := startLinkProcess(b, "tcp", prov.tcp.String(), rtt)
		links[rtt] = []*linkProcess{udpLink, tcpLink}
		quic := startBenchRequester(ctx, b, names[0], prov.id,
			ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", addrPort(b, udpLink.addr))), "quic-v1")
		tcp := startBenchRequester(ctx, b, names[1], prov.id,
			ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", addrPort(b, tcpLink.addr))), "tcp")
		ssh := startSSHPath(ctx, b, func(sshd string) string {
			l := startLinkProcess(b, "tcp", sshd, rtt)
			links[rtt] = append(links[rtt], l)
			return l.addr
		})
		paths[rtt] = []*tunnelPath{quic, tcp, ssh}
	}
	drops0, dropErr := udpRcvbufErrors()

	type cell struct {
		mbps float64
		ttfb time.Duration
		ok   bool
	}
	res := map[time.Duration][]cell{}
	for b.Loop() {
		buf := make([]byte, 256<<10)
		for _, rtt := range rtts {
			res[rtt] = make([]cell, len(names))
			for i, p := range paths[rtt] {
				if p.skipped != "" {
					continue
				}
				var ttfb []time.Duration
				for range rttPings {
					d, err := measureTTFB(ctx, p, target)
					if err != nil {
						p.fail(ctx, fmt.Errorf("%s RTT: new connection: %w", rtt, err))
						continue
					}
					ttfb = append(ttfb, d)
				}
				mbps, err := measureFor(ctx, p, target, dur, buf)
				if err != nil {
					p.fail(ctx, fmt.Errorf("%s RTT: %s download: %w", rtt, dur, err))
					continue
				}
				res[rtt][i] = cell{mbps: mbps, ttfb: median(ttfb), ok: true}
			}
		}
	}
	b.StopTimer()
	drops1, dropErr1 := udpRcvbufErrors()

	var tab strings.Builder
	fmt.Fprintf(&tab, "one connection at an emulated RTT: a %s download each; TTFB the median of %d new connections just before it:\n", dur, rttPings)
	fmt.Fprintf(&tab, "  %-7s %-11s %9s %9s %9s\n", "RTT", "path", "MB/s", "x ssh", "TTFB ms")
	line := "bench: tunnel_rtt"
	add := func(k string, v float64) { line += fmt.Sprintf(" %s=%s", k, strconv.FormatFloat(v, 'f', 3, 64)) }
	fails := 0
	for _, rtt := range rtts {
		sfx := fmt.Sprintf("_rtt%d", rtt.Milliseconds())
		sc := res[rtt][sshIdx]
		for i, p := range paths[rtt] {
			fails += p.fails
			if p.firstErr != nil {
				fmt.Fprintf(&tab, "  %-7s %-11s first failure: %v\n", rtt, p.name, p.firstErr)
				b.Errorf("%s at %s RTT: %d failures; the first: %v", p.name, rtt, p.fails, p.firstErr)
			}
			if p.skipped != "" {
				fmt.Fprintf(&tab, "  %-7s %-11s skipped: %s\n", rtt, p.name, p.skipped)
				continue
			}
			c := res[rtt][i]
			if !c.ok {
				fmt.Fprintf(&tab, "  %-7s %-11s failed\n", rtt, p.name)
				continue
			}
			xs := "-"
			if sc.ok {
				xs = fmt.Sprintf("%.3f", c.mbps/sc.mbps)
			}
			fmt.Fprintf(&tab, "  %-7s %-11s %9.1f %9s %9.3f\n", rtt, p.name, c.mbps, xs, ms(c.ttfb))
			add(keys[i]+"_mbps"+sfx, c.mbps)
			b.ReportMetric(c.mbps, fmt.Sprintf("%s-MB/s-%dms", keys[i], rtt.Milliseconds()))
		}
		for i, l := range links[rtt] {
			fmt.Fprintf(&tab, "  %-7s %-11s link: chunks %s\n", rtt, names[i], l.Stats())
		}
		if q := res[rtt][0]; q.ok && sc.ok {
			add("ratio_ssh"+sfx, q.mbps/sc.mbps)
		}
		if t := res[rtt][1]; t.ok && sc.ok {
			add("tcp_ratio_ssh"+sfx, t.mbps/sc.mbps)
		}
	}
	if dropErr == nil && dropErr1 == nil {
		fmt.Fprintf(&tab, "  UDP datagrams dropped for full socket buffers meanwhile (machine-wide): %d\n", drops1-drops0)
		line += fmt.Sprintf(" udp_drops=%d", drops1-drops0)
	}
	logTable(b, tab.String())
	fmt.Println(line + fmt.Sprintf(" fails=%d", fails))
}

// benchDuration is how long each timed download lasts.
func benchDuration(b *testing.B) time.Duration {
	if s := os.Getenv(benchSecondsEnv); s != "" {
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs <= 0 {
			b.Fatalf("%s=%q: want a positive number of seconds", benchSecondsEnv, s)
		}
		return time.Duration(secs * float64(time.Second))
	}
	return benchSeconds * time.Second
}

func addrPort(b *testing.B, hostport string) int {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		b.Fatal(err)
	}
	return int(ap.Port())
}

// measureFor downloads from target over one new connection of p for dur
// (the source sends until the client closes) and returns MB/s from the
// request to the end of dur.
func measureFor(ctx context.Context, p *tunnelPath, target string, dur time.Duration, buf []byte) (float64, error) {
	c, err := p.dial(ctx, target)
	if err != nil {
		return 0, fmt.Errorf("refused: %w", err)
	}
	defer c.Close()
	got, elapsed, err := readFor(c, dur, buf)
	if err != nil {
		return 0, err
	}
	return float64(got) / elapsed.Seconds() / 1e6, nil
}

// readFor asks c's source for an endless download and reads it for dur;
// it returns the bytes read, the time from the request to the end, and an
// error if the download ended before dur.
func readFor(c net.Conn, dur time.Duration, buf []byte) (int64, time.Duration, error) {
	start := time.Now()
	got, err := readUntil(c, start.Add(dur), buf)
	return got, time.Since(start), err
}

// readUntil asks c's source for an endless download and reads it until
// end; it returns the bytes read, and an error if the download ended
// before.
func readUntil(c net.Conn, end time.Time, buf []byte) (int64, error) {
	if err := c.SetDeadline(end); err != nil {
		return 0, err
	}
	if err := requestBytes(c, 1<<50); err != nil {
		return 0, err
	}
	var got int64
	for {
		k, err := c.Read(buf)
		got += int64(k)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(end) {
				return got, nil
			}
			return got, fmt.Errorf("cut after %d bytes: %w", got, err)
		}
	}
}

// benchDeal is the deal id of the bench hosts' tunnel streams.
var benchDeal = common.HexToHash("0xbe4c")

// benchProvider is a libp2p host serving /ipsx/tunnel streams with an
// exit that lets them reach loopback, under one unlimited meter.
type benchProvider struct {
	id  peer.ID
	tcp *net.TCPAddr
	udp *net.UDPAddr
}

// newBenchHost is a libp2p host as node builds one (libp2p's default
// transports, security and muxer) on 127.0.0.1, TCP and QUIC, with no
// resource limits, that dials only dialable.
func newBenchHost(b *testing.B, dialable ma.Multiaddr) host.Host {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	if err != nil {
		b.Fatal(err)
	}
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(dialOnly{dialable}),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	return h
}

// dialOnly is a connection gater that lets its host dial one address
// only (none if nil), so that two hosts meet only through a delay link
// whatever addresses identify tells them; it accepts every connection.
type dialOnly struct{ addr ma.Multiaddr }

func (g dialOnly) InterceptPeerDial(peer.ID) bool { return g.addr != nil }
func (g dialOnly) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool {
	return g.addr != nil && a.Equal(g.addr)
}
func (dialOnly) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (dialOnly) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (dialOnly) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func startBenchProvider(ctx context.Context, b *testing.B) *benchProvider {
	h := newBenchHost(b, nil)
	policy, err := tunnel.NewPolicy(tunnel.PolicyConfig{UnsafeAllowLoopbackForTests: true})
	if err != nil {
		b.Fatal(err)
	}
	meter := tunnel.NewMeter(benchDeal, tunnel.MeterConfig{})
	exit, err := tunnel.NewExit(policy, func(_ context.Context, h tunnel.Header) (tunnel.Grant, error) {
		if h.DealID != benchDeal {
			return tunnel.Grant{}, tunnel.ErrUnauthorized
		}
		return tunnel.Grant{Egress: netip.MustParseAddr("127.0.0.1"), Meter: meter}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	h.SetStreamHandler(tunnel.ProtocolID, func(s network.Stream) {
		wg.Add(1)
		defer wg.Done()
		_ = exit.ServeStream(sctx, s)
	})
	// Registered after the host's Close, so run before it (cleanups run
	// last first): the streams are cut and their handlers joined first.
	b.Cleanup(func() { cancel(); wg.Wait() })
	p := &benchProvider{id: h.ID()}
	for _, a := range h.Addrs() {
		if port, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			n, _ := strconv.Atoi(port)
			p.udp = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n}
		} else if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			n, _ := strconv.Atoi(port)
			p.tcp = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n}
		}
	}
	if p.udp == nil || p.tcp == nil {
		b.Fatalf("provider host listens on %v: want TCP and QUIC", h.Addrs())
	}
	return p
}

// startBenchRequester starts a libp2p host that knows the provider only
// at addr, connects to it there (checking that the connection's
// transport is transport, a multiaddr protocol name), and returns the
// path through a SOCKS5 front-end that opens a tunnel stream to the
// provider for every connection.
func startBenchRequester(ctx context.Context, b *testing.B, name string, prov peer.ID, addr ma.Multiaddr, transport string) *tunnelPath {
	h := newBenchHost(b, addr)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := h.Connect(cctx, peer.AddrInfo{ID: prov, Addrs: []ma.Multiaddr{addr}}); err != nil {
		b.Fatalf("%s: connect to the provider at %s: %v", name, addr, err)
	}
	for _, c := range h.Network().ConnsToPeer(prov) {
		used := false
		for _, p := range c.RemoteMultiaddr().Protocols() {
			used = used || p.Name == transport
		}
		if !used {
			b.Fatalf("%s: connected over %s, want %s", name, c.RemoteMultiaddr(), transport)
		}
	}
	router := tunnel.RouterFunc(func(ctx context.Context, _ tunnel.Route, target string) (net.Conn, error) {
		s, err := h.NewStream(ctx, prov, tunnel.ProtocolID)
		if err != nil {
			return nil, err
		}
		return tunnel.OpenStream(ctx, s, tunnel.Header{DealID: benchDeal, Target: target})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tunnel.NewSOCKSServer(router).Serve(sctx, ln) }()
	b.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
			b.Errorf("%s: socks: %v", name, err)
		}
	})
	return &tunnelPath{name: name, dial: socksDialer(ln.Addr().String(), "", ""), cpu: selfCPU, inProcess: true}
}
