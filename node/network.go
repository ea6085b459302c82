package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/network"
)

// withNetwork reads the network file c.Network names (if any) and returns
// c with the file's settings folded in, and the file:
//
//   - chain id and escrow: the file's; set in c as well (other than the
//     defaults, DefaultChainID and the zero address, which count as
//     unset), they must agree with it;
//   - RPC URLs: c.ChainRPC first, when set, then the file's, tried in turn;
//   - bootstrap peers: c.Bootstrap and the file's.
//
// Without a network file, the RPC URLs are c.ChainRPC alone.
func (c Config) withNetwork() (Config, *network.File, error) {
	c.rpcs = nil
	if c.ChainRPC != "" {
		c.rpcs = []string{c.ChainRPC}
	}
	if c.Network == "" {
		return c, nil, nil
	}
	f, err := network.Load(c.Network)
	if err != nil {
		return c, nil, fmt.Errorf("node: %w", err)
	}
	if c.ChainID != 0 && c.ChainID != DefaultChainID && c.ChainID != f.ChainID {
		return c, nil, fmt.Errorf("node: --chain-id %d, but the network file %s is for chain %d", c.ChainID, c.Network, f.ChainID)
	}
	if e := common.HexToAddress(c.Escrow); c.Escrow != "" && e != (common.Address{}) && e != f.Escrow {
		return c, nil, fmt.Errorf("node: --escrow %s, but the network file %s names escrow %s", c.Escrow, c.Network, f.Escrow.Hex())
	}
	c.ChainID, c.Escrow = f.ChainID, f.Escrow.Hex()
	for _, u := range f.RPC {
		if !slices.Contains(c.rpcs, u) {
			c.rpcs = append(c.rpcs, u)
		}
	}
	boot := append([]string(nil), c.Bootstrap...)
	for _, b := range f.Bootstrap {
		if !slices.ContainsFunc(boot, func(x string) bool { return strings.EqualFold(x, b) }) {
			boot = append(boot, b)
		}
	}
	c.Bootstrap = boot
	return c, f, nil
}

// confirmations resolves Config.Confirmations: the setting, else the
// network file's, else 0 on the dev chain and the network default
// elsewhere.
func (c Config) confirmations(f *network.File) uint64 {
	switch {
	case c.Confirmations != nil:
		return *c.Confirmations
	case f != nil:
		return f.ConfirmationsOr()
	case c.ChainID == network.DevChainID:
		return 0
	}
	return network.DefaultConfirmations
}

// Confirmations is how many blocks must sit on top of a deal event's block
// before the node acts on it (Config.Confirmations resolved).
func (n *Node) Confirmations() uint64 { return n.cfg.confirmations(n.network) }

// dealConfirmations is what the deal driver waits for: WithDeals'
// Confirmations when set, else Confirmations.
func (n *Node) dealConfirmations() uint64 {
	if n.o.deals.Confirmations > 0 {
		return n.o.deals.Confirmations
	}
	return n.Confirmations()
}

// ChainStart is the first block the escrow's events can be in: the
// network file's deploy block, else 0.
func (n *Node) ChainStart() uint64 {
	if n.network == nil {
		return 0
	}
	return n.network.DeployBlock
}
