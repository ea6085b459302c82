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
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
)

// TestQUICTransport: nodes reach each other over QUIC alone.
func TestQUICTransport(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2})
	a, b := tn.Members[0].Node, tn.Members[1].Node
	var quic []ma.Multiaddr
	for _, addr := range b.Host().Addrs() {
		if _, err := addr.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quic = append(quic, addr)
		}
	}
	if len(quic) == 0 {
		t.Fatalf("node listens on no QUIC address: %v", b.Host().Addrs())
	}
	// Neither side may redial the other over TCP, which both prefer: forget
	// the addresses, then drop the connections.
	a.Host().Peerstore().ClearAddrs(b.PeerID())
	b.Host().Peerstore().ClearAddrs(a.PeerID())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for len(a.Host().Network().ConnsToPeer(b.PeerID()))+len(b.Host().Network().ConnsToPeer(a.PeerID())) > 0 {
		for _, c := range a.Host().Network().ConnsToPeer(b.PeerID()) {
			_ = c.Close()
		}
		for _, c := range b.Host().Network().ConnsToPeer(a.PeerID()) {
			_ = c.Close()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the nodes stay connected: %v", a.Host().Network().ConnsToPeer(b.PeerID()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.PeerID(), Addrs: quic}); err != nil {
		t.Fatal(err)
	}
	b.Host().SetStreamHandler("/ipsx/test-echo/1.0.0", func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
	// The stream goes over the QUIC connection just made, even if one of
	// the nodes has meanwhile dialled the other's TCP address as well
	// (identify tells each the other's addresses again).
	var qc network.Conn
	for _, c := range a.Host().Network().ConnsToPeer(b.PeerID()) {
		if strings.Contains(c.RemoteMultiaddr().String(), "quic-v1") {
			qc = c
		}
	}
	if qc == nil {
		t.Fatalf("no QUIC connection after connecting to %v: %v", quic, a.Host().Network().ConnsToPeer(b.PeerID()))
	}
	s, err := qc.NewStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetProtocol("/ipsx/test-echo/1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := msmux.SelectProtoOrFail[protocol.ID]("/ipsx/test-echo/1.0.0", s); err != nil {
		t.Fatal(err)
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
// this stack; libp2p's own ranking would pick QUIC.
func TestTCPPreferred(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2})
	a, b := tn.Members[0].Node, tn.Members[1].Node
	var tcp, quic bool
	for _, addr := range b.Host().Addrs() {
		if _, err := addr.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quic = true
		} else if _, err := addr.ValueForProtocol(ma.P_TCP); err == nil {
			tcp = true
		}
	}
	if !tcp || !quic {
		t.Fatalf("node listens on %v: want TCP and QUIC", b.Host().Addrs())
	}
	for _, c := range a.Host().Network().ConnsToPeer(b.PeerID()) {
		_ = c.Close()
	}
	a.Host().Peerstore().AddAddrs(b.PeerID(), b.Host().Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	b.Host().SetStreamHandler("/ipsx/test-echo/1.0.0", func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
	s, err := a.Host().NewStream(ctx, b.PeerID(), "/ipsx/test-echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Conn().RemoteMultiaddr().ValueForProtocol(ma.P_TCP); err != nil {
		t.Fatalf("stream went over %s, not TCP", s.Conn().RemoteMultiaddr())
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
