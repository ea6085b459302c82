package node_test

import (
	"testing"
	"time"

	"github.com/ipsx/ipsx/testnet"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPingFindsLatePeer: a peer that no node knows an address of yet (it
// has only just come up, or its relay address has not reached the nodes
// it is connected to) is looked up again until it is found: a ping
// started before the peer is connected to anyone succeeds once it is.
// The peer is a plain libp2p host, which answers pings.
func TestPingFindsLatePeer(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2})
	a, b := tn.Members[0].Node, tn.Members[1].Node
	late, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	ctx := awaitCtx(t)
	done := make(chan error, 1)
	go func() {
		_, err := a.Ping(ctx, late.ID().String(), false)
		done <- err
	}()
	// The first lookup finds nothing: nobody knows the peer.
	awaitMetric(t, a, 1, "ipsx_peer_lookups_total", "result=not_found")
	if err := late.Connect(ctx, peer.AddrInfo{ID: b.PeerID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ping of a peer that became known during its lookup: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("ping did not return")
	}
	if found := metricValue(t, a, "ipsx_peer_lookups_total", "result=found"); found != 1 {
		t.Errorf("%v lookups found the peer, want 1", found)
	}
}
