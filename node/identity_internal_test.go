package node

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestAddressOfCache: AddressOf answers from its cache what it computed,
// keeps no more than maxAddrCache answers however many peers come, and
// never caches a refusal.
func TestAddressOfCache(t *testing.T) {
	pid, want := secpPeer(t)
	for range 2 {
		if got, err := AddressOf(pid); err != nil || got != want {
			t.Fatalf("AddressOf = %s, %v; want %s", got.Hex(), err, want.Hex())
		}
	}
	for range maxAddrCache + 10 {
		pid, want := secpPeer(t)
		if got, err := AddressOf(pid); err != nil || got != want {
			t.Fatalf("AddressOf = %s, %v; want %s", got.Hex(), err, want.Hex())
		}
	}
	addrCache.Lock()
	n := len(addrCache.m)
	addrCache.Unlock()
	if n > maxAddrCache {
		t.Errorf("cache holds %d addresses, want at most %d", n, maxAddrCache)
	}
	_, pub, err := p2pcrypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := AddressOf(ed); !errors.Is(err, ErrNotSecp) {
			t.Fatalf("AddressOf(ed25519 peer) = %v, want ErrNotSecp", err)
		}
	}
}

// secpPeer is the PeerID of a fresh node key and the key's address.
func secpPeer(t *testing.T) (peer.ID, common.Address) {
	t.Helper()
	k, err := ethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := PeerIDOf(k)
	if err != nil {
		t.Fatal(err)
	}
	return pid, ethcrypto.PubkeyToAddress(k.PublicKey)
}
