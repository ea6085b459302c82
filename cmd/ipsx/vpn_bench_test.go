package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/ipsx/ipsx/internal/netns"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/vpn"
)

// BenchmarkVPN compares, in one run and between the same two network
// namespaces, three ways from a client in namespace "bcli" to a server in
// namespace "bsrv": the IPSX VPN (the requester node's TUN in bcli, its
// flows tunnel flows of a deal with the provider node in bsrv, which
// dials the server), userspace WireGuard (wireguard-go with a TUN of its
// own in each namespace; the kernel has no WireGuard module) and the
// SOCKS5 path (the same requester node's proxy, the same deal). It
// measures one TCP flow's download throughput (median of runs, size
// IPSX_BENCH_MIB, default 128 MiB) and the round trip of a 64-byte UDP
// datagram (median of 2000, after a warm-up), and prints
//
//	bench: vpn vpn_tcp_mbps=… wg_tcp_mbps=… socks_tcp_mbps=… ratio_tcp=… vpn_udp_rtt_us=… wg_udp_rtt_us=… ratio_rtt=…
//
// (Mbit/s; ratios are VPN over WireGuard). The goals are ratio_tcp ≥ 0.8
// and ratio_rtt ≤ 1.5. Run it with -benchtime=1x: one iteration is the
// whole experiment.
func BenchmarkVPN(b *testing.B) {
	if err := netns.Available(); err != nil {
		b.Skipf("network namespaces: %v", err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		b.Skipf("no /dev/net/tun: %v", err)
	}
	mib := 128
	if s := os.Getenv("IPSX_BENCH_MIB"); s != "" {
		var err error
		if mib, err = strconv.Atoi(s); err != nil || mib <= 0 {
			b.Fatalf("IPSX_BENCH_MIB=%q: want a positive number of MiB", s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	n := netns.New(b)
	cli, srv := n.Namespace("bcli"), n.Namespace("bsrv")
	n.Link(cli, netip.MustParsePrefix("11.70.0.1/24"), srv, netip.MustParsePrefix("11.70.0.2/24"))
	// The server's own address, which the provider dials (the exit
	// refuses the provider's own, 11.70.0.2); bcli reaches it only
	// through the VPN.
	if _, err := srv.Run(ctx, "ip", "addr", "add", "11.71.0.1/32", "dev", "lo"); err != nil {
		b.Fatal(err)
	}

	targets := startBenchRole(b, srv, "benchtarget")
	targets.nextB(b, ctx, "up")

	// WireGuard between the namespaces, over the same veth.
	privA, pubA := wgKeys(b)
	privB, pubB := wgKeys(b)
	wgA := startBenchRole(b, cli, "wg", "IPSX_WG_PRIV="+privA, "IPSX_WG_PEER="+pubB, "IPSX_WG_PORT=51820",
		"IPSX_WG_ENDPOINT=11.70.0.2:51821", "IPSX_WG_ADDR=10.77.0.1/24")
	wgB := startBenchRole(b, srv, "wg", "IPSX_WG_PRIV="+privB, "IPSX_WG_PEER="+pubA, "IPSX_WG_PORT=51821",
		"IPSX_WG_ENDPOINT=11.70.0.1:51820", "IPSX_WG_ADDR=10.77.0.2/24")
	wgA.nextB(b, ctx, "up")
	wgB.nextB(b, ctx, "up")

	// The chain and the provider in bsrv, the requester in bcli.
	ch := startBenchRole(b, srv, "chain", "IPSX_VPN_CHAIN_ADDR=11.70.0.2:8545")
	info := map[string]string{}
	for _, k := range []string{"chain id", "escrow", "rpc"} {
		info[k] = strings.TrimPrefix(ch.nextB(b, ctx, k+": "), k+": ")
	}
	chainArgs := []string{"--chain-rpc", info["rpc"], "--chain-id", info["chain id"], "--escrow", info["escrow"], "--log-level", "warn"}
	prov := startBenchNode(b, srv, append([]string{"--listen", "/ip4/11.70.0.2/tcp/4001", "--listen", "/ip4/11.70.0.2/udp/4001/quic-v1", "--dht-server"}, chainArgs...)...)
	pst := prov.awaitUp(b, ctx)
	req := startBenchNode(b, cli, append([]string{"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1",
		"--bootstrap", "/ip4/11.70.0.2/tcp/4001/p2p/" + pst.PeerID, "--countries", "DE"}, chainArgs...)...)
	rst := req.awaitUp(b, ctx)
	for _, x := range []struct {
		m    *benchNode
		addr string
	}{{prov, pst.Address}, {req, rst.Address}} {
		if _, err := io.WriteString(ch.stdin, x.addr+"\n"); err != nil {
			b.Fatal(err)
		}
		ch.nextB(b, ctx, "funded")
		x.m.run(b, ctx, "wallet", "deposit", "5tok")
	}
	prov.run(b, ctx, "offer", "create", "--country", "DE", "--protocols", "tcp,udp", "--price-per-hour", "3600000",
		"--price-per-gb", "1000", "--bandwidth", "100000", "--max-duration", "1h")
	req.run(b, ctx, "request", "create", "--country", "DE", "--protocols", "tcp,udp", "--duration", "30m",
		"--max-price-per-hour", "100000000", "--max-price-per-gb", "1000")
	if err := awaitB(ctx, func() error {
		var ds []sdk.Deal
		if err := req.cli(ctx, &ds, "deals", "list"); err != nil {
			return err
		}
		for _, d := range ds {
			if d.Status == "active" {
				return nil
			}
		}
		return fmt.Errorf("%d deals, none active", len(ds))
	}); err != nil {
		b.Fatalf("no active deal: %v", err)
	}
	var vst sdk.VPNStatus
	if err := req.cli(ctx, &vst, "vpn", "up", "--route", "country-DE", "--prefix", "11.71.0.0/24"); err != nil || vst.State != "up" {
		b.Fatalf("vpn up: %+v %v", vst, err)
	}
	// The VPN's userspace stack alone, for the profile: a second TUN in
	// bcli whose flows are dialled straight to the server, no tunnel.
	stack := startBenchRole(b, cli, "vpnstack", "IPSX_BENCH_STATE="+b.TempDir()+"/state.json")
	stack.nextB(b, ctx, "up")
	pw := strings.TrimSpace(string(req.run(b, ctx, "proxy", "password")))

	for b.Loop() {
		client := cli.Exec(ctx, os.Args[0], "-test.run=^$")
		client.Env = append(os.Environ(), vpnRoleEnv+"=benchclient", "GORACE=atexit_sleep_ms=0",
			fmt.Sprintf("IPSX_BENCH_BYTES=%d", int64(mib)<<20), "IPSX_BENCH_SOCKS=127.0.0.1:1080", "IPSX_BENCH_PASS="+pw)
		var stderr strings.Builder
		client.Stderr = &stderr
		out, err := client.Output()
		if err != nil {
			b.Fatalf("bench client: %v: %s", err, stderr.String())
		}
		var r benchResult
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatalf("bench client said %s: %v", out, err)
		}
		line := fmt.Sprintf("bench: vpn vpn_tcp_mbps=%.0f wg_tcp_mbps=%.0f socks_tcp_mbps=%.0f ratio_tcp=%.2f vpn_udp_rtt_us=%.0f wg_udp_rtt_us=%.0f ratio_rtt=%.2f",
			r.TCP["vpn"], r.TCP["wg"], r.TCP["socks"], r.TCP["vpn"]/r.TCP["wg"], r.RTT["vpn"], r.RTT["wg"], r.RTT["vpn"]/r.RTT["wg"])
		fmt.Println(line)
		b.Logf("%s\nruns (Mbit/s): %v; UDP RTT (µs) p10/p50/p90: %v\nthe VPN's userspace stack alone (TUN and gVisor, flows dialled straight to the server, no tunnel): %.0f Mbit/s, UDP RTT %.0f µs",
			line, r.Runs, r.RTTSpread, r.TCP["stack"], r.RTT["stack"])
		b.ReportMetric(r.TCP["vpn"], "vpn-tcp-Mbps")
		b.ReportMetric(r.TCP["wg"], "wg-tcp-Mbps")
		b.ReportMetric(r.TCP["socks"], "socks-tcp-Mbps")
		b.ReportMetric(r.RTT["vpn"], "vpn-udp-rtt-us")
		b.ReportMetric(r.RTT["wg"], "wg-udp-rtt-us")
	}
	var st sdk.VPNStatus
	_ = req.cli(ctx, &st, "vpn", "status")
	b.Logf("vpn counters after the run: %+v", st.Counters)
}

// benchResult is what the bench client prints.
type benchResult struct {
	TCP       map[string]float64   `json:"tcp"` // Mbit/s, median
	RTT       map[string]float64   `json:"rtt"` // µs, median
	Runs      map[string][]float64 `json:"runs"`
	RTTSpread map[string][]float64 `json:"rttSpread"`
}

// benchClient runs in bcli: throughput runs interleaved over the three
// paths, then UDP round trips over the VPN and WireGuard.
func benchClient() error {
	size, err := strconv.ParseInt(os.Getenv("IPSX_BENCH_BYTES"), 10, 64)
	if err != nil {
		return err
	}
	socks, pass := os.Getenv("IPSX_BENCH_SOCKS"), os.Getenv("IPSX_BENCH_PASS")
	ctx := context.Background()
	dial := map[string]func() (net.Conn, error){
		"vpn": func() (net.Conn, error) { return net.DialTimeout("tcp", "11.71.0.1:9000", 30*time.Second) },
		"wg":  func() (net.Conn, error) { return net.DialTimeout("tcp", "10.77.0.2:9000", 30*time.Second) },
		"socks": func() (net.Conn, error) {
			return socks5Connect(ctx, socks, "country-DE", pass, "11.71.0.1:9000")
		},
		"stack": func() (net.Conn, error) { return net.DialTimeout("tcp", "11.72.0.1:9000", 30*time.Second) },
	}
	order := []string{"vpn", "wg", "socks", "stack"}
	res := benchResult{TCP: map[string]float64{}, RTT: map[string]float64{}, Runs: map[string][]float64{}, RTTSpread: map[string][]float64{}}
	buf := make([]byte, 256<<10)
	for _, p := range order { // warm-up: a small download each
		if _, err := download(dial[p], 4<<20, buf); err != nil {
			return fmt.Errorf("%s warm-up: %w", p, err)
		}
	}
	for range 3 {
		for _, p := range order {
			mbps, err := download(dial[p], size, buf)
			if err != nil {
				return fmt.Errorf("%s download: %w", p, err)
			}
			res.Runs[p] = append(res.Runs[p], mbps)
		}
	}
	for _, p := range order {
		res.TCP[p] = medianF(res.Runs[p])
	}
	for _, x := range []struct{ name, addr string }{{"vpn", "11.71.0.1:7"}, {"wg", "10.77.0.2:7"}, {"stack", "11.72.0.1:7"}} {
		rtts, err := udpRTT(x.addr, 2000)
		if err != nil {
			return fmt.Errorf("%s udp: %w", x.name, err)
		}
		slices.Sort(rtts)
		res.RTT[x.name] = rtts[len(rtts)/2]
		res.RTTSpread[x.name] = []float64{rtts[len(rtts)/10], rtts[len(rtts)/2], rtts[len(rtts)*9/10]}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// download asks the server for size bytes over a new connection and
// returns Mbit/s from the request to the last byte.
func download(dial func() (net.Conn, error), size int64, buf []byte) (float64, error) {
	c, err := dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Minute))
	start := time.Now()
	if _, err := c.Write(binary.BigEndian.AppendUint64(nil, uint64(size))); err != nil {
		return 0, err
	}
	var got int64
	for got < size {
		k, err := c.Read(buf)
		got += int64(k)
		if err != nil {
			if err == io.EOF && got == size {
				break
			}
			return 0, fmt.Errorf("cut after %d of %d bytes: %w", got, size, err)
		}
	}
	return float64(size) * 8 / time.Since(start).Seconds() / 1e6, nil
}

// udpRTT times n round trips of a 64-byte datagram to an echo, after 100
// unmeasured ones, in microseconds.
func udpRTT(addr string, n int) ([]float64, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 2048)
	var out []float64
	lost := 0
	for i := range n + 100 {
		binary.BigEndian.PutUint64(msg, uint64(i))
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			k, err := c.Read(buf)
			if err != nil {
				lost++
				if lost > n/10 {
					return nil, fmt.Errorf("%d datagrams lost", lost)
				}
				break
			}
			if k >= 8 && binary.BigEndian.Uint64(buf) == uint64(i) {
				if i >= 100 {
					out = append(out, float64(time.Since(start).Microseconds()))
				}
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no round trip")
	}
	return out, nil
}

// socks5Connect is CONNECT through a SOCKS5 proxy with username/password.
func socks5Connect(ctx context.Context, proxy, user, pass, target string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fail := func(err error) (net.Conn, error) { c.Close(); return nil, fmt.Errorf("socks5: %w", err) }
	if _, err := c.Write([]byte{5, 1, 2}); err != nil {
		return fail(err)
	}
	var r [10]byte
	if _, err := io.ReadFull(c, r[:2]); err != nil || r[1] != 2 {
		return fail(fmt.Errorf("method: %v %v", r[:2], err))
	}
	auth := append([]byte{1, byte(len(user))}, user...)
	auth = append(append(auth, byte(len(pass))), pass...)
	if _, err := c.Write(auth); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(c, r[:2]); err != nil || r[1] != 0 {
		return fail(fmt.Errorf("auth: %v %v", r[:2], err))
	}
	ap := netip.MustParseAddrPort(target)
	a4 := ap.Addr().As4()
	req := binary.BigEndian.AppendUint16(append([]byte{5, 1, 0, 1}, a4[:]...), ap.Port())
	if _, err := c.Write(req); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(c, r[:10]); err != nil || r[1] != 0 {
		return fail(fmt.Errorf("connect: reply %d %v", r[1], err))
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// benchTarget serves the downloads (8-byte length, then that many bytes)
// on :9000 and a UDP echo on :7, until killed.
func benchTarget() error {
	ln, err := net.Listen("tcp", ":9000")
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", ":7")
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	block := make([]byte, 256<<10)
	_, _ = rand.Read(block)
	fmt.Println("up")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			var hdr [8]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			for n := binary.BigEndian.Uint64(hdr[:]); n > 0; {
				k := min(n, uint64(len(block)))
				if _, err := c.Write(block[:k]); err != nil {
					return
				}
				n -= k
			}
		}()
	}
}

// vpnStack runs a VPN with a route for 11.72.0.0/24 whose flows are
// dialled straight to the server's veth address (no tunnel), until
// killed: the cost of the TUN and the userspace stack alone.
func vpnStack(ctx context.Context) error {
	v, err := vpn.New(vpn.Config{Name: "ipsx1", Routes: []netip.Prefix{netip.MustParsePrefix("11.72.0.0/24")},
		Addr4: netip.MustParsePrefix("100.127.1.1/32"), StateFile: os.Getenv("IPSX_BENCH_STATE")}, straightDialer{})
	if err != nil {
		return err
	}
	return v.Run(ctx, func() { fmt.Println("up") })
}

// straightDialer dials 11.72.0.1:port as 11.70.0.2:port.
type straightDialer struct{}

func (straightDialer) dial(ctx context.Context, network, target string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, netip.AddrPortFrom(netip.MustParseAddr("11.70.0.2"), ap.Port()).String())
}

func (s straightDialer) DialTCP(ctx context.Context, t string) (net.Conn, error) {
	return s.dial(ctx, "tcp", t)
}
func (s straightDialer) DialUDP(ctx context.Context, t string) (net.Conn, error) {
	return s.dial(ctx, "udp", t)
}

// wgPeer runs a userspace WireGuard interface (wireguard-go, TUN wg0)
// configured from the environment, until killed.
func wgPeer() error {
	dev, err := tun.CreateTUN("wg0", device.DefaultMTU)
	if err != nil {
		return err
	}
	d := device.NewDevice(dev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "wg: "))
	cfg := fmt.Sprintf("private_key=%s\nlisten_port=%s\npublic_key=%s\nendpoint=%s\nallowed_ip=10.77.0.0/24\npersistent_keepalive_interval=0\n",
		os.Getenv("IPSX_WG_PRIV"), os.Getenv("IPSX_WG_PORT"), os.Getenv("IPSX_WG_PEER"), os.Getenv("IPSX_WG_ENDPOINT"))
	if err := d.IpcSet(cfg); err != nil {
		return err
	}
	if err := d.Up(); err != nil {
		return err
	}
	for _, args := range [][]string{{"addr", "add", os.Getenv("IPSX_WG_ADDR"), "dev", "wg0"}, {"link", "set", "wg0", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	fmt.Println("up")
	<-d.Wait()
	return nil
}

// wgKeys returns a private and a public key, hex, as the UAPI wants them.
func wgKeys(b *testing.B) (string, string) {
	var priv [32]byte
	if _, err := rand.Read(priv[:]); err != nil {
		b.Fatal(err)
	}
	priv[0] &= 248
	priv[31] = priv[31]&127 | 64
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(priv[:]), hex.EncodeToString(pub)
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func awaitB(ctx context.Context, cond func() error) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// benchRole and benchNode are the benchmark's roleProc and vpnNode (those
// take a *testing.T).
type benchRole struct{ *roleProc }

func startBenchRole(b *testing.B, ns *netns.NS, role string, env ...string) benchRole {
	cmd := ns.Exec(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), vpnRoleEnv+"="+role, "GORACE=atexit_sleep_ms=0"), env...)
	p := &roleProc{cmd: cmd, out: &syncBuffer{}, lines: make(chan string, 1000)}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go p.scan(stdout)
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("role %s stderr:\n%s", role, stderr.String())
		}
	})
	return benchRole{p}
}

func (p benchRole) nextB(b *testing.B, ctx context.Context, prefix string) string {
	for {
		select {
		case l := <-p.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-ctx.Done():
			b.Fatalf("no %q line; output so far:\n%s", prefix, p.out.String())
		}
	}
}

type benchNode struct {
	ns   *netns.NS
	dir  string
	logs *syncBuffer
}

func startBenchNode(b *testing.B, ns *netns.NS, args ...string) *benchNode {
	m := &benchNode{ns: ns, dir: b.TempDir(), logs: &syncBuffer{}}
	if _, err := ipsxIn(context.Background(), ns, "init", "--datadir", m.dir, "--scrypt", "light"); err != nil {
		b.Fatal(err)
	}
	cmd := ns.Exec(context.Background(), os.Args[0], append([]string{"-test.run=^$", "--", "node", "--datadir", m.dir}, args...)...)
	cmd.Env = append(os.Environ(), "IPSX_TEST_AS_CLI=1", "IPSX_PASSWORD=pw", "GORACE=atexit_sleep_ms=0")
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if b.Failed() {
			b.Logf("node in %s logged:\n%s", ns.Name(), tail(m.logs.String(), 60))
		}
	})
	return m
}

func (m *benchNode) cli(ctx context.Context, out any, args ...string) error {
	b, err := ipsxIn(ctx, m.ns, append([]string{"--datadir", m.dir, "--json"}, args...)...)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func (m *benchNode) run(b *testing.B, ctx context.Context, args ...string) []byte {
	out, err := ipsxIn(ctx, m.ns, append([]string{"--datadir", m.dir}, args...)...)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func (m *benchNode) awaitUp(b *testing.B, ctx context.Context) sdk.Status {
	var st sdk.Status
	if err := awaitB(ctx, func() error {
		return m.cli(ctx, &st, "status")
	}); err != nil {
		b.Fatalf("node up: %v", err)
	}
	return st
}
