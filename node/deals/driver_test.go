package deals

import (
	"context"
	"errors"
	mathbig "math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"go.uber.org/goleak"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A chain and a transport that answer nothing: the driver's shell alone.
type idleChain struct{}

func (idleChain) Submit(ctx context.Context, tx agreement.Tx) error { <-ctx.Done(); return ctx.Err() }
func (idleChain) Classify(error) TxOutcome                          { return TxRetry }
func (idleChain) Events(context.Context, uint64, uint64) ([]Event, error) {
	return nil, nil
}
func (idleChain) Header(context.Context, *uint64) (Header, error) {
	return Header{Number: 10, Time: uint64(time.Now().Unix())}, nil
}

type idleTransport struct{}

func (idleTransport) Exchange(ctx context.Context, _ common.Address, _ Peer, _ agreement.Packet) (agreement.Packet, Peer, error) {
	return agreement.Packet{}, Peer{}, errors.New("unreachable")
}

type noOffers struct{}

func (noOffers) OwnRequests() []*orderbook.Order                        { return nil }
func (noOffers) Candidates(*orderbook.Order, time.Time) []matching.Fill { return nil }
func (noOffers) Reachable(common.Address) bool                          { return false }
func (noOffers) RequestOpen(common.Hash) bool                           { return true }

// TestSaveFailureStopsDriver: a record that cannot be saved is not acted
// on; the driver stops with ErrStore instead (the node's Run then ends
// with it). A disk that fails is a failure a test cannot cause for real.
func TestSaveFailureStopsDriver(t *testing.T) {
	store := newMemStore()
	cfg := simConfig(simKey("r"))
	cfg.Tick = 10 * time.Millisecond
	d, err := New(cfg, store, idleTransport{}, idleChain{}, noOffers{}, &simHooks{serving: map[common.Hash]bool{}, meter: map[common.Hash]uint64{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	p := simKey("p")
	offer := &orderbook.Order{Kind: orderbook.KindOffer, Maker: p.Address(), Nonce: 1, IPs: 1,
		PricePerHour: bigInt(3600), PricePerGB: bigInt(1000), MinDuration: 5, MaxDuration: 3600, Expires: uint64(time.Now().Unix()) + 3600}
	req := &orderbook.Order{Kind: orderbook.KindRequest, Maker: simKey("r").Address(), Nonce: 1, IPs: 1, Duration: 60,
		Expires: uint64(time.Now().Unix()) + 3600}
	fill := matching.Fill{OfferID: offer.ID(), RequestID: req.ID(), Offer: offer, IPs: 1, PricePerHour: offer.PricePerHour, PricePerGB: offer.PricePerGB}
	store.fail = true
	err = d.do(ctx, func(c *core) error { return c.propose(cfg.Now(), req, fill) })
	if !errors.Is(err, ErrStore) {
		t.Fatalf("propose with a failing store: %v, want ErrStore", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrStore) {
			t.Fatalf("Run returned %v, want ErrStore", err)
		}
	case <-ctx.Done():
		t.Fatal("the driver went on after a failed save")
	}
	if len(store.recs) != 0 {
		t.Fatalf("records on disk: %d", len(store.recs))
	}
	if err := d.Close(context.Background(), common.Hash{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("a command after the stop: %v, want ErrStopped", err)
	}
}

func bigInt(v int64) *mathbig.Int { return mathbig.NewInt(v) }
