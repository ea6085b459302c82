package testnet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// BenchmarkPropagation30 measures how long an order takes from the API call
// that publishes it to its arrival in the book of every other node, across
// a 30-node in-process mesh on one shard, and reports the median and the
// 99th percentile over all (order, node) pairs, with the line
//
//	bench: propagation30 nodes=… orders=… p50_ms=… p99_ms=… max_ms=… start_s=… rss_mib=…
//
// start_s is how long the testnet took to start and mesh, rss_mib this
// process's peak resident memory (Linux; left out elsewhere). Run it with
// -benchtime=1x: one iteration is a whole experiment.
func BenchmarkPropagation30(b *testing.B) { benchPropagation(b, 30, 5*time.Minute) }

// BenchmarkPropagation100 is BenchmarkPropagation30 on a 100-node mesh,
// all in this process (a few minutes on 2 cores), with the line
//
//	bench: propagation100 nodes=… orders=… p50_ms=… p99_ms=… max_ms=… start_s=… rss_mib=…
func BenchmarkPropagation100(b *testing.B) { benchPropagation(b, 100, 12*time.Minute) }

// benchPropagation is BenchmarkPropagation30 with nodes nodes, all of it
// within timeout.
func benchPropagation(b *testing.B, nodes int, timeout time.Duration) {
	const orders = 100
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t0 := time.Now()
	tn, err := testnet.Start(ctx, testnet.Config{Dir: b.TempDir(), Nodes: nodes, Countries: []string{"DE"}})
	if err != nil {
		b.Fatal(err)
	}
	defer tn.Close()
	if err := tn.AwaitMesh(ctx, 6); err != nil {
		b.Fatal(err)
	}
	started := time.Since(t0)
	var (
		mu       sync.Mutex
		arrivals = map[string][]time.Time{}
		wg       sync.WaitGroup
	)
	for _, m := range tn.Members {
		ch, stop := m.Node.Subscribe()
		defer stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				if ev.Type != "order.added" {
					continue
				}
				now := time.Now()
				var oe struct {
					Order struct {
						ID string `json:"id"`
					} `json:"order"`
				}
				if json.Unmarshal(ev.Data, &oe) == nil {
					mu.Lock()
					arrivals[oe.Order.ID] = append(arrivals[oe.Order.ID], now)
					mu.Unlock()
				}
			}
		}()
	}
	defer wg.Wait()

	for b.Loop() {
		sent := map[string]time.Time{}
		// Space the orders out a little so each is measured on a quiet
		// mesh rather than queued behind the previous ones.
		pace := time.NewTicker(5 * time.Millisecond)
		for i := 0; i < orders; i++ {
			<-pace.C
			src := tn.Members[i%nodes].Node
			start := time.Now()
			o, err := src.CreateOffer(ctx, sdk.OfferParams{
				Country: "DE", IPType: "residential", IPs: uint32(1 + i%50),
				PricePerHour: "1000", PricePerGB: "10", MinDuration: 60, MaxDuration: 3600, Bandwidth: 10,
			})
			if err != nil {
				b.Fatal(err)
			}
			sent[o.ID().Hex()] = start
		}
		pace.Stop()
		if err := testnet.Await(ctx, func() error {
			mu.Lock()
			defer mu.Unlock()
			for id := range sent {
				if n := len(arrivals[id]); n < nodes {
					return fmt.Errorf("order %s reached %d of %d nodes", id, n, nodes)
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		var lat []time.Duration
		mu.Lock()
		for id, t0 := range sent {
			ts := append([]time.Time(nil), arrivals[id]...)
			sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
			for _, t := range ts[1:] { // the first arrival is the publisher's own
				lat = append(lat, t.Sub(t0))
			}
			delete(arrivals, id)
		}
		mu.Unlock()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50 := lat[len(lat)/2]
		p99 := lat[len(lat)*99/100]
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		line := fmt.Sprintf("bench: propagation%d nodes=%d orders=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f start_s=%.1f",
			nodes, nodes, orders, msOf(p50), msOf(p99), msOf(lat[len(lat)-1]), started.Seconds())
		rss := "unknown"
		if kib, err := peakRSSKiB(); err == nil {
			line += fmt.Sprintf(" rss_mib=%d", kib>>10)
			rss = fmt.Sprintf("%d MiB", kib>>10)
		}
		b.Logf("%d-node mesh (started and meshed in %s, peak RSS %s): %d orders × %d receivers: p50 %s, p99 %s, max %s",
			nodes, started.Round(100*time.Millisecond), rss, orders, nodes-1, p50, p99, lat[len(lat)-1])
		fmt.Println(line)
	}
	b.StopTimer()
	if err := tn.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDealSetup measures, on an in-process testnet with the node's
// default deal settings (a 1 s deal tick), the time from a request placed
// through the API to the requester's deal being active: matching,
// proposal, accept, the escrow open on the dev chain, the provider seeing
// it, the first voucher. It reports the median and the 99th percentile over
// the deals of a run (-benchtime=1x), with the line
//
//	bench: deal_setup deals=… p50_ms=… p99_ms=…
func BenchmarkDealSetup(b *testing.B) {
	const deals = 12
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dc, err := chain.StartDevChain(ctx, chain.DefaultDevChainConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	tn, err := testnet.Start(ctx, testnet.Config{
		Dir: b.TempDir(), Providers: 2, Requesters: 1, Countries: []string{"DE"}, DevChain: dc,
		Offer: func(i int, cc string) sdk.OfferParams {
			o := testnet.DefaultOffer(i, cc)
			o.IPs = 100
			return o
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer tn.Close()
	req := tn.Members[2].Node
	if err := testnet.Await(ctx, func() error {
		if n := req.Book().Count(); n < 2 {
			return fmt.Errorf("requester sees %d offers", n)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var lat []time.Duration
		for i := 0; i < deals; i++ {
			// Let the dev chain's clock fall back in step with the wall
			// clock first: a chain ahead of it would make the deal wait.
			if err := testnet.Await(ctx, func() error {
				_, ht, err := req.Escrow().Head(ctx)
				if err != nil {
					return err
				}
				if ht > uint64(time.Now().Unix()) {
					return fmt.Errorf("chain ahead")
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			r, err := req.CreateRequest(ctx, sdk.RequestParams{
				Country: "DE", IPType: "any", IPs: 1, Duration: 60,
				MaxPricePerHour: "10000000000000000", MaxPricePerGB: "100000000000000000",
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := testnet.Await(ctx, func() error {
				ds, err := req.Deals(ctx)
				if err != nil {
					return err
				}
				for _, d := range ds {
					if d.RequestID == r.ID().Hex() && d.Status == "active" {
						return nil
					}
				}
				return fmt.Errorf("no active deal for %s", r.ID().Hex())
			}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50, p99 := lat[len(lat)/2], lat[(len(lat)*99)/100]
		b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
		b.Logf("deal set-up (request placed to deal active), %d deals: p50 %s, p99 %s", deals, p50, p99)
		fmt.Printf("bench: deal_setup deals=%d p50_ms=%.1f p99_ms=%.1f\n", deals, msOf(p50), msOf(p99))
	}
}

// peakRSSKiB is this process's peak resident set size (VmHWM in
// /proc/self/status), in KiB; an error where there is no /proc.
func peakRSSKiB() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// msOf is d in milliseconds, for bench lines.
func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
