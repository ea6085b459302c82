package chain

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
)

// DefaultReorgWindow is how many blocks below the head a Follower keeps
// what it needs to undo a reorg: deeper reorgs than this are treated as
// if the oldest block it holds had been replaced (its events are removed
// and read again), and blocks older than the window as final.
const DefaultReorgWindow = 256

// FollowConfig tunes a Follower.
type FollowConfig struct {
	// Confirmations is how many blocks must sit on top of an event's block
	// before the event is reported: 0 reports events from the head block
	// itself (the dev chain, which never reorgs unless told to).
	Confirmations uint64
	// Window is the reorg window in blocks (0: DefaultReorgWindow). It
	// must exceed Confirmations.
	Window uint64
}

// FollowerState is where a Follower is: persist it (it marshals to JSON)
// and hand it to NewFollower after a restart, so that the follower resumes
// after the last block it read and still recognises a reorg of blocks it
// read before the restart.
type FollowerState struct {
	// Next is the first block not read yet.
	Next uint64 `json:"next"`
	// Blocks are the blocks read within the reorg window that carried deal
	// events, and the last block read, oldest first.
	Blocks []BlockEvents `json:"blocks,omitempty"`
}

// BlockEvents is one block a Follower read and the deal events it
// reported from it.
type BlockEvents struct {
	Number uint64      `json:"number"`
	Hash   common.Hash `json:"hash"`
	Events []DealEvent `json:"events,omitempty"`
}

func (st FollowerState) clone() FollowerState {
	out := FollowerState{Next: st.Next, Blocks: make([]BlockEvents, len(st.Blocks))}
	for i, b := range st.Blocks {
		out.Blocks[i] = BlockEvents{Number: b.Number, Hash: b.Hash, Events: append([]DealEvent(nil), b.Events...)}
	}
	return out
}

// Follower reads the escrow's deal events block by block, each once it has
// cfg.Confirmations blocks on top, and notices reorgs: when a block it
// read has left the canonical chain, it reports that block's events again
// with Removed set (newest first), before the events of the blocks that
// replaced it.
//
// It polls (eth_getLogs and headers: any HTTP endpoint will do, no
// subscription is needed) and does not rely on the node to mark removed
// logs. A block hash commits to every block below it, so one comparison of
// the last block read with the canonical chain tells whether anything it
// read has changed; only then does it walk back through the blocks it
// holds to find the newest one still canonical.
//
// A Follower is not safe for concurrent use: one goroutine polls it.
type Follower struct {
	c   *Client
	cfg FollowConfig
	st  FollowerState
}

// NewFollower returns a follower that resumes from st (the zero state
// reads from block 0; set Next to the deployment's block to skip what
// came before).
func (c *Client) NewFollower(st FollowerState, cfg FollowConfig) (*Follower, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultReorgWindow
	}
	if cfg.Window <= cfg.Confirmations {
		return nil, fmt.Errorf("%w: reorg window %d must exceed the confirmations %d", ErrInvalidConfig, cfg.Window, cfg.Confirmations)
	}
	return &Follower{c: c, cfg: cfg, st: st.clone()}, nil
}

// State returns a copy of the follower's position, to persist after the
// events of a Poll have been acted on.
func (f *Follower) State() FollowerState { return f.st.clone() }

// Poll reads what changed since the last call: first the events of blocks
// that have left the canonical chain (Removed set, newest first), then the
// events of newly confirmed blocks, oldest first, at most maxLogRange
// blocks of them per call. head is the chain's head block number at the
// time. On an error the state is unchanged, and Poll may be called again.
func (f *Follower) Poll(ctx context.Context) (events []DealEvent, head uint64, err error) {
	b := f.c.s.b
	h, err := b.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("follow deal events: head: %w", err)
	}
	head = h.Number.Uint64()
	st := f.st.clone()

	removed, err := f.unwind(ctx, &st)
	if err != nil {
		return nil, head, err
	}
	if head < f.cfg.Confirmations || head-f.cfg.Confirmations < st.Next {
		f.st = st
		return removed, head, nil
	}
	from, to := st.Next, head-f.cfg.Confirmations
	if to-from >= maxLogRange {
		to = from + maxLogRange - 1
	}
	tip, err := f.c.BlockHash(ctx, to)
	if err != nil {
		return nil, head, fmt.Errorf("follow deal events: %w", err)
	}
	logs, err := b.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		ToBlock:   new(big.Int).SetUint64(to),
		Addresses: []common.Address{f.c.c.Escrow},
	})
	if err != nil {
		return nil, head, fmt.Errorf("follow deal events %d..%d: %w", from, to, err)
	}
	// The logs must come from the chain that ends in tip: read tip's hash
	// again, and leave the range to the next poll if it moved meanwhile.
	if again, err := f.c.BlockHash(ctx, to); err != nil || again != tip {
		f.st = st
		return removed, head, nil
	}
	fresh := f.c.decodeDealLogs(logs)
	for _, e := range fresh {
		if n := len(st.Blocks); n > 0 && st.Blocks[n-1].Number == e.Block {
			st.Blocks[n-1].Events = append(st.Blocks[n-1].Events, e)
			continue
		}
		st.Blocks = append(st.Blocks, BlockEvents{Number: e.Block, Hash: e.BlockHash, Events: []DealEvent{e}})
	}
	if n := len(st.Blocks); n == 0 || st.Blocks[n-1].Number != to {
		st.Blocks = append(st.Blocks, BlockEvents{Number: to, Hash: tip})
	}
	st.Next = to + 1
	st.Blocks = f.prune(st.Blocks, to)
	f.st = st
	return append(removed, fresh...), head, nil
}

// unwind finds the newest block of st still canonical, drops the blocks
// after it and returns their events marked removed, newest first.
func (f *Follower) unwind(ctx context.Context, st *FollowerState) ([]DealEvent, error) {
	keep := len(st.Blocks)
	for keep > 0 {
		blk := st.Blocks[keep-1]
		hash, err := f.c.BlockHash(ctx, blk.Number)
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			return nil, fmt.Errorf("follow deal events: %w", err)
		}
		if err == nil && hash == blk.Hash {
			break
		}
		keep-- // replaced, or the chain is now shorter than it
	}
	if keep == len(st.Blocks) {
		return nil, nil
	}
	var removed []DealEvent
	for i := len(st.Blocks) - 1; i >= keep; i-- {
		evs := st.Blocks[i].Events
		for j := len(evs) - 1; j >= 0; j-- {
			e := evs[j]
			e.Removed = true
			removed = append(removed, e)
		}
	}
	if keep > 0 {
		st.Next = st.Blocks[keep-1].Number + 1
	} else {
		// Every block held was replaced: read again from the oldest, which
		// the window says is as deep as a reorg goes.
		st.Next = st.Blocks[0].Number
	}
	st.Blocks = st.Blocks[:keep]
	return removed, nil
}

// prune drops blocks older than the window below to, always keeping the
// last one.
func (f *Follower) prune(blocks []BlockEvents, to uint64) []BlockEvents {
	i := 0
	for i < len(blocks)-1 && blocks[i].Number+f.cfg.Window < to {
		i++
	}
	// Tips without events between blocks with events add nothing the
	// blocks around them do not tell; keep only the last.
	out := blocks[:0:0]
	for j, b := range blocks[i:] {
		if len(b.Events) == 0 && j < len(blocks[i:])-1 {
			continue
		}
		out = append(out, b)
	}
	return out
}
