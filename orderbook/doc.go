// Package orderbook owns IPSX orders: the Offer and Request types, their
// EIP-712 typed-data encoding, signing and verification, the one validity
// function shared by the local API, the gossip validator and order sync, and
// the badger-backed book with its indices and expiry sweeping.
//
// The order id is the EIP-712 digest of the order under the IPSX domain
// (name "IPSX", version "1", chainId, verifyingContract = the escrow), so
// the same signature is checkable on-chain and by any Ethereum library. The
// exact schema and the JSON wire form are documented in docs/orders.md.
//
// Validation (Validate) is pure: time is an argument and state (duplicates,
// cancels, superseded versions, escrow balances) comes in through the
// StateView and BalanceView interfaces. The package starts no goroutines;
// the Book is safe for concurrent use.
package orderbook
