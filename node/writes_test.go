package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/testnet"
)

// failedWrites records every log line at warn or above whose text or
// attributes mention a failed database write, so tests can assert that a
// node never dropped one.
type failedWrites struct {
	mu    sync.Mutex
	lines []string
}

func (f *failedWrites) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (f *failedWrites) WithAttrs([]slog.Attr) slog.Handler           { return f }
func (f *failedWrites) WithGroup(string) slog.Handler                { return f }
func (f *failedWrites) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	s := b.String()
	if strings.Contains(s, "Writes are blocked") || strings.Contains(s, "persist deals") ||
		strings.Contains(s, "save chain cursor") || strings.Contains(s, "sync database") {
		f.mu.Lock()
		f.lines = append(f.lines, s)
		f.mu.Unlock()
	}
	return nil
}

func (f *failedWrites) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range f.lines {
		if i == 5 {
			t.Errorf("... and %d more", len(f.lines)-5)
			break
		}
		t.Errorf("failed write: %s", l)
	}
}

// TestAddressBookDoesNotBlockWrites: saving the address book over and over
// while a deal is negotiated, funded and paid by vouchers and while orders
// are published never makes another write of the node fail (badger's
// DropPrefix blocked every write in the process while it ran).
func TestAddressBookDoesNotBlockWrites(t *testing.T) {
	fw := &failedWrites{}
	dc := startGraceChain(t)
	tn := startTestnet(t, testnet.Config{Nodes: 2, Countries: []string{"DE"}, DevChain: dc,
		NodeOptions: []node.Option{node.WithDeals(dealTestConfig)}, Logger: slog.New(fw)})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	prov, req := tn.Members[0].Node, tn.Members[1].Node

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var saves int
	var saveErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, n := range []*node.Node{prov, req} {
				if err := n.SaveAddressBook(); err != nil && saveErr == nil {
					saveErr = err
				}
			}
			saves++
		}
	}()
	stopSaver := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSaver()

	if _, err := prov.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	r, err := req.CreateRequest(ctx, dealRequest("DE", 8))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if _, err := prov.CreateOffer(ctx, offerParams("DE")); err != nil {
			t.Fatalf("publish order %d while the address book is saved: %v", i, err)
		}
	}
	awaitDeal(t, ctx, prov, r.ID().Hex(), "active")
	awaitDeal(t, ctx, req, r.ID().Hex(), "settled")
	stopSaver()
	if saveErr != nil {
		t.Errorf("save address book: %v", saveErr)
	}
	t.Logf("address book saved %d times on both nodes", saves)
	fw.check(t)
}

// TestProxyFailureEndsRun: a SOCKS listener that dies under a running
// requester ends Run with its error, instead of a node that looks healthy
// and proxies nothing (it used to be ignored).
func TestProxyFailureEndsRun(t *testing.T) {
	dc := startGraceChain(t)
	dir := t.TempDir()
	cfg := node.Config{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, SOCKS: "127.0.0.1:0", HTTP: "off",
		ChainID: dc.Contracts().ChainID.Uint64(), Escrow: dc.Contracts().Escrow.Hex()}
	k, err := ethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(dir, "", cfg, node.WithKey(k), node.WithoutAPI(), node.WithChain(dc.Client(), dc.Contracts()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	if err := n.BreakSOCKSListener(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "proxy on 127.0.0.1") {
			t.Fatalf("Run returned %v, want the proxy's error", err)
		}
	case <-ctx.Done():
		t.Fatal("Run went on with its SOCKS proxy gone")
	}
}
