//go:build linux

package testnet_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchFlows is how many concurrent downloads BenchmarkTunnel200Flows
// runs on each path. go-libp2p's QUIC takes at most 256 streams at once
// per connection, and the requester at most 224 flows per provider.
const benchFlows = 200

// benchFlowsEnv overrides benchFlows (the line keeps its name and says
// flows=).
const benchFlowsEnv = "IPSX_BENCH_FLOWS"

// flowsResult is one path's run of benchFlows concurrent downloads.
type flowsResult struct {
	mbps    float64   // aggregate MB/s over the window
	perFlow []float64 // MB/s of each flow that lasted the window, sorted
	fails   int
}

// BenchmarkTunnel200Flows measures the aggregate download throughput of
// 200 concurrent connections, each an endless download from the loopback
// byte source read for IPSX_BENCH_SECONDS (10 s), over the same paths as
// BenchmarkTunnelVsSSH: direct TCP; the tunnel, one deal (the cheap
// one: the transport limits it, not vouchers), 200 SOCKS5 connections to
// the requester's proxy and as many streams on its one connection to the
// provider; and `ssh -D`, 200 channels on one ssh connection. It prints
// a table with each path's per-flow spread and
//
//	bench: tunnel_200flows tunnel_mbps=… ssh_mbps=… direct_mbps=… ratio_ssh=… ratio_direct=… fails=…
//
// where MB/s is every byte the 200 flows received between the start of
// their dials and the common end of the window, divided by the window,
// and fails counts flows refused or cut before the end.
func BenchmarkTunnel200Flows(b *testing.B) {
	dur := benchDuration(b)
	flows := benchFlows
	if s := os.Getenv(benchFlowsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number of flows", benchFlowsEnv, s)
		}
		flows = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	target := startByteSource(b)
	direct := directPath()
	tunnel, _ := startTunnelPaths(ctx, b)
	ssh := startSSHPath(ctx, b, nil)
	paths := []*tunnelPath{direct, tunnel, ssh}

	res := map[*tunnelPath]flowsResult{}
	for b.Loop() {
		for _, p := range paths {
			if p.skipped != "" {
				continue
			}
			res[p] = runFlows(ctx, p, target, flows, dur)
		}
	}
	b.StopTimer()
	diag := tunnel.diagnose(ctx)

	var tab strings.Builder
	fmt.Fprintf(&tab, "%d concurrent downloads for %s, aggregate MB/s; per flow, MB/s of those that lasted:\n", flows, dur)
	fmt.Fprintf(&tab, "  %-8s %9s %9s %9s   %8s %8s %8s   %s\n", "path", "MB/s", "x direct", "x ssh", "min", "median", "max", "failed")
	line := fmt.Sprintf("bench: tunnel_200flows flows=%d", flows)
	add := func(k string, v float64) { line += fmt.Sprintf(" %s=%s", k, strconv.FormatFloat(v, 'f', 3, 64)) }
	keys := map[*tunnelPath]string{direct: "direct", tunnel: "tunnel", ssh: "ssh"}
	fails := 0
	for _, p := range paths {
		if p.skipped != "" {
			fmt.Fprintf(&tab, "  %-8s skipped: %s\n", p.name, p.skipped)
			continue
		}
		r := res[p]
		fails += r.fails
		ratio := func(q *tunnelPath) string {
			if rq, ok := res[q]; ok && rq.mbps > 0 {
				return fmt.Sprintf("%.3f", r.mbps/rq.mbps)
			}
			return "-"
		}
		lo, mid, hi := 0.0, 0.0, 0.0
		if n := len(r.perFlow); n > 0 {
			lo, mid, hi = r.perFlow[0], r.perFlow[n/2], r.perFlow[n-1]
		}
		failed := "-"
		if r.fails > 0 {
			failed = fmt.Sprintf("%d of %d flows; the first: %v", r.fails, flows, p.firstErr)
			b.Errorf("%s: %d of %d flows failed; the first: %v", p.name, r.fails, flows, p.firstErr)
		}
		fmt.Fprintf(&tab, "  %-8s %9.1f %9s %9s   %8.2f %8.2f %8.2f   %s\n", p.name, r.mbps, ratio(direct), ratio(ssh), lo, mid, hi, failed)
		if r.mbps > 0 {
			add(keys[p]+"_mbps", r.mbps)
			b.ReportMetric(r.mbps, keys[p]+"-MB/s")
		}
	}
	if t, s := res[tunnel], res[ssh]; t.mbps > 0 && s.mbps > 0 {
		add("ratio_ssh", t.mbps/s.mbps)
	}
	if t, d := res[tunnel], res[direct]; t.mbps > 0 && d.mbps > 0 {
		add("ratio_direct", t.mbps/d.mbps)
	}
	fmt.Fprintf(&tab, "  tunnel at the end: %s\n", diag)
	logTable(b, tab.String())
	fmt.Println(line + fmt.Sprintf(" fails=%d", fails))
}

// runFlows runs n concurrent endless downloads through p, all read until
// the same end, dur after they start dialling.
func runFlows(ctx context.Context, p *tunnelPath, target string, n int, dur time.Duration) flowsResult {
	start := time.Now()
	end := start.Add(dur)
	var (
		mu  sync.Mutex
		r   flowsResult
		sum int64
		wg  sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		r.fails++
		p.fail(ctx, err)
	}
	for i := range n {
		wg.Go(func() {
			dctx, cancel := context.WithDeadline(ctx, end)
			c, err := p.dial(dctx, target)
			cancel()
			if err != nil {
				fail(fmt.Errorf("flow %d: refused: %w", i, err))
				return
			}
			defer c.Close()
			t0 := time.Now()
			got, err := readUntil(c, end, make([]byte, 32<<10))
			mu.Lock()
			sum += got
			mu.Unlock()
			if err != nil {
				fail(fmt.Errorf("flow %d: %w", i, err))
				return
			}
			mu.Lock()
			r.perFlow = append(r.perFlow, float64(got)/end.Sub(t0).Seconds()/1e6)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(r.perFlow)
	r.mbps = float64(sum) / dur.Seconds() / 1e6
	return r
}
