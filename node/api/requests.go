package api

import (
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// MaxCandidates is how many offers RequestDetail lists.
const MaxCandidates = 10

// ExplainRequest builds the RequestDetail of maker's request id from the
// book: the orders of the request's shard as matching sees them, the
// candidates first, then the offers that came closest, with the first
// reason each fails (matching.Explain). score, when not nil, gives each
// offer's maker its local reputation score, which reorders the candidates
// (best first, the node's proposal order) but rules none out. Backends
// share it so that the API says the same whatever serves it.
func ExplainRequest(book *orderbook.Book, maker common.Address, id common.Hash, now time.Time, score func(common.Address) int64) (sdk.RequestDetail, error) {
	r, err := book.Get(id)
	if err != nil {
		return sdk.RequestDetail{}, err
	}
	if r == nil || r.Kind != orderbook.KindRequest || r.Maker != maker {
		return sdk.RequestDetail{}, fmt.Errorf("%w: %s is not one of this node's requests", orderbook.ErrNotFound, id.Hex())
	}
	shard, ids, err := book.ListWithIDs(orderbook.Query{Country: r.Shard()})
	if err != nil {
		return sdk.RequestDetail{}, err
	}
	d := sdk.RequestDetail{Request: r}
	for _, o := range shard {
		if o.Kind == orderbook.KindOffer {
			d.Offers++
		}
	}
	snap := matching.NewSnapshotWithIDs(append(shard, r), append(ids, r.ID()))
	vs, err := matching.Explain(snap, r, now, matching.Params{MaxCandidates: MaxCandidates})
	if err != nil {
		return sdk.RequestDetail{}, err
	}
	if vs == nil && r.Expires <= uint64(now.Unix()) {
		d.Expired = true
	}
	d.Candidates = Candidates(vs, score)
	d.Matched = len(d.Candidates) > 0 && d.Candidates[0].Reason == ""
	return d, nil
}

// Candidates converts Explain's verdicts, ranking the candidates (Reason
// empty) by score, best first, as the node proposes to them; equal scores
// keep the matcher's order, and the misses stay after them as Explain
// ranked them.
func Candidates(vs []matching.Verdict, score func(common.Address) int64) []sdk.Candidate {
	out := make([]sdk.Candidate, len(vs))
	for i, v := range vs {
		out[i] = sdk.Candidate{Offer: v.Offer, Reason: v.Reason.String(), Detail: v.Detail, IPs: v.IPs}
		if score != nil {
			out[i].Score = score(v.Offer.Maker)
		}
	}
	n := 0
	for n < len(out) && out[n].Reason == "" {
		n++
	}
	cands := out[:n]
	// Insertion sort: stable, and the lists are short.
	for i := 1; i < len(cands); i++ {
		for j := i; j > 0 && cands[j].Score > cands[j-1].Score; j-- {
			cands[j], cands[j-1] = cands[j-1], cands[j]
		}
	}
	return out
}
