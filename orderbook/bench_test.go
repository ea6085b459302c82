package orderbook

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// BenchmarkVerifyVsEcrecover runs the full validity function (decoding
// excluded; fields, domain, times, EIP-712 digest, signature recovery) and,
// in the same run, raw go-ethereum Ecrecover on one core, and reports both
// rates and their ratio: how much of a core's signature budget the rest of
// validation costs.
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

	// The two loops run in alternating chunks so that load from anything
	// else on the machine falls on both alike.
	const chunk = 64
	var verify, raw time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := Validate(orders[(done+i)%len(orders)], 0, testNow, p, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		verify += time.Since(start)
		start = time.Now()
		for i := 0; i < n; i++ {
			j := (done + i) % len(orders)
			if _, err := crypto.Ecrecover(digests[j], sigs[j]); err != nil {
				b.Fatal(err)
			}
		}
		raw += time.Since(start)
	}
	b.StopTimer()
	vps := float64(b.N) / verify.Seconds()
	rps := float64(b.N) / raw.Seconds()
	b.ReportMetric(vps, "verified/s/core")
	b.ReportMetric(rps, "ecrecover/s/core")
	b.ReportMetric(vps/rps, "ratio")
}
