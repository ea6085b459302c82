package node

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/sdk"
)

// Provider reputation, local to each node: what this node's own deals
// with a provider came to. It ranks a requester's candidates after the
// deterministic match (matching.Candidates) and never enters the matching
// function itself: peers' reputations differ, and they must still agree
// on matches.

const (
	keyRep     = "rep/"     // provider address -> sdk.Reputation
	keyRepDeal = "repdeal/" // deal -> counted outcome, so each counts once
)

// rate records, once, what a deal showed of its provider: it stores val
// under the deal's key once and, in the same transaction, updates the
// provider's record with fn (nil: no update). A deal already recorded
// under once is left alone, so nothing counts twice, even across a crash.
func (n *Node) rate(provider common.Address, once, val []byte, fn func(*sdk.Reputation)) {
	n.repMu.Lock()
	defer n.repMu.Unlock()
	key := []byte(keyRep + provider.Hex())
	err := n.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(once); err == nil {
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if err := txn.Set(once, val); err != nil || fn == nil {
			return err
		}
		var r sdk.Reputation
		if it, err := txn.Get(key); err == nil {
			if err := it.Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		fn(&r)
		r.Score = score(r)
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return txn.Set(key, b)
	})
	if err != nil {
		n.log.Warn("update reputation", "provider", provider.Hex(), "err", err)
	}
}

// rateDeal counts a requester's deal once it has ended: completed
// (settled), refunded (the provider never settled), or failed (it expired
// before the provider funded its part). A rejection is the market working
// (the capacity went to another requester) and a cancel is usually the
// requester's own doing; neither counts.
func (n *Node) rateDeal(d *agreement.Deal) {
	if d.Role != agreement.RoleRequester {
		return
	}
	st := d.Status()
	var outcome string
	switch st {
	case agreement.StatusSettled:
		outcome = "completed"
	case agreement.StatusRefunded:
		outcome = "refunded"
	case agreement.StatusExpired:
		outcome = "failed"
	default:
		return
	}
	n.rate(d.Terms.Provider, []byte(keyRepDeal+d.ID.Hex()), []byte(outcome), func(r *sdk.Reputation) {
		switch outcome {
		case "completed":
			r.Completed++
			if d.StartedAt > 0 && d.EndedAt > d.StartedAt {
				r.Bytes += d.Bytes
				r.Seconds += d.EndedAt - d.StartedAt
			}
			if r.Seconds > 0 {
				r.AvgBytesPerSecond = r.Bytes / r.Seconds
			}
		case "refunded":
			r.Refunded++
		case "failed":
			r.Failed++
		}
	})
}

// score sums a record up: completed deals count for a provider, failures
// and refunds twice against, a geo mismatch four times.
func score(r sdk.Reputation) int64 {
	return int64(r.Completed) - 2*int64(r.Failed+r.Refunded) - 4*int64(r.GeoMismatches)
}

// reputation is the record of a provider (zero if none).
func (n *Node) reputation(provider common.Address) (sdk.Reputation, bool) {
	var r sdk.Reputation
	err := n.dbGetJSON([]byte(keyRep+provider.Hex()), &r)
	return r, err == nil
}

// Reputation implements api.Backend.
func (n *Node) Reputation(ctx context.Context, makers []common.Address) map[string]sdk.Reputation {
	out := map[string]sdk.Reputation{}
	for _, m := range makers {
		if _, done := out[m.Hex()]; done {
			continue
		}
		if r, ok := n.reputation(m); ok {
			out[m.Hex()] = r
		}
	}
	return out
}

// rankCandidates orders a request's candidates by their providers' local
// score, best first, then verified locations before declared ones; equal
// candidates keep the deterministic match's order.
func (n *Node) rankCandidates(cands []matching.Fill) {
	scores := map[common.Address]int64{}
	for _, f := range cands {
		if _, ok := scores[f.Offer.Maker]; !ok {
			r, _ := n.reputation(f.Offer.Maker)
			scores[f.Offer.Maker] = score(r)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i].Offer, cands[j].Offer
		if scores[a.Maker] != scores[b.Maker] {
			return scores[a.Maker] > scores[b.Maker]
		}
		return !a.Unverified && b.Unverified
	})
}
