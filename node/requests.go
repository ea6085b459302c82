package node

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// Why a request is not matched: GET /v1/requests/{id} (RequestDetail) and
// the request.unmatched event, both from the book and matching.Explain
// alone, so they say what the deterministic matcher says, whatever the
// deal code makes of it.

// DefaultUnmatchedAfter is how long one of the node's requests may go
// without a candidate before request.unmatched fires.
const DefaultUnmatchedAfter = time.Minute

// RequestDetail implements api.Backend.
func (n *Node) RequestDetail(ctx context.Context, id common.Hash) (sdk.RequestDetail, error) {
	return api.ExplainRequest(n.book, n.addr, id, n.now(), n.providerScore)
}

func (n *Node) providerScore(a common.Address) int64 {
	r, _ := n.reputation(a)
	return score(r)
}

// unmatchedLoop watches the node's own live requests and publishes
// request.unmatched, once per spell, for a request that has had no
// candidate offer for the unmatched delay; a request that gets a candidate
// and loses it again starts a new spell. It returns when ctx ends.
func (n *Node) unmatchedLoop(ctx context.Context) {
	after := n.o.unmatchedAfter
	t := time.NewTicker(max(after/4, 50*time.Millisecond))
	defer t.Stop()
	since := map[common.Hash]time.Time{} // first seen without a candidate
	told := map[common.Hash]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		own, err := n.book.List(orderbook.Query{Maker: n.addr, Kind: orderbook.KindRequest})
		if err != nil {
			continue
		}
		now := n.now()
		live := map[common.Hash]bool{}
		for _, r := range own {
			id := r.ID()
			live[id] = true
			offers, ids, err := n.book.ListWithIDs(orderbook.Query{Country: r.Shard(), Kind: orderbook.KindOffer})
			if err != nil {
				continue
			}
			cands, err := matching.Candidates(matching.NewSnapshotWithIDs(offers, ids), r, now, matching.Params{MaxCandidates: 1})
			if err != nil || len(cands) > 0 {
				delete(since, id)
				delete(told, id)
				continue
			}
			first, ok := since[id]
			if !ok {
				since[id] = now
				continue
			}
			if told[id] || now.Sub(first) < after {
				continue
			}
			told[id] = true
			d, err := n.RequestDetail(ctx, id)
			if err != nil {
				continue
			}
			n.log.Info("request has no candidate offer", "order", id.Hex(), "for", now.Sub(first).Round(time.Second), "offers", d.Offers)
			n.events.publish("request.unmatched", sdk.UnmatchedEvent{Request: r, Seconds: uint64(now.Sub(first) / time.Second), Candidates: d.Candidates})
		}
		for id := range since {
			if !live[id] {
				delete(since, id)
				delete(told, id)
			}
		}
	}
}
