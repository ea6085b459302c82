package node

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestTCPFirstRanker(t *testing.T) {
	const relay = "/ip4/9.9.9.9/tcp/4001/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
	tests := []struct {
		name  string
		addrs []string
		first string // the address dialled at once
		later []string
	}{
		{"tcp before quic",
			[]string{"/ip4/1.2.3.4/udp/4001/quic-v1", "/ip4/1.2.3.4/tcp/4001"},
			"/ip4/1.2.3.4/tcp/4001", []string{"/ip4/1.2.3.4/udp/4001/quic-v1"}},
		{"private tcp before quic",
			[]string{"/ip4/127.0.0.5/udp/4001/quic-v1", "/ip4/127.0.0.5/tcp/4001"},
			"/ip4/127.0.0.5/tcp/4001", []string{"/ip4/127.0.0.5/udp/4001/quic-v1"}},
		{"relayed tcp is not tcp first",
			[]string{relay + "/p2p-circuit", "/ip4/1.2.3.4/udp/4001/quic-v1"},
			"/ip4/1.2.3.4/udp/4001/quic-v1", []string{relay + "/p2p-circuit"}},
		{"quic alone",
			[]string{"/ip4/1.2.3.4/udp/4001/quic-v1"},
			"/ip4/1.2.3.4/udp/4001/quic-v1", nil},
		{"websocket is not tcp first",
			[]string{"/ip4/1.2.3.4/tcp/443/ws", "/ip4/1.2.3.4/udp/4001/quic-v1"},
			"/ip4/1.2.3.4/udp/4001/quic-v1", []string{"/ip4/1.2.3.4/tcp/443/ws"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []ma.Multiaddr
			for _, s := range tt.addrs {
				addrs = append(addrs, ma.StringCast(s))
			}
			got := tcpFirstRanker(addrs)
			if len(got) != len(addrs) {
				t.Fatalf("ranked %d of %d addresses: %v", len(got), len(addrs), got)
			}
			delay := map[string]int64{}
			for _, d := range got {
				delay[d.Addr.String()] = int64(d.Delay)
			}
			if delay[tt.first] != 0 {
				t.Errorf("%s dialled after %d ns, want at once (%v)", tt.first, delay[tt.first], got)
			}
			for _, l := range tt.later {
				if delay[l] <= 0 {
					t.Errorf("%s dialled at once with %s, want after it (%v)", l, tt.first, got)
				}
			}
		})
	}
	if !isDirectTCP(ma.StringCast("/dns4/example.org/tcp/4001")) || isDirectTCP(ma.StringCast(relay+"/p2p-circuit")) {
		t.Error("isDirectTCP: a DNS TCP address is direct, a relayed one is not")
	}
}
