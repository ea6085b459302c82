package chain

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// DealEventKind names an Escrow event about a deal.
type DealEventKind uint8

const (
	EventOpened DealEventKind = iota + 1
	EventSettled
	EventRefunded
	EventCancelled
)

func (k DealEventKind) String() string {
	switch k {
	case EventOpened:
		return "opened"
	case EventSettled:
		return "settled"
	case EventRefunded:
		return "refunded"
	case EventCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// DealEvent is one Escrow event about a deal; the fields its kind does not
// carry are zero.
type DealEvent struct {
	Kind        DealEventKind
	DealID      common.Hash
	Provider    common.Address // opened
	Requester   common.Address // opened
	MaxAmount   *big.Int       // opened
	Amount      *big.Int       // settled (paid to the provider, commission included), refunded
	Commission  *big.Int       // settled
	Bytes       uint64         // settled
	ConnLogHash common.Hash    // settled
	Deadline    uint64         // opened: the deal's deadline (unix seconds)

	// Where the event is on chain. Block and BlockHash name the block
	// that carries it, TxHash and Index the transaction and the log's
	// position in the block; (BlockHash, Index) is unique.
	Block     uint64
	BlockHash common.Hash
	TxHash    common.Hash
	Index     uint
	// Removed marks an event reported earlier whose block has left the
	// canonical chain (a reorg): whatever it caused must be undone. Only
	// a Follower sets it; DealEvents reads canonical logs only.
	Removed bool
}

// Confirmations is how many blocks sit on top of the event's block at
// head: 0 while it is in the head block itself.
func (e DealEvent) Confirmations(head uint64) uint64 {
	if head < e.Block {
		return 0
	}
	return head - e.Block
}

// maxLogRange bounds one eth_getLogs query; public endpoints refuse wide
// ranges.
const maxLogRange = 5000

// DealEvents returns the Escrow's deal events in blocks [from, head], at
// most maxLogRange blocks of them, oldest first, and the block to ask from
// next time. Deposits and withdrawals are left out.
func (c *Client) DealEvents(ctx context.Context, from uint64) ([]DealEvent, uint64, error) {
	head, err := c.s.b.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, from, fmt.Errorf("deal events: head: %w", err)
	}
	to := head.Number.Uint64()
	if to < from {
		return nil, from, nil
	}
	if to-from >= maxLogRange {
		to = from + maxLogRange - 1
	}
	out, err := c.DealEventsIn(ctx, from, to)
	if err != nil {
		return nil, from, err
	}
	return out, to + 1, nil
}

// DealEventsIn returns the Escrow's deal events in blocks [from, to],
// oldest first, each with its block's number and hash, its transaction and
// log index. Logs a reorganisation removed are left out; a caller that
// acted on an event notices its block's hash change (BlockAt, BlockHash)
// and undoes it, or lets a Follower do that.
func (c *Client) DealEventsIn(ctx context.Context, from, to uint64) ([]DealEvent, error) {
	if to < from {
		return nil, nil
	}
	logs, err := c.s.b.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		ToBlock:   new(big.Int).SetUint64(to),
		Addresses: []common.Address{c.c.Escrow},
	})
	if err != nil {
		return nil, fmt.Errorf("deal events %d..%d: %w", from, to, err)
	}
	return c.decodeDealLogs(logs), nil
}

// decodeDealLogs turns escrow logs into deal events, in the logs' order,
// leaving out deposits, withdrawals and logs the node marked removed.
func (c *Client) decodeDealLogs(logs []types.Log) []DealEvent {
	var out []DealEvent
	for i := range logs {
		l := &logs[i]
		if l.Removed {
			continue
		}
		var ev DealEvent
		if e, err := c.escrow.UnpackOpenedEvent(l); err == nil {
			ev = DealEvent{Kind: EventOpened, DealID: e.DealId, Provider: e.Provider, Requester: e.Requester, MaxAmount: e.MaxAmount, Deadline: e.Deadline}
		} else if e, err := c.escrow.UnpackSettledEvent(l); err == nil {
			ev = DealEvent{Kind: EventSettled, DealID: e.DealId, Amount: e.Amount, Commission: e.Commission, Bytes: e.ByteCount, ConnLogHash: e.ConnLogHash}
		} else if e, err := c.escrow.UnpackRefundedEvent(l); err == nil {
			ev = DealEvent{Kind: EventRefunded, DealID: e.DealId, Amount: e.Amount}
		} else if e, err := c.escrow.UnpackCancelledEvent(l); err == nil {
			ev = DealEvent{Kind: EventCancelled, DealID: e.DealId}
		} else {
			continue
		}
		ev.Block, ev.BlockHash, ev.TxHash, ev.Index = l.BlockNumber, l.BlockHash, l.TxHash, l.Index
		out = append(out, ev)
	}
	return out
}

// BlockAt returns the number, hash and timestamp of block n (nil: the
// latest). For a block the chain does not have it returns an error
// wrapping ethereum.NotFound.
func (c *Client) BlockAt(ctx context.Context, n *uint64) (number uint64, hash common.Hash, time uint64, err error) {
	var num *big.Int
	if n != nil {
		num = new(big.Int).SetUint64(*n)
	}
	h, err := c.s.b.HeaderByNumber(ctx, num)
	if err != nil {
		return 0, common.Hash{}, 0, fmt.Errorf("chain block %v: %w", num, err)
	}
	return h.Number.Uint64(), h.Hash(), h.Time, nil
}

// Params are the Escrow's constants fixed at deployment.
type Params struct {
	CommissionBps uint16
	GraceSeconds  uint64
}

// EscrowParams reads the commission and the refund grace period.
func (c *Client) EscrowParams(ctx context.Context) (Params, error) {
	var p Params
	out, err := c.s.call(ctx, c.c.Escrow, c.escrow.PackGraceSeconds())
	if err != nil {
		return p, fmt.Errorf("escrow grace: %w", err)
	}
	if p.GraceSeconds, err = c.escrow.UnpackGraceSeconds(out); err != nil {
		return p, fmt.Errorf("escrow grace: %w", err)
	}
	out, err = c.s.call(ctx, c.c.Escrow, c.escrow.PackCommissionBps())
	if err != nil {
		return p, fmt.Errorf("escrow commission: %w", err)
	}
	if p.CommissionBps, err = c.escrow.UnpackCommissionBps(out); err != nil {
		return p, fmt.Errorf("escrow commission: %w", err)
	}
	return p, nil
}

// Head returns the number and timestamp of the chain's latest block. The
// timestamp is what the escrow compares deadlines with; a dev chain that
// seals faster than one block a second runs ahead of the wall clock.
func (c *Client) Head(ctx context.Context) (number, time uint64, err error) {
	h, err := c.s.b.HeaderByNumber(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("chain head: %w", err)
	}
	return h.Number.Uint64(), h.Time, nil
}

// BlockHash returns the hash of the canonical block at number, and
// ethereum.NotFound (wrapped) when the chain is not that long: compare it
// with an event's BlockHash to see whether the event still stands.
func (c *Client) BlockHash(ctx context.Context, number uint64) (common.Hash, error) {
	h, err := c.s.b.HeaderByNumber(ctx, new(big.Int).SetUint64(number))
	if err != nil {
		return common.Hash{}, fmt.Errorf("block %d: %w", number, err)
	}
	return h.Hash(), nil
}

// HeadBlock returns the number and hash of the chain's latest block.
func (c *Client) HeadBlock(ctx context.Context) (number uint64, hash common.Hash, err error) {
	h, err := c.s.b.HeaderByNumber(ctx, nil)
	if err != nil {
		return 0, common.Hash{}, fmt.Errorf("chain head: %w", err)
	}
	return h.Number.Uint64(), h.Hash(), nil
}
