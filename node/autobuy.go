package node

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/tunnel"
)

// Auto-buy: when a proxy connection's route has no active deal, the node
// places a request itself, within a budget per hour and a price limit, and
// holds the connection until a deal for the route is active or the wait
// times out. Off by default: a node spends nothing unless told to.
//
// The request carries the route's whole place: country, and region, city,
// ASN and IP type when the username names them. Matching compares region
// and city exactly, while usernames fold them ("los_angeles"), so the
// request takes their spelling from an offer in the book that matches
// the route. A credential with a cap is charged what the deal's time
// could cost at the price limit (its bytes are charged as they flow, see
// routeTunnel), and refused when that would pass its cap.

// AutoBuy configures auto-buy. Amounts are token base units.
type AutoBuy struct {
	// BudgetPerHour caps what the auto-bought deals of the last hour may
	// lock (their max amounts summed).
	BudgetPerHour *big.Int
	// MaxPricePerHour and MaxPricePerGB are the request's price limits.
	MaxPricePerHour *big.Int
	MaxPricePerGB   *big.Int
	// Duration of each auto-bought deal (default 10 minutes).
	Duration time.Duration
	// Wait is how long a connection is held for a deal (default 60 s).
	Wait time.Duration
}

var (
	ErrAutoBuyBudget    = errors.New("node: auto-buy budget for this hour is spent")
	ErrAutoBuyNoCountry = errors.New("node: auto-buy needs a country in the proxy username (country-XX)")
)

// autoBuyer tracks the requests auto-buy placed; its mutex guards them.
type autoBuyer struct {
	mu      sync.Mutex
	pending map[string]common.Hash // route's place (placeKey) -> request being filled
	spent   []spend
}

type spend struct {
	at     time.Time
	amount *big.Int
}

func (o AutoBuy) withDefaults() AutoBuy {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Wait <= 0 {
		o.Wait = 60 * time.Second
	}
	return o
}

// placeKey names what a route asks for, without its session.
func placeKey(r tunnel.Route) string {
	r.Session, r.SessTime = "", 0
	return r.String()
}

// autoBuy places (or reuses) a request for the route's place and waits
// for a deal that covers the route.
func (n *Node) autoBuy(ctx context.Context, r tunnel.Route, cred string) (common.Hash, error) {
	ab := n.o.autoBuy.withDefaults()
	if r.Country == "" {
		return common.Hash{}, ErrAutoBuyNoCountry
	}
	if err := n.placeAutoRequest(ctx, r, cred, ab); err != nil {
		return common.Hash{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, ab.Wait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, err := n.pickDeal(r, cred); err == nil {
			return id, nil
		}
		select {
		case <-wctx.Done():
			return common.Hash{}, fmt.Errorf("%w: auto-buy found no deal for %s within %s", tunnel.ErrNoRoute, r.String(), ab.Wait)
		case <-tick.C:
		}
	}
}

// requestPlace is the location and IP type a request for r asks for, with
// region and city spelt as a matching offer in the book spells them.
func (n *Node) requestPlace(r tunnel.Route) (orderbook.Location, string) {
	loc := orderbook.Location{Country: r.Country, Region: r.Region, City: r.City, ASN: r.ASN}
	typ := "any"
	if r.IPType != "" {
		typ = r.IPType
	}
	if r.Region == "" && r.City == "" {
		return loc, typ
	}
	offers, _ := n.book.List(orderbook.Query{Country: r.Country, Kind: orderbook.KindOffer})
	for _, o := range offers {
		if o.Maker != n.addr && r.Matches(o.Location, o.IPType) {
			if r.Region != "" {
				loc.Region = o.Location.Region
			}
			if r.City != "" {
				loc.City = o.Location.City
			}
			break
		}
	}
	return loc, typ
}

func (n *Node) placeAutoRequest(ctx context.Context, r tunnel.Route, cred string, ab AutoBuy) error {
	b := n.autoBuyer
	b.mu.Lock()
	defer b.mu.Unlock()
	key := placeKey(r)
	if id, ok := b.pending[key]; ok {
		if o, err := n.book.Get(id); err == nil && o.Expires > uint64(n.now().Unix()) {
			if !n.requestDone(id) {
				return nil // still being filled
			}
		}
	}
	loc, typ := n.requestPlace(r)
	p := sdk.RequestParams{
		Country: loc.Country, Region: loc.Region, City: loc.City, ASN: loc.ASN,
		IPType: typ, IPs: 1, Duration: uint32(ab.Duration / time.Second),
		MaxPricePerHour: ab.MaxPricePerHour.String(), MaxPricePerGB: ab.MaxPricePerGB.String(),
		TTL: uint32((ab.Duration + ab.Wait) / time.Second),
	}
	// What the deal could lock: its time cost at the price limit plus the
	// traffic budget, as termsFor computes it.
	timeCost := new(big.Int).Mul(ab.MaxPricePerHour, big.NewInt(int64(ab.Duration/time.Second)))
	timeCost.Div(timeCost, big.NewInt(3600))
	gb := n.o.deals.TrafficBudgetGB
	if gb == 0 {
		gb = 10
	}
	cost := new(big.Int).Add(timeCost, new(big.Int).Mul(ab.MaxPricePerGB, new(big.Int).SetUint64(gb)))
	now := n.now()
	total := new(big.Int).Set(cost)
	kept := b.spent[:0]
	for _, s := range b.spent {
		if now.Sub(s.at) < time.Hour {
			kept = append(kept, s)
			total.Add(total, s.amount)
		}
	}
	b.spent = kept
	if ab.BudgetPerHour == nil || total.Cmp(ab.BudgetPerHour) > 0 {
		return fmt.Errorf("%w: a %s deal could lock %s, budget %s per hour", ErrAutoBuyBudget, key, cost, ab.BudgetPerHour)
	}
	var auth *proxyAuth
	if n.tun != nil {
		auth = n.tun.auth
	}
	if err := auth.checkSpend(cred, timeCost); err != nil {
		return err
	}
	o, err := n.CreateRequest(ctx, p)
	if err != nil {
		return fmt.Errorf("auto-buy request for %s: %w", key, err)
	}
	b.spent = append(b.spent, spend{at: now, amount: cost})
	b.pending[key] = o.ID()
	auth.spend(cred, timeCost)
	n.log.Info("auto-buy placed a request", "route", key, "order", o.ID().Hex(), "duration", ab.Duration, "credential", cred)
	return nil
}

// requestDone reports whether a request's deal has ended (so a new one is
// needed): it had a deal that is over or whose provider is unreachable,
// or none is under way.
func (n *Node) requestDone(id common.Hash) bool {
	ds, err := n.Deals(context.Background())
	if err != nil {
		return false
	}
	for _, d := range ds {
		if d.RequestID != id.Hex() {
			continue
		}
		switch d.Status {
		case "funded", "active":
			// A deal whose provider does not answer serves nothing.
			return n.dealDown(common.HexToHash(d.ID))
		case "proposed", "accepted":
			return false
		case "completed", "settled", "refunded":
			return true
		}
	}
	return false
}
