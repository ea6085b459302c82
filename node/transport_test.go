package node_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/testnet"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
)

// TestQUICTransport: a node answers over QUIC alone. The client is a
// libp2p host with no transport but QUIC (a node would prefer TCP).
func TestQUICTransport(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 1})
	b := tn.Members[0].Node
	var quic []ma.Multiaddr
	for _, addr := range b.Host().Addrs() {
		if _, err := addr.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quic = append(quic, addr)
		}
	}
	if len(quic) == 0 {
		t.Fatalf("node listens on no QUIC address: %v", b.Host().Addrs())
	}
	a, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(libp2pquic.NewTransport))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.PeerID(), Addrs: quic}); err != nil {
		t.Fatal(err)
	}
	b.Host().SetStreamHandler("/ipsx/test-echo/1.0.0", func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
	s, err := a.NewStream(ctx, b.PeerID(), "/ipsx/test-echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Conn().RemoteMultiaddr().String(), "quic-v1") {
		t.Fatalf("stream went over %s, not QUIC", s.Conn().RemoteMultiaddr())
	}
	if _, err := s.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "ping" {
		t.Fatalf("echo over QUIC: %q, %v", got, err)
	}
}

// TestTCPPreferred: a node that knows a peer's TCP and QUIC addresses
// connects over TCP (tcpFirstRanker), the faster transport for tunnels on
// this stack; libp2p's own ranking would pick QUIC. The peer is a plain
// libp2p host, which never dials the node back on its own.
func TestTCPPreferred(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 1})
	a := tn.Members[0].Node
	b, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := a.Host().Network().ConnsToPeer(b.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections to a peer dialled once: %v", len(conns), conns)
	}
	if _, err := conns[0].RemoteMultiaddr().ValueForProtocol(ma.P_TCP); err != nil {
		t.Fatalf("connected to %v over %s, not TCP", b.Addrs(), conns[0].RemoteMultiaddr())
	}
}

// TestMetricsEndpoint: /metrics serves the node's own series and libp2p's.
func TestMetricsEndpoint(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2})
	n := tn.Members[0].Node
	resp, err := http.Get("http://" + n.APIAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{"ipsx_book_orders", "ipsx_gossip_messages_total", "libp2p_", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
