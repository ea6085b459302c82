package deals

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// proposer proposes the node's open requests that have no deal under way,
// off the loop: the matching happens here, the loop only takes the
// proposal.
func (d *Driver) proposer(ctx context.Context) {
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
		d.proposeRound(ctx)
	}
}

func (d *Driver) proposeRound(ctx context.Context) {
	reqs := d.offers.OwnRequests()
	if len(reqs) == 0 {
		return
	}
	now := d.cfg.Now()
	busy := map[common.Hash]bool{}
	blocked := map[common.Hash]map[seriesKey]bool{}
	err := d.do(ctx, func(c *core) error {
		for _, r := range reqs {
			busy[r.ID()] = c.requestBusy(r.ID())
			for k := range c.tried[r.ID()] {
				if c.blocked(r.ID(), k, now) {
					if blocked[r.ID()] == nil {
						blocked[r.ID()] = map[seriesKey]bool{}
					}
					blocked[r.ID()][k] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return
	}
	for _, r := range reqs {
		if busy[r.ID()] || ctx.Err() != nil {
			continue
		}
		for _, f := range d.offers.Candidates(r, now) {
			if blocked[r.ID()][seriesKey{f.Offer.Maker, f.Offer.Nonce}] || !d.offers.Reachable(f.Offer.Maker) {
				continue
			}
			// The loop checks again: the request may have got a deal meanwhile.
			if err := d.do(ctx, func(c *core) error { return c.propose(d.cfg.Now(), r, f) }); err != nil && ctx.Err() == nil {
				d.log.Warn("propose", "request", r.ID().Hex(), "offer", f.OfferID.Hex(), "err", err)
			}
			break
		}
	}
}
