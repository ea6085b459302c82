package deals

import (
	"context"
	"errors"
	mathbig "math/big"
	"sync/atomic"
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

// gateStore holds SaveDeals, once armed, until the gate opens.
type gateStore struct {
	*memStore
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (s *gateStore) SaveDeals(recs []*Record) error {
	if s.armed.CompareAndSwap(true, false) {
		close(s.entered)
		<-s.gate
	}
	return s.memStore.SaveDeals(recs)
}

// TestReceiveGivenUp: a Receive whose context ends while the loop is in
// the middle of it returns the context's error, and nothing of what the
// loop goes on to write is read by the caller (the race detector caught
// the reply read after giving up, racing with the loop's write of it).
func TestReceiveGivenUp(t *testing.T) {
	store := &gateStore{memStore: newMemStore(), entered: make(chan struct{}), gate: make(chan struct{})}
	cfg := simConfig(simKey("r"))
	d, err := New(cfg, store, idleTransport{}, idleChain{}, noOffers{}, &simHooks{serving: map[common.Hash]bool{}, meter: map[common.Hash]uint64{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	p := simKey("p")
	offer := &orderbook.Order{Kind: orderbook.KindOffer, Maker: p.Address(), Nonce: 1, IPs: 1,
		PricePerHour: bigInt(3600), PricePerGB: bigInt(1000), MinDuration: 5, MaxDuration: 3600, Expires: uint64(time.Now().Unix()) + 3600}
	req := &orderbook.Order{Kind: orderbook.KindRequest, Maker: simKey("r").Address(), Nonce: 1, IPs: 1, Duration: 60,
		Expires: uint64(time.Now().Unix()) + 3600}
	fill := matching.Fill{OfferID: offer.ID(), RequestID: req.ID(), Offer: offer, IPs: 1, PricePerHour: offer.PricePerHour, PricePerGB: offer.PricePerGB}
	if err := d.do(ctx, func(c *core) error { return c.propose(cfg.Now(), req, fill) }); err != nil {
		t.Fatal(err)
	}
	recs := d.Deals()
	if len(recs) != 1 {
		t.Fatalf("%d deals after the proposal, want 1", len(recs))
	}
	// An ack with the provider's status makes the record dirty: its save
	// is held while the caller gives up.
	store.armed.Store(true)
	rctx, rcancel := context.WithCancel(ctx)
	// The save is let go as the caller gives up: the loop's write of the
	// reply is not ordered after the caller's return.
	go func() { <-store.entered; rcancel(); close(store.gate) }()
	reply, err := d.Receive(rctx, p.Address(), Peer{}, agreement.Packet{Acks: []agreement.Ack{{DealID: recs[0].Deal.ID, Seq: 0, Status: agreement.StatusAccepted}}})
	switch {
	case err == nil: // the loop was quicker than the cancel: nothing to check
	case !errors.Is(err, context.Canceled) || !reply.Empty():
		t.Fatalf("Receive given up: %+v, %v; want an empty reply and context.Canceled", reply, err)
	}
	// The loop finishes the packet: the next command goes through.
	if _, err := d.Available(ctx, 1); err != nil {
		t.Fatal(err)
	}
}
