package node_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Every node a test starts is stopped and joined by the test's end; what
// is left running is a leak. Ignored: go-ethereum's process-wide sender
// cacher (started once, by design), and goleveldb's pool drainer of the dev
// chain's in-memory p2p node database, which go-ethereum closes but whose
// drainer exits on its next tick.
// With floodNodeEnv set, the binary is one node of the flood test's
// testnet (floodproc_test.go) and runs no tests.
func TestMain(m *testing.M) {
	if os.Getenv(floodNodeEnv) != "" {
		os.Exit(floodNodeMain())
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/ethereum/go-ethereum/core.(*txSenderCacher).cache"),
		goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"),
	)
}
