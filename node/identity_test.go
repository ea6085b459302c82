package node_test

import (
	"context"
	"errors"
	"io"
	"testing"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/testnet"
	"github.com/libp2p/go-libp2p/core/network"
)

func TestKeystoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	addr, err := node.Init(dir, "correct horse", node.Config{Scrypt: node.ScryptLight})
	if err != nil {
		t.Fatal(err)
	}
	k, err := node.ReadKey(dir, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if got := ethcrypto.PubkeyToAddress(k.PublicKey); got != addr {
		t.Fatalf("key is %s, init said %s", got.Hex(), addr.Hex())
	}
	if _, err := node.ReadKey(dir, "wrong"); !errors.Is(err, node.ErrBadPassword) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := node.Init(dir, "again", node.Config{Scrypt: node.ScryptLight}); err == nil {
		t.Fatal("init over an existing key succeeded")
	}
	if _, err := node.ReadKey(t.TempDir(), "x"); !errors.Is(err, node.ErrNoKey) {
		t.Fatalf("empty dir: %v", err)
	}
}

// TestStreamPeerIsAddress: the PeerID on the remote end of a stream, which
// the secure channel authenticates, yields the counterparty's Ethereum
// address.
func TestStreamPeerIsAddress(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2})
	a, b := tn.Members[0].Node, tn.Members[1].Node
	got := make(chan error, 1)
	b.Host().SetStreamHandler("/ipsx/test-whoami/1.0.0", func(s network.Stream) {
		defer s.Close()
		addr, err := node.AddressOf(s.Conn().RemotePeer())
		if err == nil && addr != a.Address() {
			err = errors.New("remote address " + addr.Hex() + ", want " + a.Address().Hex())
		}
		got <- err
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10e9)
	defer cancel()
	s, err := a.Host().NewStream(ctx, b.PeerID(), "/ipsx/test-whoami/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, s)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	k, _ := ethcrypto.GenerateKey()
	pid, err := node.PeerIDOf(k)
	if err != nil {
		t.Fatal(err)
	}
	if addr, err := node.AddressOf(pid); err != nil || addr != ethcrypto.PubkeyToAddress(k.PublicKey) {
		t.Fatalf("AddressOf(PeerIDOf(k)) = %s, %v", addr.Hex(), err)
	}
	if pid2, err := node.PeerIDOfPubkey(&k.PublicKey); err != nil || pid2 != pid {
		t.Fatalf("PeerIDOfPubkey = %s, %v; want %s", pid2, err, pid)
	}
}
