// The units, the dev chain's id and rules and its well-known keys: here
// rather than in devchain.go, which a build with -tags nodevchain leaves
// out, because the node and the escrow check use them too.

package chain

import (
	"crypto/ecdsa"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// Ether is 10^18 wei; Token is one IPSX in base units (also 10^18).
var (
	Ether = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	Token = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
)

// DevChainID is the chain id of the dev chain (the simulated backend's).
const DevChainID = 1337

// MainnetRules returns the dev chain's config with the draft future forks
// switched off, so that gas is priced as on mainnet today (Osaka).
// go-ethereum v1.17.10's params.AllDevChainProtocolChanges — used by the
// simulated backend and geth --dev — enables the draft Bogota fork, which
// reprices storage creation.
func MainnetRules() *params.ChainConfig {
	c := *params.AllDevChainProtocolChanges
	c.BogotaTime = nil
	c.AmsterdamTime = nil
	return &c
}

// DevKey returns the i-th well-known dev key, keccak256("ipsx devchain key
// <i>"). Key 0 deploys the contracts, holds the token supply and is the
// treasury. These keys are public: never use them for real funds.
func DevKey(i int) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("ipsx devchain key " + strconv.Itoa(i))))
	if err != nil {
		panic(err) // a keccak output is a valid key with overwhelming probability; fixed inputs
	}
	return k
}
