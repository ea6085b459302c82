// Package deals is the deal driver: the I/O shell around agreement's pure
// state machine. It owns the machine, each deal's durable record (the
// machine's state and history, the outbox of messages not yet
// acknowledged, what was received from the counterparty, the
// counterparty's last addresses), the chain watcher and the proposer.
//
// It depends on small interfaces, never on package node: a Store (durable,
// synced writes), a Transport (one packet exchange with a counterparty),
// a Chain (submit a transaction, read confirmed deal events), Offers (the
// order book's view: own requests, candidates, whether a request is still
// open) and Hooks (what the node does when a deal changes: tunnel
// permissions, offer republishing, events). Node wires them.
//
// # The shape
//
// A core (core.go) is synchronous and deterministic: each input (a packet
// received, the answer to one sent, a tick, a transaction outcome, chain
// events, a local command) steps the machine, moves its Ready into the
// records, saves every record it changed (synced) and only then returns
// the effects: packets to send, transactions to submit, permissions and
// reservations to apply. A failed save is retried; one that still fails
// stops the driver with the error instead of acting on unsaved state. The
// driver (driver.go) is the thin goroutine wrapper: one loop owns the
// core, sends and transactions run on goroutines whose outcomes come back
// into the loop as inputs, and Run joins them all. Tests drive the core
// directly with a simulated network, chain and clock (sim_test.go).
//
// # The acknowledged protocol
//
// See agreement's packet.go for the wire form. Every message the machine
// emits for a deal gets the deal's next sequence number and goes into the
// record's outbox in the same synced write as the state that produced it,
// so "sent" always means "on disk first". The outbox is sent until the
// counterparty acknowledges it, with a backoff per counterparty and one
// exchange in flight per counterparty (so messages arrive in order). The
// receiver processes the next expected message exactly once, saves, and
// only then answers with its acknowledgement and with its own unacknowledged
// messages for the deals named, so an accept rides back on the proposal's
// exchange. Messages that arrive in a reply are acknowledged by a packet
// of their own right after.
//
// Vouchers are cumulative, so the requester keeps at most one voucher in
// flight: a newer one waits until the previous is acknowledged (or goes
// out ahead of a close), and only the newest is sent then. A proposal that
// timed out unacknowledged is withdrawn from the outbox: nothing reached the
// provider, or its accept is on its way and is honoured or answered with a
// close.
//
// After a restart, and whenever a counterparty connects, the driver sends
// a sync packet naming every open deal with it; the answer carries what
// the other side has not had acknowledged. Each record keeps the
// counterparty's last libp2p identity and addresses, so a restarted node
// reaches its counterparties without a DHT lookup.
//
// # Transactions and the chain
//
// A transaction's failure is classified (Chain.Classify): a revert that
// cannot change is final and goes into the deal's history with its reason;
// connection, nonce and fee errors, a missing receipt or a refund asked a
// moment early are retried by the machine with a doubling backoff; a revert
// that says the outcome is already on chain (the deal exists, the deal is
// no longer open) waits for the chain event. The chain watcher acts on deal
// events once they have Confirmations blocks on top of them, and keeps the
// hashes of the recent blocks it read: when one changes, a reorganisation
// happened, and the events of the blocks that vanished are unwound
// (agreement.Unwound) before the new branch is read.
//
// # Proposals
//
// The proposer runs off the loop: for each open own request without a
// deal under way it asks Offers for candidates (matching) and proposes to
// the best one not in backoff. A series that failed (rejected, timed out,
// not funded) is tried again after a backoff, at most MaxSeriesAttempts
// times while the request lives.
package deals
