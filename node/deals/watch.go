package deals

import (
	"context"
	"errors"
	"time"
)

// maxBlockRange bounds one event query; public endpoints refuse wide
// ranges.
const maxBlockRange = 5000

// watch feeds the escrow's confirmed deal events into the loop, and
// unwinds those of blocks a reorganisation replaced. It reads the chain
// every tick, and at once when the loop expects an event (an own
// transaction mined, a funded deal's first message before its Opened).
func (d *Driver) watch(ctx context.Context) {
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	for {
		if err := d.poll(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("read escrow events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// poll reads one batch of events. The cursor moves on only once the loop
// has stepped and saved what they caused.
func (d *Driver) poll(ctx context.Context) error {
	head, err := d.chain.Header(ctx, nil)
	if err != nil {
		return err
	}
	d.chainTime.Store(head.Time)
	cur := d.cursor
	if cur.Next == 0 {
		// First start: deals of this node cannot be older than now.
		cur.Next = head.Number + 1
		return d.commit(ctx, cur, nil, nil)
	}
	unwound, cur, err := d.reorg(ctx, cur)
	if err != nil {
		return err
	}
	var safe uint64
	if head.Number >= d.cfg.Confirmations {
		safe = head.Number - d.cfg.Confirmations
	}
	if cur.Next > safe {
		if len(unwound) > 0 || len(cur.Recent) != len(d.cursor.Recent) {
			return d.commit(ctx, cur, unwound, nil)
		}
		return nil
	}
	to := min(safe, cur.Next+maxBlockRange-1)
	evs, err := d.chain.Events(ctx, cur.Next, to)
	if err != nil {
		return err
	}
	end, err := d.chain.Header(ctx, &to)
	if err != nil {
		return err
	}
	for _, e := range evs {
		cur.addEvent(e)
	}
	cur.addBlock(end.Number, end.Hash)
	cur.Next = to + 1
	cur.trim(d.cfg.ReorgWindow)
	return d.commit(ctx, cur, unwound, evs)
}

// reorg checks the newest block read: if its hash changed, the blocks
// back to the newest one that still matches were replaced, and the events
// acted on in them are returned (newest first) to be unwound.
func (d *Driver) reorg(ctx context.Context, cur Cursor) ([]Event, Cursor, error) {
	if len(cur.Recent) == 0 {
		return nil, cur, nil
	}
	var unwound []Event
	for len(cur.Recent) > 0 {
		last := cur.Recent[len(cur.Recent)-1]
		n := last.Number
		h, err := d.chain.Header(ctx, &n)
		if err != nil && !errors.Is(err, ErrNoBlock) {
			return nil, cur, err
		}
		if err == nil && h.Hash == last.Hash {
			break
		}
		// Replaced, or no longer there at all (a shorter chain).
		for i := len(last.Events) - 1; i >= 0; i-- {
			e := last.Events[i]
			unwound = append(unwound, Event{Ev: unwindEvent(e.Kind, e.DealID), DealID: e.DealID, Block: last.Number, Hash: last.Hash})
		}
		cur.Recent = cur.Recent[:len(cur.Recent)-1]
		cur.Next = last.Number
	}
	if len(unwound) > 0 || len(cur.Recent) < len(d.cursor.Recent) {
		d.log.Warn("chain reorganisation", "from block", cur.Next, "events unwound", len(unwound))
	}
	return unwound, cur, nil
}

// commit hands the events to the loop and adopts the cursor once they are
// saved.
func (d *Driver) commit(ctx context.Context, cur Cursor, unwound, evs []Event) error {
	err := d.do(ctx, func(c *core) error {
		if err := c.chainEvents(d.cfg.Now(), unwound, evs); err != nil {
			return err
		}
		return c.store.SaveCursor(cur)
	})
	if err != nil {
		return err
	}
	d.cursor = cur
	return nil
}

func (c *Cursor) addEvent(e Event) {
	n := len(c.Recent)
	if n == 0 || c.Recent[n-1].Number != e.Block {
		c.Recent = append(c.Recent, BlockRef{Number: e.Block, Hash: e.Hash})
		n++
	}
	c.Recent[n-1].Events = append(c.Recent[n-1].Events, EventRecord{DealID: e.DealID, Kind: eventKind(e.Ev)})
}

func (c *Cursor) addBlock(number uint64, hash [32]byte) {
	n := len(c.Recent)
	if n > 0 && c.Recent[n-1].Number == number {
		c.Recent[n-1].Hash = hash
		return
	}
	c.Recent = append(c.Recent, BlockRef{Number: number, Hash: hash})
}

// trim keeps the newest window blocks.
func (c *Cursor) trim(window int) {
	if len(c.Recent) > window {
		c.Recent = append([]BlockRef(nil), c.Recent[len(c.Recent)-window:]...)
	}
}
