package node

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The node key is one secp256k1 key: the Ethereum wallet and the libp2p
// identity at once. So the PeerID of the remote end of any stream (which
// the secure channel authenticates) names the counterparty's address.

var (
	ErrNoKey       = errors.New("node: no key in the data dir (run ipsx init)")
	ErrBadPassword = errors.New("node: wrong passphrase for the keystore")
	ErrNotSecp     = errors.New("node: peer key is not secp256k1")
)

// Scrypt strengths for the keystore. Light is for tests and the local
// testnet only: it decrypts in milliseconds, which also means a stolen file
// is cheap to brute-force.
const (
	ScryptStandard = "standard"
	ScryptLight    = "light"
)

func scryptParams(strength string) (n, p int, err error) {
	switch strength {
	case "", ScryptStandard:
		return keystore.StandardScryptN, keystore.StandardScryptP, nil
	case ScryptLight:
		return keystore.LightScryptN, keystore.LightScryptP, nil
	}
	return 0, 0, fmt.Errorf("node: scrypt strength %q (want standard or light)", strength)
}

const keystoreDir = "keystore"

// WriteKey encrypts key into dir/keystore in go-ethereum's keystore format,
// importable into any Ethereum wallet.
func WriteKey(dir string, key *ecdsa.PrivateKey, password, strength string) (common.Address, error) {
	n, p, err := scryptParams(strength)
	if err != nil {
		return common.Address{}, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return common.Address{}, err
	}
	k := &keystore.Key{Id: id, Address: ethcrypto.PubkeyToAddress(key.PublicKey), PrivateKey: key}
	blob, err := keystore.EncryptKey(k, password, n, p)
	if err != nil {
		return common.Address{}, fmt.Errorf("node: encrypt key: %w", err)
	}
	kd := filepath.Join(dir, keystoreDir)
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return common.Address{}, err
	}
	name := filepath.Join(kd, "UTC--"+strings.ToLower(k.Address.Hex()[2:])+".json")
	if err := os.WriteFile(name, blob, 0o600); err != nil {
		return common.Address{}, fmt.Errorf("node: write keystore: %w", err)
	}
	return k.Address, nil
}

// ReadKey decrypts the single key in dir/keystore.
func ReadKey(dir, password string) (*ecdsa.PrivateKey, error) {
	files, err := filepath.Glob(filepath.Join(dir, keystoreDir, "*"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoKey, filepath.Join(dir, keystoreDir))
	}
	if len(files) > 1 {
		return nil, fmt.Errorf("node: %d files in %s, want exactly one key", len(files), filepath.Join(dir, keystoreDir))
	}
	blob, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	k, err := keystore.DecryptKey(blob, password)
	if errors.Is(err, keystore.ErrDecrypt) {
		return nil, ErrBadPassword
	}
	if err != nil {
		return nil, fmt.Errorf("node: read keystore %s: %w", files[0], err)
	}
	return k.PrivateKey, nil
}

// P2PKey converts the node key into its libp2p form.
func P2PKey(key *ecdsa.PrivateKey) (p2pcrypto.PrivKey, error) {
	return p2pcrypto.UnmarshalSecp256k1PrivateKey(ethcrypto.FromECDSA(key))
}

// PeerIDOf is the PeerID of a node key.
func PeerIDOf(key *ecdsa.PrivateKey) (peer.ID, error) {
	pk, err := P2PKey(key)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(pk)
}

// AddressOf is the Ethereum address of the key behind a PeerID. Every
// tunnel connection and deal message asks it of its peer; working it out
// (two point decompressions and a Keccak, 16 µs) was half of a provider's
// checks before it dials a tunnel's target (36 µs, median), so the
// answers are remembered (31 ns).
func AddressOf(id peer.ID) (common.Address, error) {
	addrCache.Lock()
	a, ok := addrCache.m[id]
	addrCache.Unlock()
	if ok {
		return a, nil
	}
	a, err := addressOf(id)
	if err != nil {
		return common.Address{}, err
	}
	addrCache.Lock()
	if len(addrCache.m) >= maxAddrCache {
		clear(addrCache.m) // a flood of new peers costs recomputing, never memory
	}
	addrCache.m[id] = a
	addrCache.Unlock()
	return a, nil
}

// addrCache holds AddressOf's answers; maxAddrCache bounds it.
var addrCache = struct {
	sync.Mutex
	m map[peer.ID]common.Address
}{m: map[peer.ID]common.Address{}}

const maxAddrCache = 4096

func addressOf(id peer.ID) (common.Address, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return common.Address{}, fmt.Errorf("node: public key of %s: %w", id, err)
	}
	if pub.Type() != p2pcrypto.Secp256k1 {
		return common.Address{}, fmt.Errorf("%w: %s is %s", ErrNotSecp, id, pub.Type())
	}
	raw, err := pub.Raw()
	if err != nil {
		return common.Address{}, err
	}
	ep, err := ethcrypto.DecompressPubkey(raw)
	if err != nil {
		return common.Address{}, fmt.Errorf("node: decompress key of %s: %w", id, err)
	}
	return ethcrypto.PubkeyToAddress(*ep), nil
}

// PeerIDOfPubkey is the PeerID of an Ethereum public key, e.g. one recovered
// from an order's signature.
func PeerIDOfPubkey(pub *ecdsa.PublicKey) (peer.ID, error) {
	pk, err := p2pcrypto.UnmarshalSecp256k1PublicKey(ethcrypto.CompressPubkey(pub))
	if err != nil {
		return "", err
	}
	return peer.IDFromPublicKey(pk)
}
