// Package agreement owns the deal lifecycle between a provider and a
// requester: the deal terms both sign, the wire messages of the deal
// protocol (/ipsx/deal/1.0.0), the vouchers by which the requester pays
// ahead, and (later) the lifecycle itself as a pure state machine in the
// shape of etcd's raft: events in through Step and Tick, state to persist,
// messages to send and chain transactions to submit out through Ready.
//
// The package is pure. It does no I/O, starts no goroutine, reads no clock
// (times are arguments, in unix seconds on the wire and on chain) and
// imports no network, database or chain client; the node package wires it
// to those. It depends only on go-ethereum's crypto and common types.
//
// # Terms, vouchers and ids
//
// Deal terms, vouchers and cancels are EIP-712 typed data under the domain
// {name "IPSX", version "1", chainId, verifyingContract = the Escrow
// contract} — the same domain as orders — so the signatures made here are the
// ones the Escrow contract checks. The type strings are the constants
// DealType, VoucherType and CancelType; they must match chain/contracts/Escrow.sol
// byte for byte (a test in chain checks the digests against the contract).
//
// A deal id is the EIP-712 digest of its terms (Terms.ID), so it is bound to
// one chain and one escrow, and both parties' signatures over the terms are
// signatures over the id. Signatures are 65 bytes r‖s‖v with v = 27 or 28
// and a low s, as Ethereum wallets produce them.
package agreement
