package matching

import (
	"fmt"
	"math/big"
	"math/rand"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// shard100k is one country's shard of 100,000 live orders: 50,000 offers
// and 50,000 requests from 20,000 makers. Offers: 60% residential, 25%
// mobile, 15% datacenter; 1-8 IPs (datacenter up to 64); 16 regions of 4
// cities each, 40 ASNs; prices spread over a 10x range. Requests: 40% of any
// type, 30% name a region, 10% a city, 10% an ASN, 20% need UDP; 1-4 IPs;
// maximum prices over the same range, so that about half the book can
// trade.
func shard100k() []*orderbook.Order {
	rng := rand.New(rand.NewSource(42))
	unix := uint64(now.Unix())
	types := []orderbook.IPType{1, 1, 1, 1, 1, 1, 2, 2, 2, 3} // ~60/25/15
	durations := []uint32{60, 600, 3600, 86400, 7 * 86400}
	orders := make([]*orderbook.Order, 0, 100_000)
	loc := func() orderbook.Location {
		r := rng.Intn(16)
		return orderbook.Location{
			Country: "DE",
			Region:  fmt.Sprintf("R%02d", r),
			City:    fmt.Sprintf("R%02d-C%d", r, rng.Intn(4)),
			ASN:     uint32(64500 + rng.Intn(40)),
		}
	}
	for i := range 100_000 {
		o := &orderbook.Order{
			Maker:     maker(rng.Intn(20_000)),
			Nonce:     uint64(i),
			Created:   unix - uint64(rng.Intn(3600)),
			Expires:   unix + 60 + uint64(rng.Intn(3600)),
			Location:  loc(),
			Protocols: orderbook.ProtoTCP,
		}
		if i%2 == 0 {
			o.Kind = orderbook.KindOffer
			o.IPType = types[rng.Intn(len(types))]
			o.IPs = uint32(1 + rng.Intn(8))
			if o.IPType == orderbook.IPDatacenter {
				o.IPs = uint32(1 + rng.Intn(64))
			}
			if rng.Intn(3) == 0 {
				o.Protocols |= orderbook.ProtoUDP
			}
			o.PricePerHour = big.NewInt(int64(100 + rng.Intn(900)))
			o.PricePerGB = big.NewInt(int64(rng.Intn(500)))
			lo := rng.Intn(3)
			o.MinDuration = durations[lo]
			o.MaxDuration = durations[lo+rng.Intn(len(durations)-lo)]
			o.Bandwidth = uint32(10 * (1 + rng.Intn(100)))
		} else {
			o.Kind = orderbook.KindRequest
			o.IPType = orderbook.IPAny
			if rng.Intn(10) >= 4 {
				o.IPType = types[rng.Intn(len(types))]
			}
			l := o.Location
			o.Location = orderbook.Location{Country: "DE"}
			switch x := rng.Intn(10); {
			case x < 1:
				o.Location.Region, o.Location.City = l.Region, l.City
			case x < 3:
				o.Location.Region = l.Region
			case x < 4:
				o.Location.ASN = l.ASN
			}
			if rng.Intn(5) == 0 {
				o.Protocols |= orderbook.ProtoUDP
			}
			o.IPs = uint32(1 + rng.Intn(4))
			o.PricePerHour = big.NewInt(int64(100 + rng.Intn(900)))
			o.PricePerGB = big.NewInt(int64(rng.Intn(500)))
			o.Duration = durations[rng.Intn(len(durations))]
			o.Bandwidth = uint32(10 * rng.Intn(50))
		}
		orders = append(orders, o)
	}
	return orders
}

// The bench lines give ms, by the clock, and cpu_ms, the process's CPU
// time, which the load of other processes moves less.

// BenchmarkMatch100k is the whole job from a slice of orders: preparing the
// snapshot (ids, dedupe, sorting) and matching it.
func BenchmarkMatch100k(b *testing.B) {
	orders := shard100k()
	benchFromScratch(b, "match100k", len(orders), func() *Snapshot { return NewSnapshot(orders) })
}

// BenchmarkMatch100kIDs is BenchmarkMatch100k for a caller that holds the
// orders' ids already and hands them in (NewSnapshotWithIDs): the book
// keys its orders by id, so it has them without hashing. The ids are
// computed before the clock starts; everything else is timed as in
// BenchmarkMatch100k.
func BenchmarkMatch100kIDs(b *testing.B) {
	orders := shard100k()
	ids := make([]common.Hash, len(orders))
	for i, o := range orders {
		ids[i] = o.ID()
	}
	benchFromScratch(b, "match100k_ids", len(orders), func() *Snapshot { return NewSnapshotWithIDs(orders, ids) })
}

// benchFromScratch times building a snapshot of n orders with build and
// matching it, and prints the bench line name.
func benchFromScratch(b *testing.B, name string, n int, build func() *Snapshot) {
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	var fills, runs int
	for b.Loop() {
		fs, err := Match(build(), now, Params{})
		if err != nil {
			b.Fatal(err)
		}
		fills = len(fs)
		runs++
	}
	el, cpuMS := time.Since(start), (processCPU()-cpu).Seconds()*1e3/float64(runs)
	b.ReportMetric(float64(n*runs)/el.Seconds(), "orders/s")
	b.ReportMetric(float64(fills), "fills")
	benchLine(name, "orders", n, "ms", el.Seconds()*1e3/float64(runs), "cpu_ms", cpuMS,
		"orders_per_s", float64(n*runs)/el.Seconds(), "fills", fills)
}

// BenchmarkMatch100kPrepared is Match alone on a prepared snapshot, as when
// a node matches one snapshot at successive times.
func BenchmarkMatch100kPrepared(b *testing.B) {
	s := NewSnapshot(shard100k())
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	n := 0
	for b.Loop() {
		if _, err := Match(s, now, Params{}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	el, cpuMS := time.Since(start), (processCPU()-cpu).Seconds()*1e3/float64(n)
	b.ReportMetric(float64(s.Len()*n)/el.Seconds(), "orders/s")
	benchLine("match100k_prepared", "orders", s.Len(), "ms", el.Seconds()*1e3/float64(n), "cpu_ms", cpuMS,
		"orders_per_s", float64(s.Len()*n)/el.Seconds())
}

// benchLine prints a benchmark's summary line, "bench: NAME k=v ...". The
// benchmarks iterate with b.Loop, which runs their function once, so the
// line is printed once.
func benchLine(name string, kv ...any) {
	line := "bench: " + name
	for i := 0; i+1 < len(kv); i += 2 {
		v := fmt.Sprint(kv[i+1])
		if f, ok := kv[i+1].(float64); ok {
			v = strconv.FormatFloat(f, 'g', 4, 64)
		}
		line += fmt.Sprintf(" %v=%s", kv[i], v)
	}
	fmt.Println(line)
}
