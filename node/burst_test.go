package node_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/testnet"
	dto "github.com/prometheus/client_model/go"
)

// counter sums a counter family of a node's registry (for a histogram,
// its observation count), optionally only the series whose labels include
// all of want.
func counter(t *testing.T, n *node.Node, name string, want ...string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, want) {
				// A histogram counts its observations.
				sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want []string) bool {
	for _, w := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetValue() == w {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestBurstDelivered: 1,000 orders published at once through one node reach
// every node of the shard by gossip alone — heartbeats are slowed so that no
// digest repair can hide a loss — and no drop is counted anywhere.
func TestBurstDelivered(t *testing.T) {
	const burst = 1000
	tn := startTestnet(t, testnet.Config{
		Nodes: 6, Countries: []string{"DE"},
		NodeOptions: []node.Option{node.WithLiveness(time.Hour, 30*time.Minute)},
	})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 5); err != nil {
		t.Fatal(err)
	}
	// Join-time syncs are over, so every order below arrives by gossip.
	if err := tn.AwaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	src := tn.Members[0].Node
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  []string
		errs []error
	)
	work := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				p := offerParams("DE")
				p.IPs = uint32(1 + i%100)
				o, err := src.CreateOffer(ctx, p)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ids = append(ids, o.ID().Hex())
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < burst; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d publishes failed, first: %v", len(errs), errs[0])
	}
	if err := testnet.Await(ctx, func() error {
		for _, m := range tn.Members[1:] {
			if got := counter(t, m.Node, "ipsx_gossip_messages_total", "offer", "accept"); got < burst {
				return fmt.Errorf("%s accepted %v of %d offers", m.Name, got, burst)
			}
		}
		return nil
	}); err != nil {
		for _, m := range tn.Members {
			t.Logf("%s: drops %v", m.Name, counter(t, m.Node, "ipsx_gossip_dropped_total"))
		}
		t.Fatal(err)
	}
	for _, m := range tn.Members {
		if d := counter(t, m.Node, "ipsx_gossip_dropped_total"); d != 0 {
			t.Errorf("%s counted %v dropped messages", m.Name, d)
		}
		if p := counter(t, m.Node, "ipsx_ordersync_digest_pulls_total"); p != 0 {
			t.Errorf("%s repaired by %v digest pulls: gossip lost something", m.Name, p)
		}
		got, err := m.Node.Book().List(orderbook.Query{Country: "DE", Kind: orderbook.KindOffer})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != burst {
			t.Errorf("%s holds %d offers, want %d", m.Name, len(got), burst)
		}
	}
}
