package orderbook

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// BenchmarkVerifyVsEcrecover runs the full validity function (decoding
// excluded; fields, domain, times, EIP-712 digest, signature recovery) and,
// in the same run, raw go-ethereum Ecrecover on one core, and reports both
// rates and their ratio: how much of a core's signature budget the rest of
// validation costs. ratio is by the thread's CPU time, ratio_wall by the
// clock.
func BenchmarkVerifyVsEcrecover(b *testing.B) {
	k := testKey(b, 3)
	orders := make([]*Order, 256)
	for i := range orders {
		o := newOffer(testNow)
		o.Nonce = uint64(i)
		orders[i] = signed(b, o, k)
	}
	p := DefaultParams(testDomain)
	// Raw Ecrecover gets the same digests and signatures, precomputed.
	digests := make([][]byte, len(orders))
	sigs := make([][]byte, len(orders))
	for i, o := range orders {
		id := o.ID()
		digests[i] = id[:]
		sigs[i] = append([]byte(nil), o.Signature...)
		sigs[i][64] -= 27
	}

	// The two loops run in alternating chunks on one locked OS thread and
	// are timed by that thread's CPU time as well as by the clock: on a
	// shared machine, other processes take the core away at random, and
	// the clock alone swung the ratio by ±15% between runs.
	const chunk = 64
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var verify, raw, verifyCPU, rawCPU time.Duration
	var nVerify, nRaw int
	start, cpu := time.Now(), threadCPU()
	// lap charges the time since the last lap to arm (0 verify, 1 raw).
	lap := func(arm int) {
		now, c := time.Now(), threadCPU()
		if arm == 0 {
			verify, verifyCPU = verify+now.Sub(start), verifyCPU+c-cpu
		} else {
			raw, rawCPU = raw+now.Sub(start), rawCPU+c-cpu
		}
		start, cpu = now, c
	}
	i := 0
	for b.Loop() {
		arm, j := (i/chunk)%2, (i/2)%len(orders)
		if arm == 0 {
			if err := Validate(orders[j], 0, testNow, p, nil, nil); err != nil {
				b.Fatal(err)
			}
			nVerify++
		} else {
			if _, err := crypto.Ecrecover(digests[j], sigs[j]); err != nil {
				b.Fatal(err)
			}
			nRaw++
		}
		i++
		if i%chunk == 0 {
			lap(arm)
		}
	}
	lap((i / chunk) % 2)
	b.StopTimer()
	vps := float64(nVerify) / verify.Seconds()
	rps := float64(nRaw) / raw.Seconds()
	ratio := (rawCPU.Seconds() / float64(nRaw)) / (verifyCPU.Seconds() / float64(nVerify))
	b.ReportMetric(vps, "verified/s/core")
	b.ReportMetric(rps, "ecrecover/s/core")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(vps/rps, "ratio_wall")
	benchLine(b, "verify", "verified_per_s", vps, "ecrecover_per_s", rps,
		"verify_cpu_us", verifyCPU.Seconds()*1e6/float64(nVerify), "ecrecover_cpu_us", rawCPU.Seconds()*1e6/float64(nRaw),
		"ratio", ratio, "ratio_wall", vps/rps)
}

// benchLine prints the benchmark's one summary line, "bench: NAME k=v ...",
// when the benchmark function returns. The function must iterate with
// b.Loop, which runs it once, so that the line is printed once.
func benchLine(b *testing.B, name string, kv ...any) {
	b.Helper()
	line := "bench: " + name
	for i := 0; i+1 < len(kv); i += 2 {
		line += fmt.Sprintf(" %v=%s", kv[i], benchValue(kv[i+1]))
	}
	b.Cleanup(func() { fmt.Println(line) })
}

func benchValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'g', 4, 64)
	}
	return fmt.Sprint(v)
}
