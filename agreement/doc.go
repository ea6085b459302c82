// Package agreement owns the deal lifecycle between a provider and a
// requester: the deal terms both sign, the wire messages of the deal
// protocol (/ipsx/deal/1.0.0), the vouchers by which the requester pays
// ahead, and the lifecycle itself as a pure state machine in the shape of
// etcd's raft: events in through Step and Tick, state to persist, messages
// to send, chain transactions to submit, capacity reservations and tunnel
// permissions out through Ready.
//
// The package is pure. It does no I/O, starts no goroutine, reads no clock
// (times are arguments, in unix seconds on the wire and on chain), logs
// nothing, never depends on map iteration order, and imports no network,
// database or chain client; the node package wires it to those. It depends
// only on go-ethereum's crypto and common types and on orderbook's Order.
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
//
// # The machine
//
// One Machine per local party (one key), holding all of that party's deals
// in either role, keyed by deal id. It is one machine and not one per deal
// because a provider's capacity is shared: the reservation taken when it
// accepts a proposal must be seen by the next proposal, so that two
// requesters racing for the last IP cannot both win. Iteration is always in
// deal-id order.
//
// Step(event) applies one event: a local command (Propose, CloseDeal,
// SetOffer, RemoveOffer), a counterparty message (Receive of a Proposal,
// Accept, Reject, SignedVoucher or Close), a chain event (Opened, Settled,
// Refunded, Cancelled, TxFailed) or a metering report (Usage). Tick(now)
// fires the timers. Either returns an error naming why an event is refused
// (sentinels Err…, "agreement: …"); the machine is then exactly as before.
// Replayed chain events and crossing close messages are accepted as no-ops.
//
// Ready() hands out everything produced since the previous Ready(); what it
// returns is in flight until Advance() acknowledges it. The node must act on a Ready in this order, as raft
// asks of its users:
//
//  1. Persist Ready.Deals — each deal's whole state (statuses, latest
//     voucher, timers) and its new history entries — to stable storage and
//     sync. This must complete BEFORE anything below: a node killed at any
//     instant must restart (Restore) with every promise it made on record:
//     never an accept sent for a reservation it forgot, a voucher sent it
//     did not record, or a transaction submitted for a state it lost.
//  2. Send Ready.Messages to their peers over /ipsx/deal/1.0.0.
//  3. Submit Ready.Txs to the Escrow; report the outcome back through Step
//     (the chain watcher's Opened/Settled/Refunded/Cancelled, or TxFailed).
//  4. Apply Ready.Reservations (publish updated offer versions; the machine
//     keeps its own count, see Available) and Ready.Permissions (the
//     provider's tunnel accepts streams for a deal only while granted; the
//     requester's proxy routes through a deal only while granted).
//     Revocations may be applied before step 1: stopping early is always
//     safe. Grants may not.
//  5. For each of Ready.Retries, propose the request to its next candidate.
//
// then call Advance. Between Ready and Advance the machine may take more
// Steps; their output is in the next Ready, never lost (the machine hands
// its output out on Ready, as raft's RawNode accepts a Ready when it is
// returned).
//
// # States
//
// Each side has a status (Deal.Provider, Deal.Requester); the deal status
// (Deal.Status) is derived from both: a chain outcome wins, then rejected,
// expired, cancelled, then completed if either side completed, else the
// less advanced of the two. The lifecycle, in words:
//
//   - The requester proposes (proposed). The provider checks the offer is
//     its own and live, the prices, duration, start and max amount meet it,
//     and the capacity is there; it then reserves the IPs and signs
//     (accepted), or rejects with a reason (rejected; rejections are not
//     stored by the provider). No answer within ProposalTimeout: expired.
//     Rejected and expired proposals go to the next candidate (Retry).
//   - On accept the requester submits open. The chain's Opened makes both
//     funded. The provider releases a reservation not funded within
//     ReservationTimeout (expired); the requester gives up after
//     FundingTimeout or a failed open (expired). Either may withdraw before
//     funding (cancelled). A deal funded after a side gave up is ended at
//     once with a cooperative cancel (both sign Cancel; the requester
//     submits it; cancelled on chain).
//   - From Start, the requester sends its first voucher and routes traffic
//     (active); the provider grants the tunnel when it holds a voucher
//     (active). No first voucher within PaymentGrace: the provider ends
//     the deal and offers a cancel.
//   - Service ends (completed) at the deadline, when either side closes,
//     when MaxAmount is spent, or when the payment stalls. The provider then
//     settles with the latest voucher (settled); if nobody settles, the
//     requester refunds from Deadline + RefundGrace (refunded).
//
// # Paying ahead
//
// The cost of s seconds and n bytes is Terms.Cost: ceil((IPs·PricePerIPHour·
// s·10^9 + PricePerGB·n·3600) / (3600·10^9)), in big integers, rounded up
// once over the exact sum so the payer never underpays and rounding never
// accumulates; an interval's cost is the difference of two cumulative costs.
// Service time runs on each side from its own activation (StartedAt) to now,
// capped at the deadline.
//
// The requester's voucher at usage (s, n) pays for that plus one interval:
// CappedCost(min(s + IntervalSeconds, service window), n + IntervalBytes).
// It sends the first at activation, before anything is served, and the next
// whenever half an interval is used, in seconds or in bytes, whichever comes
// first — so a new voucher arrives while the provider still holds at least
// half an interval of credit. The provider checks each voucher (signed by
// the requester, for this deal, amount and bytes not decreasing, at most
// MaxAmount, and at most CappedCost(min(s+2·IntervalSeconds, duration),
// n+2·IntervalBytes) against its own meter: one interval beyond the honest
// amount, for the skew between the two sides), forwards only while what it
// served costs less than the latest voucher, revokes the tunnel the moment
// it does not, and ends and settles if no voucher restores the credit
// within PaymentGrace. So the requester risks at most one interval paid
// ahead and the provider at most what it serves between two meter reports.
// The provider's activation follows the requester's, so its meter never
// runs ahead of the requester's.
//
// # Wire messages
//
// See Encode and Decode: one JSON object per message, strictly checked,
// at most MaxMessageSize bytes, framed by the node with a varint length.
package agreement
