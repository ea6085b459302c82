package chain

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/ethclient"
)

// Dial connects to any Ethereum JSON-RPC endpoint (http, ws or ipc path:
// the dev chain, geth --dev, a testnet, mainnet) and checks that it answers
// eth_chainId. The caller closes the returned client.
func Dial(ctx context.Context, rpcURL string) (*ethclient.Client, error) {
	c, err := ethclient.DialContext(ctx, rpcURL)
	if err != nil {
		return nil, fmt.Errorf("chain: dial %s: %w", rpcURL, err)
	}
	if _, err := c.ChainID(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("chain: dial %s: chain id: %w", rpcURL, err)
	}
	return c, nil
}
