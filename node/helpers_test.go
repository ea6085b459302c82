package node_test

import (
	"crypto/ecdsa"
	"fmt"
	"testing"

	"github.com/ipsx/ipsx/testnet"

	"github.com/ethereum/go-ethereum/common"
)

func commonHash(s fmt.Stringer) common.Hash { return common.HexToHash(s.String()) }

func testKeyOf(t *testing.T, m *testnet.Member) *ecdsa.PrivateKey {
	t.Helper()
	return m.Node.Key()
}
