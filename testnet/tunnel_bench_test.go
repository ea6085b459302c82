//go:build linux

// The ssh -D comparison runs OpenSSH as child processes tied to this
// process (Setpgid, Pdeathsig) and installs it with apt-get: Linux only.

package testnet_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// Knobs of BenchmarkTunnelVsSSH.
const (
	// tunnelBenchMiBEnv overrides the bytes of each throughput run, in MiB.
	tunnelBenchMiBEnv = "IPSX_BENCH_MIB"
	tunnelBenchMiB    = 256
	throughputRuns    = 3  // per path, interleaved; the median is reported
	ttfbConns         = 20 // new connections per path, interleaved
)

// tunnelPath is one way from the client to the source server.
type tunnelPath struct {
	name string
	// dial opens a connection to target (host:port) through the path.
	dial func(ctx context.Context, target string) (net.Conn, error)
	// skipped says why the path is not measured.
	skipped string
	// diagnose, if set, explains a failed transfer (the tunnel: whether
	// the provider cut the deal).
	diagnose func(ctx context.Context) string
	// cpu, if set, is the CPU time used so far by what the path runs on
	// (see BenchmarkTunnelVsSSH).
	cpu func() (time.Duration, error)
	// inProcess says cpu is this process's: the path's ends run here.
	inProcess bool

	mbps   []float64       // throughput of each run that succeeded, MB/s (10^6 bytes)
	cpuGiB []float64       // CPU seconds per GiB (2^30 bytes) of each run that succeeded
	ttfb   []time.Duration // time to first byte of each new connection that succeeded
	// steps[i] holds the durations of step i (ttfbSteps) of those
	// connections, for the paths that have the step.
	steps    [numSteps][]time.Duration
	fails    int
	firstErr error
	lastErr  error
}

// BenchmarkTunnelVsSSH compares, in one run, one connection's download
// throughput and a new connection's time to first byte over the paths to
// a loopback source server: direct TCP; the IPSX tunnel (SOCKS5 at the
// requester, a libp2p stream to the provider under an active deal, the
// provider dialling from its 127.0.0.x egress); and `ssh -D` (OpenSSH's
// dynamic SOCKS forwarding to a private sshd on loopback, installed from
// Debian's packages if missing). It prints them side by side with the
// ratio tunnel/direct. Run it with -benchtime=1x: one iteration is the
// whole experiment.
//
// The tunnel is measured twice, over two deals with the node's default
// deal settings: "tunnel", whose bytes cost next to nothing, so that only
// the transport limits it, and "tunnel-paid" at the testnet's default
// price per GB, served only as fast as the requester's vouchers keep up
// with the provider's meter. A download or connection the provider cuts
// or refuses (for lack of payment) fails the benchmark with the
// provider's view of the deal at that moment; the path is still measured
// to the end, so the table shows how often. ssh runs with OpenSSH's
// defaults (chacha20-poly1305 on 9.x), as a user's would. Both
// offers have the protocol's maximum bandwidth so that the provider's
// token bucket does not cap what is measured.
//
// Each download's CPU cost is measured too, in CPU seconds (user+system)
// per GiB. The tunnel's requester and provider, the client and the byte
// source all run in this process, so a tunnel figure is this process's
// CPU time (getrusage RUSAGE_SELF) over the download, less what the
// direct path costs per GiB (client, source and loopback TCP, also in
// this process): what the two tunnel ends add. It includes what the
// testnet's nodes and the dev chain do meanwhile in the background
// (gossip, deal ticks), which the direct download, being shorter, bears
// less of. The ssh figure is the CPU of the ssh client and sshd with its
// per-connection processes (/proc/PID/stat of the process trees, 10 ms
// resolution per process), which are only the two ssh ends: the client
// and the source in this process are not in it.
func BenchmarkTunnelVsSSH(b *testing.B) {
	size := int64(tunnelBenchMiB) << 20
	if s := os.Getenv(tunnelBenchMiBEnv); s != "" {
		mib, err := strconv.ParseInt(s, 10, 64)
		if err != nil || mib <= 0 {
			b.Fatalf("%s=%q: want a positive number of MiB", tunnelBenchMiBEnv, s)
		}
		size = mib << 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	target := startByteSource(b)
	direct := directPath()
	tunnel, paid := startTunnelPaths(ctx, b)
	ssh := startSSHPath(ctx, b, nil)
	paths := []*tunnelPath{direct, tunnel, paid, ssh}

	for b.Loop() {
		buf := make([]byte, 256<<10)
		// Interleaved, so that a slow moment of the machine is shared. A
		// path that fails goes on being measured: how often it fails is
		// part of the result.
		for range throughputRuns {
			for _, p := range paths {
				if p.skipped != "" {
					continue
				}
				var mbps float64
				cpu, err := p.cpuOver(func() (err error) {
					mbps, err = measureThroughput(ctx, p, target, size, buf)
					return err
				})
				if err != nil {
					p.fail(ctx, fmt.Errorf("%d MiB download: %w", size>>20, err))
					continue
				}
				p.mbps = append(p.mbps, mbps)
				if cpu >= 0 {
					p.cpuGiB = append(p.cpuGiB, cpu.Seconds()/(float64(size)/(1<<30)))
				}
			}
		}
		for range ttfbConns {
			for _, p := range paths {
				if p.skipped != "" {
					continue
				}
				d, err := measureTTFB(ctx, p, target)
				if err != nil {
					p.fail(ctx, fmt.Errorf("new connection: %w", err))
					continue
				}
				p.ttfb = append(p.ttfb, d)
			}
		}
	}
	b.StopTimer()

	var tab strings.Builder
	fmt.Fprintf(&tab, "one connection: %d MiB download, median of %d runs; time to first byte of a new connection (dial, SOCKS5, 1-byte request/response), median of %d:\n",
		size>>20, throughputRuns, ttfbConns)
	fmt.Fprintf(&tab, "  %-12s %9s %9s %9s %10s   %-16s %s\n", "path", "MB/s", "x direct", "TTFB ms", "CPU s/GiB", "runs MB/s", "failed")
	directMBps := median(direct.mbps)
	for _, p := range paths {
		if p.skipped != "" {
			fmt.Fprintf(&tab, "  %-12s skipped: %s\n", p.name, p.skipped)
			continue
		}
		m, t := median(p.mbps), median(p.ttfb)
		var runs []string
		for _, r := range p.mbps {
			runs = append(runs, fmt.Sprintf("%.0f", r))
		}
		failed := "-"
		if p.fails > 0 {
			failed = fmt.Sprintf("%d of %d downloads, %d of %d connections",
				throughputRuns-len(p.mbps), throughputRuns, ttfbConns-len(p.ttfb), ttfbConns)
		}
		cpu := "-"
		if c, ok := cpuPerGiB(p, direct); ok {
			cpu = fmt.Sprintf("%.3f", c)
		}
		fmt.Fprintf(&tab, "  %-12s %9.1f %9.3f %9.3f %10s   %-16s %s\n", p.name, m, m/directMBps, ms(t), cpu, strings.Join(runs, " "), failed)
		if p.fails > 0 {
			b.Errorf("%s: %d failures; the first: %v", p.name, p.fails, p.firstErr)
			continue
		}
		key := strings.Fields(p.name)[0] // "ssh -D" is ssh
		b.ReportMetric(m, key+"-MB/s")
		b.ReportMetric(ms(t), key+"-ttfb-ms")
	}
	if tunnel.fails == 0 && direct.fails == 0 {
		r := median(tunnel.mbps) / directMBps
		fmt.Fprintf(&tab, "  tunnel/direct throughput %.3f", r)
		b.ReportMetric(r, "tunnel/direct")
		if ssh.skipped == "" && ssh.fails == 0 {
			rs := median(tunnel.mbps) / median(ssh.mbps)
			fmt.Fprintf(&tab, ", tunnel/ssh %.3f", rs)
			b.ReportMetric(rs, "tunnel/ssh")
		}
		fmt.Fprintln(&tab)
	}
	fmt.Fprintln(&tab, "  CPU s/GiB, median: tunnels: this process less the direct path's cost (what the two tunnel ends add); ssh -D: the ssh and sshd processes; direct: this process (client, source, loopback)")
	writeStepTable(&tab, paths)
	for _, p := range paths {
		if p.firstErr != nil {
			fmt.Fprintf(&tab, "  %s first failure: %v\n", p.name, p.firstErr)
		}
		if p.lastErr != nil {
			fmt.Fprintf(&tab, "  %s last failure: %v\n", p.name, p.lastErr)
		}
	}
	for _, p := range []*tunnelPath{tunnel, paid} {
		fmt.Fprintf(&tab, "  %s at the end: %s\n", p.name, p.diagnose(ctx))
	}
	logTable(b, tab.String())
	fmt.Println(tunnelBenchLine(direct, tunnel, paid, ssh))
}

// tunnelBenchLine is the benchmark's summary line:
//
//	bench: tunnel tunnel_mbps=… ssh_mbps=… direct_mbps=… ratio_ssh=… ratio_direct=… ttfb_ratio_direct=… …
//
// MB/s and ms are medians, and so is each path's CPU figure
// (tunnel_cpu_s_per_gib=…, paid_, ssh_, direct_; see cpuPerGiB); a path
// skipped or without a single success is left out (its ratios too), and
// fails= counts the failed measures of all paths.
func tunnelBenchLine(direct, tunnel, paid, ssh *tunnelPath) string {
	line := "bench: tunnel"
	add := func(k string, v float64) { line += fmt.Sprintf(" %s=%s", k, strconv.FormatFloat(v, 'f', 3, 64)) }
	ok := func(p *tunnelPath) bool { return p.skipped == "" && len(p.mbps) > 0 && len(p.ttfb) > 0 }
	fails := 0
	for _, p := range []*tunnelPath{tunnel, paid, ssh, direct} {
		fails += p.fails
		if !ok(p) {
			continue
		}
		key := map[*tunnelPath]string{tunnel: "tunnel", paid: "paid", ssh: "ssh", direct: "direct"}[p]
		add(key+"_mbps", median(p.mbps))
		add(key+"_ttfb_ms", ms(median(p.ttfb)))
		if st := p.steps[stepReply]; len(st) > 0 {
			add(key+"_reply_ms", ms(median(st)))
		}
		if c, ok := cpuPerGiB(p, direct); ok {
			add(key+"_cpu_s_per_gib", c)
		}
	}
	if ok(tunnel) && ok(ssh) {
		add("ratio_ssh", median(tunnel.mbps)/median(ssh.mbps))
		add("ttfb_ratio_ssh", float64(median(tunnel.ttfb))/float64(median(ssh.ttfb)))
	}
	if ok(tunnel) && ok(direct) {
		add("ratio_direct", median(tunnel.mbps)/median(direct.mbps))
		add("ttfb_ratio_direct", float64(median(tunnel.ttfb))/float64(median(direct.ttfb)))
	}
	if ok(paid) && ok(tunnel) {
		add("ratio_paid", median(paid.mbps)/median(tunnel.mbps))
	}
	return line + fmt.Sprintf(" fails=%d", fails)
}

// writeStepTable writes the median duration of each step of the paths'
// new connections (see ttfbSteps): where a time to first byte goes. For a
// SOCKS5 path, "reply" is what opening the way to the target costs (the
// tunnel's stream to the provider and the provider's dial, ssh's channel
// open and sshd's dial), and "first byte" is a round trip through it.
func writeStepTable(w io.Writer, paths []*tunnelPath) {
	fmt.Fprintf(w, "  time to first byte step by step, median ms:\n  %-12s", "path")
	for _, s := range ttfbSteps {
		fmt.Fprintf(w, " %10s", s)
	}
	fmt.Fprintln(w)
	for _, p := range paths {
		if p.skipped != "" || len(p.ttfb) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-12s", p.name)
		for _, d := range p.steps {
			if len(d) == 0 {
				fmt.Fprintf(w, " %10s", "-")
				continue
			}
			fmt.Fprintf(w, " %10.3f", ms(median(d)))
		}
		fmt.Fprintln(w)
	}
}

// cpuPerGiB is the median CPU seconds per GiB of p's downloads; for a
// path in this process other than direct itself, less direct's (see
// BenchmarkTunnelVsSSH). False if either has no figure.
func cpuPerGiB(p, direct *tunnelPath) (float64, bool) {
	if len(p.cpuGiB) == 0 {
		return 0, false
	}
	c := median(p.cpuGiB)
	if p.inProcess && p != direct {
		if len(direct.cpuGiB) == 0 {
			return 0, false
		}
		c -= median(direct.cpuGiB)
	}
	return c, true
}

// cpuOver runs f and returns its error and the CPU time p.cpu counts
// meanwhile, or -1 if p has no cpu or it failed.
func (p *tunnelPath) cpuOver(f func() error) (time.Duration, error) {
	if p.cpu == nil {
		return -1, f()
	}
	c0, err0 := p.cpu()
	err := f()
	c1, err1 := p.cpu()
	if err0 != nil || err1 != nil {
		return -1, err
	}
	return c1 - c0, err
}

// directPath dials the target over loopback TCP.
func directPath() *tunnelPath {
	return &tunnelPath{name: "direct", inProcess: true, cpu: selfCPU,
		dial: func(ctx context.Context, target string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", target)
			markStep(ctx, stepConnect)
			return c, err
		}}
}

// fail counts a failed measure of p and keeps the first error, with the
// provider's view of the deal at that moment for a tunnel.
func (p *tunnelPath) fail(ctx context.Context, err error) {
	p.fails++
	if p.firstErr != nil {
		p.lastErr = err
		return
	}
	if p.diagnose != nil {
		err = fmt.Errorf("%w; just after: %s", err, p.diagnose(ctx))
	}
	p.firstErr = err
}

// startByteSource serves, on 127.0.0.1, a length-prefixed download: the
// client sends 8 bytes (big-endian n), the server sends n bytes and closes.
// A 1-byte download is the request/response of the time-to-first-byte
// measure.
func startByteSource(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 256<<10)
	for i := range block {
		block[i] = byte(i*7 + i>>13)
	}
	var wg sync.WaitGroup
	serve := func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Minute))
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
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func requestBytes(c net.Conn, n int64) error {
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(n))
	_, err := c.Write(hdr[:])
	return err
}

// measureThroughput downloads size bytes over one new connection of p and
// returns MB/s from the request to the last byte (the connection set-up is
// the TTFB measure's).
func measureThroughput(ctx context.Context, p *tunnelPath, target string, size int64, buf []byte) (float64, error) {
	c, err := p.dial(ctx, target)
	if err != nil {
		return 0, fmt.Errorf("refused: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	start := time.Now()
	if err := requestBytes(c, size); err != nil {
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
	return float64(size) / time.Since(start).Seconds() / 1e6, nil
}

// measureTTFB opens a new connection through p, asks for one byte and
// returns the time from the dial to that byte. The durations of the steps
// on the way go to p.steps.
func measureTTFB(ctx context.Context, p *tunnelPath, target string) (time.Duration, error) {
	clk := &stepClock{}
	ctx = context.WithValue(ctx, stepClockKey{}, clk)
	start := time.Now()
	c, err := p.dial(ctx, target)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := requestBytes(c, 1); err != nil {
		return 0, err
	}
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		return 0, err
	}
	markStep(ctx, stepFirstByte)
	prev := start
	for i, at := range clk.at {
		if !at.IsZero() {
			p.steps[i] = append(p.steps[i], at.Sub(prev))
			prev = at
		}
	}
	return time.Since(start), nil
}

// The steps of a new connection, in order, for the breakdown of its time
// to first byte: the TCP connect (to the target, or to the proxy), the
// SOCKS5 proxy's replies to the greeting, the username/password and the
// CONNECT request, and the first byte of the answer. The direct path has
// the first and the last only.
const (
	stepConnect = iota
	stepGreeting
	stepAuth
	stepReply
	stepFirstByte
	numSteps
)

var ttfbSteps = [numSteps]string{"connect", "greeting", "auth", "reply", "first byte"}

// stepClock is when each step of one connection ended (zero: no such
// step); measureTTFB hands it to the dialler in the context.
type stepClock struct{ at [numSteps]time.Time }

type stepClockKey struct{}

// markStep records that step i of the connection being measured ended.
func markStep(ctx context.Context, i int) {
	if c, ok := ctx.Value(stepClockKey{}).(*stepClock); ok {
		c.at[i] = time.Now()
	}
}

// socksDialer dials target through a SOCKS5 proxy as curl does: greeting,
// username/password if either is set (the requester's proxies ask for
// its proxy password), then CONNECT, each answered before the next.
func socksDialer(proxy, user, pass string) func(ctx context.Context, target string) (net.Conn, error) {
	return func(ctx context.Context, target string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(target)
		if err != nil {
			return nil, err
		}
		ip := net.ParseIP(host).To4()
		pn, err := strconv.Atoi(port)
		if ip == nil || err != nil {
			return nil, fmt.Errorf("socks5: want an IPv4 target, got %s", target)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", proxy)
		if err != nil {
			return nil, err
		}
		markStep(ctx, stepConnect)
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		fail := func(err error) (net.Conn, error) {
			c.Close()
			return nil, fmt.Errorf("socks5 %s: %w", proxy, err)
		}
		method := byte(0)
		if user != "" || pass != "" {
			method = 2
		}
		if _, err := c.Write([]byte{5, 1, method}); err != nil {
			return fail(err)
		}
		var r [10]byte
		if _, err := io.ReadFull(c, r[:2]); err != nil {
			return fail(err)
		}
		if r[0] != 5 || r[1] != method {
			return fail(fmt.Errorf("method %d refused (%d)", method, r[1]))
		}
		markStep(ctx, stepGreeting)
		if method == 2 {
			auth := append([]byte{1, byte(len(user))}, user...)
			auth = append(append(auth, byte(len(pass))), pass...)
			if _, err := c.Write(auth); err != nil {
				return fail(err)
			}
			if _, err := io.ReadFull(c, r[:2]); err != nil {
				return fail(err)
			}
			if r[1] != 0 {
				return fail(fmt.Errorf("user %q refused", user))
			}
			markStep(ctx, stepAuth)
		}
		req := append([]byte{5, 1, 0, 1}, ip...)
		req = binary.BigEndian.AppendUint16(req, uint16(pn))
		if _, err := c.Write(req); err != nil {
			return fail(err)
		}
		// The reply's bound address is IPv4 (10 bytes) from both proxies
		// measured; a longer one is read to its end.
		if _, err := io.ReadFull(c, r[:4]); err != nil {
			return fail(err)
		}
		if r[1] != 0 {
			return fail(fmt.Errorf("connect %s: reply %d", target, r[1]))
		}
		rest := 6
		switch r[3] {
		case 4:
			rest = 18
		case 3:
			if _, err := io.ReadFull(c, r[:1]); err != nil {
				return fail(err)
			}
			rest = int(r[0]) + 2
		}
		if _, err := io.CopyN(io.Discard, c, int64(rest)); err != nil {
			return fail(err)
		}
		markStep(ctx, stepReply)
		_ = c.SetDeadline(time.Time{})
		return c, nil
	}
}

// startTunnelPaths starts a dev chain and a testnet of two providers, in
// DE and US, and one requester; makes a 600 s deal with each; and returns
// the paths through the requester's SOCKS5 proxy to each, routed by proxy
// username. Both deals are paid by vouchers as the bytes flow, but DE's
// bytes cost next to nothing (1000 wei per GB, as in the node's tunnel
// tests), so only the transport limits it, while US charges the testnet's
// default 0.01 token per GB, so its stream is served only as fast as
// vouchers keep up.
func startTunnelPaths(ctx context.Context, b *testing.B) (transport, paid *tunnelPath) {
	dc, err := chain.StartDevChain(ctx, chain.DefaultDevChainConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dc.Close() })
	tn, err := testnet.Start(ctx, testnet.Config{
		Dir: b.TempDir(), Providers: 2, Requesters: 1, Countries: []string{"DE", "US"}, DevChain: dc,
		Offer: func(i int, cc string) sdk.OfferParams {
			o := testnet.DefaultOffer(i, cc)
			o.Bandwidth = orderbook.MaxBandwidth
			if cc == "DE" {
				o.PricePerGB = "1000"
			}
			return o
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := tn.Close(); err != nil {
			b.Error(err)
		}
	})
	req := tn.Members[2].Node
	if err := testnet.Await(ctx, func() error {
		if n := req.Book().Count(); n < 2 {
			return fmt.Errorf("%d offers at the requester", n)
		}
		// A dev chain ahead of the wall clock would hold the deals back.
		_, ht, err := req.Escrow().Head(ctx)
		if err != nil {
			return err
		}
		if ht > uint64(time.Now().Unix()) {
			return errors.New("chain ahead of the clock")
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	socks := req.SOCKSAddr().String()
	path := func(prov *testnet.Member, name string) *tunnelPath {
		r, err := req.CreateRequest(ctx, sdk.RequestParams{
			Country: prov.Country, IPType: "any", IPs: 1, Duration: 600,
			MaxPricePerHour: "10000000000000000", MaxPricePerGB: "100000000000000000",
		})
		if err != nil {
			b.Fatal(err)
		}
		var dealID common.Hash
		if err := testnet.Await(ctx, func() error {
			ds, err := req.Deals(ctx)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.RequestID == r.ID().Hex() && d.Status == "active" {
					dealID = common.HexToHash(d.ID)
					return nil
				}
			}
			return fmt.Errorf("no active deal for %s", r.ID().Hex())
		}); err != nil {
			b.Fatal(err)
		}
		return &tunnelPath{
			name: name, cpu: selfCPU, inProcess: true,
			dial: socksDialer(socks, "country-"+prov.Country, req.ProxyPassword()),
			diagnose: func(ctx context.Context) string {
				return describeDeal(ctx, prov.Node, dealID)
			},
		}
	}
	return path(tn.Members[0], "tunnel"), path(tn.Members[1], "tunnel-paid")
}

// describeDeal is the provider's view of the deal: whether it still
// serves it, what it metered and what the latest voucher pays for.
func describeDeal(ctx context.Context, prov *node.Node, id common.Hash) string {
	d, err := prov.Deal(ctx, id)
	if err != nil {
		return fmt.Sprintf("provider's deal %s: %v", id.Hex()[:10], err)
	}
	_, serving := prov.DealServing(id)
	s := fmt.Sprintf("provider's deal %s: status %s", id.Hex()[:10], d.Status)
	if d.Reason != "" {
		s += ", reason " + d.Reason
	}
	s += fmt.Sprintf(", serving %t, metered %d bytes", serving, d.Bytes)
	if v := d.Voucher; v != nil {
		s += fmt.Sprintf(", latest voucher pays %s for %d bytes", v.Amount, v.Bytes)
	}
	return s
}

// startSSHPath runs a private sshd on 127.0.0.1 and `ssh -D` to it, and
// returns the path through ssh's SOCKS5 port, or a skipped path saying
// why OpenSSH could not run. If via is set, ssh connects to via(sshd's
// address) instead (a delay link in front of sshd). The path's cpu is
// that of the ssh client and sshd, their children included.
func startSSHPath(ctx context.Context, b *testing.B, via func(sshdAddr string) string) *tunnelPath {
	p := &tunnelPath{name: "ssh -D"}
	sshBin, sshdBin, err := openSSH(ctx)
	if err != nil {
		p.skipped = err.Error()
		b.Logf("ssh -D skipped: %v", err)
		return p
	}
	dir := b.TempDir()
	for _, k := range []string{"host_key", "client_key"} {
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ipsx-bench", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			b.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		b.Fatal(err)
	}
	// sshd's privilege-separation directory, made by the package's service
	// unit on boot, which a container never runs.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		b.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	sshdPort := freePort(b)
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
AuthorizedKeysFile %s
PidFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers %s
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
LogLevel ERROR
`, sshdPort, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"), u.Username)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	sshdAddr := fmt.Sprintf("127.0.0.1:%d", sshdPort)
	sshdPid := startProcess(ctx, b, "sshd", sshdAddr, sshdBin, "-f", cfgPath, "-D", "-e")
	dest := sshdAddr
	if via != nil {
		dest = via(sshdAddr)
	}
	destHost, destPort, err := net.SplitHostPort(dest)
	if err != nil {
		b.Fatal(err)
	}

	socksPort := freePort(b)
	socksAddr := fmt.Sprintf("127.0.0.1:%d", socksPort)
	sshPid := startProcess(ctx, b, "ssh -D", socksAddr, sshBin, "-F", "/dev/null", "-N", "-D", socksAddr,
		"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-i", filepath.Join(dir, "client_key"), "-p", destPort, u.Username+"@"+destHost)
	p.dial = socksDialer(socksAddr, "", "")
	p.cpu = func() (time.Duration, error) { return treeCPU(sshdPid, sshPid) }
	return p
}

// openSSH finds ssh and sshd, installing Debian's packages if one is
// missing. On a machine that runs services, installing openssh-server
// also enables the system's sshd; in a container, policy-rc.d stops it.
func openSSH(ctx context.Context) (ssh, sshd string, err error) {
	find := func() error {
		if ssh, err = exec.LookPath("ssh"); err != nil {
			return err
		}
		if sshd, err = exec.LookPath("sshd"); err != nil {
			if _, serr := os.Stat("/usr/sbin/sshd"); serr != nil {
				return err
			}
			sshd = "/usr/sbin/sshd"
		}
		if _, err := exec.LookPath("ssh-keygen"); err != nil {
			return err
		}
		// sshd re-executes itself and wants an absolute path for it.
		sshd, err = filepath.Abs(sshd)
		return err
	}
	if find() == nil {
		return ssh, sshd, nil
	}
	if os.Geteuid() != 0 {
		return "", "", errors.New("OpenSSH is not installed and installing it needs root (apt-get install openssh-client openssh-server)")
	}
	if _, lerr := exec.LookPath("apt-get"); lerr != nil {
		return "", "", errors.New("OpenSSH is not installed and there is no apt-get to install it")
	}
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "openssh-client", "openssh-server")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	fmt.Fprintln(os.Stderr, "installing OpenSSH for the ssh -D comparison: apt-get install openssh-client openssh-server")
	out, ierr := install()
	if ierr != nil {
		// The package lists may be missing or stale.
		if uout, uerr := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			return "", "", fmt.Errorf("apt-get update: %v: %s", uerr, bytes.TrimSpace(uout))
		}
		out, ierr = install()
	}
	if ierr != nil {
		return "", "", fmt.Errorf("apt-get install openssh-client openssh-server: %v: %s", ierr, bytes.TrimSpace(out))
	}
	if err := find(); err != nil {
		return "", "", fmt.Errorf("OpenSSH installed but not found: %w", err)
	}
	return ssh, sshd, nil
}

// freePort returns a loopback TCP port free a moment ago, for a program
// that takes its port on the command line.
func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProcess runs a program in its own process group, killed with this
// process if it dies, waits until it accepts on addr, stops the whole
// group (sshd forks a process per connection) at cleanup, and returns its
// pid.
func startProcess(ctx context.Context, b *testing.B, name, addr, bin string, args ...string) int {
	var stderr bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(bin, args...)
	cmd.Stdout = io.Discard
	cmd.Stderr = &lockedWriter{mu: &mu, w: &stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	b.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Children of the group that outlived the leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := testnet.Await(wctx, func() error {
		select {
		case err := <-exited:
			exited <- err
			cancel() // no use waiting
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("exited: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("%s not accepting on %s: %w", name, addr, err)
		}
		return c.Close()
	})
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return pgid
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logTable shows a benchmark's table. The testing package keeps only the
// first 10 lines of what a benchmark logs, so a longer table goes to
// stdout instead, indented as b.Log would, just before the bench: line.
func logTable(b *testing.B, tab string) {
	if strings.Count(tab, "\n") < 9 {
		b.Log("\n" + tab)
		return
	}
	fmt.Printf("--- TABLE: %s\n", b.Name())
	for _, l := range strings.SplitAfter(strings.TrimSuffix(tab, "\n"), "\n") {
		fmt.Print("    " + l)
	}
	fmt.Println()
}

func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
