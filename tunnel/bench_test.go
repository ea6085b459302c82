package tunnel

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkTunnelThroughput measures one connection's download throughput
// (MB/s) directly over loopback TCP and through the tunnel: OpenStream →
// loopback TCP standing in for the libp2p stream → Exit.ServeStream with
// policy and meter → loopback TCP to the source. It is the starting point
// for the bench (which adds libp2p transports and ssh -D).
func BenchmarkTunnelThroughput(b *testing.B) {
	const chunk = 1 << 20
	src := listenRecording(b, "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	mbps := map[string]float64{} // by sub-benchmark, MB/s (10^6 bytes)
	run := func(b *testing.B, c net.Conn) {
		defer c.Close()
		b.SetBytes(chunk)
		start, n := time.Now(), 0
		for b.Loop() {
			if _, err := io.CopyN(io.Discard, c, chunk); err != nil {
				b.Fatal(err)
			}
			n++
		}
		mbps[b.Name()] = float64(n*chunk) / time.Since(start).Seconds() / 1e6
	}
	b.Run("direct", func(b *testing.B) {
		c, err := net.Dial("tcp", src.addr())
		if err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
	b.Run("tunnel", func(b *testing.B) {
		pr := startProvider(b, loopbackPolicy(b), NewMeter(testDeal, MeterConfig{}))
		c, err := pr.open(b.Context(), testDeal, src.addr(), "")
		if err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
	direct, tunnel := mbps[b.Name()+"/direct"], mbps[b.Name()+"/tunnel"]
	if direct > 0 && tunnel > 0 {
		fmt.Printf("bench: tunnel_throughput direct_mbps=%.0f tunnel_mbps=%.0f ratio_direct=%.3f\n", direct, tunnel, tunnel/direct)
	}
}
