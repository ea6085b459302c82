package chain

import "github.com/ethereum/go-ethereum/common"

// The faucet's answers (faucet.go), here because a node's client of the
// faucet (ipsx compose-node) needs them in a build without the dev chain
// too (-tags nodevchain).

// FaucetNetwork is the answer of GET /faucet/network.
type FaucetNetwork struct {
	ChainID       uint64         `json:"chainId"`
	Token         common.Address `json:"token"`
	Escrow        common.Address `json:"escrow"`
	DeployBlock   uint64         `json:"deployBlock"`
	CommissionBps uint16         `json:"commissionBps"`
	// Bootstrap are the multiaddrs bootstrap nodes announced, newest
	// announcement of each peer last.
	Bootstrap []string `json:"bootstrap"`
}

// FaucetFunded is the answer of POST /faucet/fund.
type FaucetFunded struct {
	Address common.Address `json:"address"`
	// Funded is false when the address had its ETH already.
	Funded bool   `json:"funded"`
	ETH    string `json:"eth"`
	Tokens string `json:"tokens"`
}
