package node_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/testnet"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestQUICTransport: nodes reach each other over QUIC alone.
func TestQUICTransport(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2})
	a, b := tn.Members[0].Node, tn.Members[1].Node
	for _, c := range a.Host().Network().ConnsToPeer(b.PeerID()) {
		_ = c.Close()
	}
	var quic []ma.Multiaddr
	for _, addr := range b.Host().Addrs() {
		if _, err := addr.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quic = append(quic, addr)
		}
	}
	if len(quic) == 0 {
		t.Fatalf("node listens on no QUIC address: %v", b.Host().Addrs())
	}
	a.Host().Peerstore().ClearAddrs(b.PeerID())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.PeerID(), Addrs: quic}); err != nil {
		t.Fatal(err)
	}
	b.Host().SetStreamHandler("/ipsx/test-echo/1.0.0", func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
	s, err := a.Host().NewStream(ctx, b.PeerID(), "/ipsx/test-echo/1.0.0")
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
