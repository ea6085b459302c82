package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

func startTestnet(t *testing.T, cfg testnet.Config) *testnet.Testnet {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	// Twelve nodes with a dev chain start in seconds; the bound is for a
	// loaded machine under the race detector.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tn, err := testnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tn.Close(); err != nil {
			t.Error(err)
		}
	})
	return tn
}

func awaitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func offerParams(cc string) sdk.OfferParams {
	return sdk.OfferParams{
		Country: cc, IPType: "residential", IPs: 2,
		PricePerHour: "1000", PricePerGB: "50",
		MinDuration: 60, MaxDuration: 86400, Bandwidth: 100,
	}
}

// has reports whether member m's book holds the order.
func has(m *testnet.Member, id common.Hash) bool { return m.Node.Book().Has(id) }

// TestShardPropagation: 12 nodes over 3 shards; an order reaches every node
// subscribed to its shard and no other; a late joiner gets the live book
// through order sync.
func TestShardPropagation(t *testing.T) {
	shards := []string{"DE", "US", "JP"}
	subs := func(i int) []string {
		s := []string{shards[i%3]}
		if i%4 == 0 { // a few nodes follow two shards
			s = append(s, shards[(i+1)%3])
		}
		return s
	}
	tn := startTestnet(t, testnet.Config{Nodes: 12, Countries: shards, Subscribe: subs})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 2); err != nil {
		t.Fatal(err)
	}
	subscribed := func(i int, cc string) bool {
		for _, s := range subs(i) {
			if s == cc {
				return true
			}
		}
		return false
	}

	// Node 0 follows DE and US; publish a DE offer through it.
	de, err := tn.Members[0].Node.CreateOffer(ctx, offerParams("DE"))
	if err != nil {
		t.Fatal(err)
	}
	// Node 1 follows US only; publish a US request through it.
	us, err := tn.Members[1].Node.CreateRequest(ctx, sdk.RequestParams{
		Country: "US", IPType: "any", IPs: 1, Duration: 3600, MaxPricePerHour: "2000", MaxPricePerGB: "100",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*orderbook.Order{de, us} {
		if err := testnet.Await(ctx, func() error {
			for i, m := range tn.Members {
				if subscribed(i, o.Shard()) && !has(m, o.ID()) {
					return fmt.Errorf("%s (subscribed to %s) lacks %s", m.Name, o.Shard(), o.ID().Hex())
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range tn.Members {
		for _, o := range []*orderbook.Order{de, us} {
			if !subscribed(i, o.Shard()) && has(m, o.ID()) {
				t.Errorf("%s is not subscribed to %s but got %s", m.Name, o.Shard(), o.ID().Hex())
			}
		}
	}

	// A late joiner following DE gets the DE book by order sync (gossip
	// carries no history).
	late, err := tn.Add(ctx, "DE", []string{"DE"})
	if err != nil {
		t.Fatal(err)
	}
	if err := testnet.Await(ctx, func() error {
		if !has(late, de.ID()) {
			return fmt.Errorf("late joiner lacks %s", de.ID().Hex())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if has(late, us.ID()) {
		t.Errorf("late joiner (DE only) got the US request")
	}
}
