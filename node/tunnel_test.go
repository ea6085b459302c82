package node_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/testnet"
	"github.com/ipsx/ipsx/tunnel"
)

// whoami serves, on loopback, the address each request came from: the
// provider's egress IP when it came through the tunnel.
func whoami(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprint(w, host)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func curl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (apt-get install curl); .ci/run installs it")
	}
	out, err := exec.CommandContext(t.Context(), "curl", append([]string{"-sS", "--max-time", "20"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTunnelEndToEnd: with deals active in DE and US, curl through the
// requester's SOCKS5 and HTTP proxies reaches a local server from the
// provider's egress IP; country routes land in their country; a sticky
// session keeps its IP while rotation spreads connections; a peer that is
// not the deal's requester cannot open a tunnel; the bytes are metered and
// paid by the vouchers.
func TestTunnelEndToEnd(t *testing.T) {
	_, tn := startDealNet(t, 3, "DE", "US")
	ctx := awaitCtx(t)
	de, us, req := tn.Members[0], tn.Members[1], tn.Members[2].Node
	for _, p := range []*testnet.Member{de, us} {
		if _, err := p.Node.CreateOffer(ctx, dealOffer(p.Country, 1, 1_000_000_000_000)); err != nil {
			t.Fatal(err)
		}
	}
	awaitOffers(t, ctx, req, 2)
	var dealIDs, requestIDs []string
	for _, cc := range []string{"DE", "US"} {
		r, err := req.CreateRequest(ctx, dealRequest(cc, 120))
		if err != nil {
			t.Fatal(err)
		}
		requestIDs = append(requestIDs, r.ID().Hex())
		dealIDs = append(dealIDs, awaitDeal(t, ctx, req, r.ID().Hex(), "active").ID)
	}
	deRequest := requestIDs[0]
	target := "http://" + whoami(t) + "/"
	socks, httpProxy := req.SOCKSAddr().String(), req.HTTPProxyAddr().String()
	pw := req.ProxyPassword()

	if got := curl(t, "--socks5-hostname", socks, "--proxy-user", "country-DE:"+pw, target); got != de.IP {
		t.Errorf("SOCKS5 country-DE: server saw %q, want %s", got, de.IP)
	}
	if got := curl(t, "--proxy", "http://"+httpProxy, "--proxy-user", "country-US:"+pw, target); got != us.IP {
		t.Errorf("HTTP proxy (plain) country-US: server saw %q, want %s", got, us.IP)
	}
	if got := curl(t, "--proxy", "http://"+httpProxy, "--proxytunnel", "--proxy-user", "country-DE:"+pw, target); got != de.IP {
		t.Errorf("HTTP CONNECT country-DE: server saw %q, want %s", got, de.IP)
	}
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		seen[curl(t, "--socks5-hostname", socks, "--proxy-user", "session-abc123:"+pw, target)]++
	}
	if len(seen) != 1 {
		t.Errorf("sticky session used %v, want one IP", seen)
	}
	seen = map[string]int{}
	for i := 0; i < 20; i++ {
		seen[curl(t, "--socks5-hostname", socks, "--proxy-user", ":"+pw, target)]++
	}
	if seen[de.IP] == 0 || seen[us.IP] == 0 {
		t.Errorf("rotation without a route used %v, want both providers", seen)
	}
	t.Logf("rotation spread 20 connections as %v", seen)
	// A country with no deal: a clear SOCKS failure, not a hang.
	cmd := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "20", "--socks5-hostname", socks, "--proxy-user", "country-JP:"+pw, target)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("country-JP with no deal there: curl succeeded: %s", out)
	}

	// The US provider is no requester of the DE deal: its tunnel stream for
	// that deal is refused.
	deDeal := common.HexToHash(dealIDs[0])
	s, err := us.Node.Host().NewStream(ctx, de.Node.PeerID(), tunnel.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tunnel.OpenStream(ctx, s, tunnel.Header{DealID: deDeal, Time: nowUTC(), Target: strings.TrimPrefix(strings.TrimSuffix(target, "/"), "http://")})
	if err == nil || !strings.Contains(err.Error(), "requester") {
		t.Errorf("stranger's tunnel for the DE deal: %v, want refused as not the requester", err)
	}

	// The traffic shows up in the deals and their vouchers.
	if err := testnet.Await(ctx, func() error {
		for _, id := range dealIDs {
			d, err := req.Deal(ctx, common.HexToHash(id))
			if err != nil {
				return err
			}
			if d.Bytes == 0 || d.Voucher == nil || d.Voucher.Bytes == 0 {
				return fmt.Errorf("deal %s: %d bytes metered, voucher %+v", id[:10], d.Bytes, d.Voucher)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Once the DE deal has ended, its requester cannot open a tunnel for it
	// any more, and the proxy has no route to DE.
	if _, err := req.CloseDeal(ctx, deDeal); err != nil {
		t.Fatal(err)
	}
	awaitDeal(t, ctx, de.Node, deRequest, "settled")
	s, err = req.Host().NewStream(ctx, de.Node.PeerID(), tunnel.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tunnel.OpenStream(ctx, s, tunnel.Header{DealID: deDeal, Time: nowUTC(), Target: strings.TrimPrefix(strings.TrimSuffix(target, "/"), "http://")})
	if err == nil || !errors.Is(err, tunnel.ErrDealInactive) {
		t.Errorf("tunnel for an ended deal: %v, want refused as inactive", err)
	}
	cmd = exec.CommandContext(ctx, "curl", "-sS", "--max-time", "20", "--socks5-hostname", socks, "--proxy-user", "country-DE:"+pw, target)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("country-DE after its deal ended: curl succeeded: %s", out)
	}
}

func nowUTC() time.Time { return time.Now().UTC() }

// TestTunnelBigDownload: 100 MiB through the SOCKS5 proxy arrive
// byte-exact, and the deal's bytes are metered and paid for.
func TestTunnelBigDownload(t *testing.T) {
	const size = 100 << 20
	_, tn := startDealNet(t, 2, "DE")
	ctx := awaitCtx(t)
	prov, req := tn.Members[0], tn.Members[1].Node
	// Bytes cost what the testnet charges (0.01 token per GB), so the
	// vouchers must keep pace with the transfer: the provider pauses the
	// stream whenever the paid-ahead bytes run out.
	offer := dealOffer("DE", 1, 1_000_000_000_000)
	offer.PricePerGB = "10000000000000000"
	if _, err := prov.Node.CreateOffer(ctx, offer); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	rp := dealRequest("DE", 300)
	rp.MaxPricePerGB = "100000000000000000"
	r, err := req.CreateRequest(ctx, rp)
	if err != nil {
		t.Fatal(err)
	}
	d := awaitDeal(t, ctx, req, r.ID().Hex(), "active")
	// A deterministic 100 MiB body, and its hash.
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*7 + i>>13)
	}
	want := sha256.Sum256(body)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "big")
	// A hang guard, not a speed check: 100 MB under the race detector on a
	// loaded 2-core machine take a while.
	curl(t, "--max-time", "180", "--socks5-hostname", req.SOCKSAddr().String(), "--proxy-user", ":"+req.ProxyPassword(), "-o", out, "http://"+ln.Addr().String()+"/")
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size || sha256.Sum256(got) != want {
		t.Fatalf("downloaded %d bytes, hash differs or size != %d", len(got), size)
	}
	if err := testnet.Await(ctx, func() error {
		pd, err := prov.Node.Deal(ctx, common.HexToHash(d.ID))
		if err != nil {
			return err
		}
		if pd.Bytes < size || pd.Voucher == nil || pd.Voucher.Bytes < size {
			return fmt.Errorf("provider metered %d bytes, latest voucher %+v", pd.Bytes, pd.Voucher)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pd, _ := prov.Node.Deal(ctx, common.HexToHash(d.ID))
	t.Logf("provider metered %d bytes; voucher pays %s for %d bytes", pd.Bytes, pd.Voucher.Amount, pd.Voucher.Bytes)
	// The voucher pays at least the bytes' price: 100 MiB at 0.01 token/GB.
	paid, _ := new(big.Int).SetString(pd.Voucher.Amount, 10)
	byteCost := new(big.Int).Div(new(big.Int).Mul(big.NewInt(size), big.NewInt(10_000_000_000_000_000)), big.NewInt(1_000_000_000))
	if paid.Cmp(byteCost) < 0 {
		t.Errorf("voucher pays %s, the bytes alone cost %s", paid, byteCost)
	}
}

// TestAutoBuy: a requester with auto-buy on (as testnet requesters are)
// holds a proxy connection for a route it has no deal for, buys one within
// its budget, and serves the connection through it. The route names a city
// (folded: "berlin" for the offer's "Berlin") and an IP type, and the
// request auto-buy places asks for both, spelt as the offer spells them. A
// country nobody offers fails with a clear proxy error once the wait is
// over.
func TestAutoBuy(t *testing.T) {
	dc := startGraceChain(t)
	ab := testnet.DefaultAutoBuy()
	ab.Wait = 20 * time.Second
	tn := startTestnet(t, testnet.Config{Providers: 1, Requesters: 1, Countries: []string{"DE"}, DevChain: dc,
		AutoBuy: &ab, NodeOptions: []node.Option{node.WithDeals(dealTestConfig)},
		Offer: func(i int, cc string) sdk.OfferParams {
			o := testnet.DefaultOffer(i, cc)
			o.City, o.IPType = "Berlin", "mobile"
			return o
		}})
	prov, req := tn.Members[0], tn.Members[1].Node
	actx := awaitCtx(t)
	awaitOffers(t, actx, req, 1)
	target := "http://" + whoami(t) + "/"
	pw := req.ProxyPassword()
	if got := curl(t, "--max-time", "60", "--socks5-hostname", req.SOCKSAddr().String(), "--proxy-user", "customer-x-cc-de-city-berlin-type-mobile:"+pw, target); got != prov.IP {
		t.Errorf("auto-bought DE Berlin mobile route: server saw %q, want %s", got, prov.IP)
	}
	ds, _ := req.Deals(actx)
	if len(ds) != 1 {
		t.Fatalf("auto-buy made %d deals, want 1", len(ds))
	}
	r, err := req.Order(actx, common.HexToHash(ds[0].RequestID))
	if err != nil {
		t.Fatal(err)
	}
	if r.Location.Country != "DE" || r.Location.City != "Berlin" || r.IPType.String() != "mobile" {
		t.Errorf("auto-buy's request asks for %+v %s, want DE, Berlin, mobile", r.Location, r.IPType)
	}
	// The same place again: the deal serves it, no second purchase.
	if got := curl(t, "--proxy", "http://"+req.HTTPProxyAddr().String(), "--proxy-user", "country-DE-city-berlin:"+pw, target); got != prov.IP {
		t.Errorf("second connection: server saw %q", got)
	}
	if ds, _ := req.Deals(actx); len(ds) != 1 {
		t.Errorf("%d deals after a second connection, want 1", len(ds))
	}
	out, err := exec.CommandContext(actx, "curl", "-sS", "--fail", "--max-time", "60", "--proxy", "http://"+req.HTTPProxyAddr().String(), "--proxy-user", "country-JP:"+pw, target).CombinedOutput()
	if err == nil {
		t.Errorf("auto-buy in a country nobody offers succeeded: %s", out)
	}
	t.Logf("no JP provider: %s", strings.TrimSpace(string(out)))
}

// TestTunnelBeforeProviderStarts: the requester starts routing as it signs
// its first voucher, so a proxied connection can reach the provider before
// the provider has started the deal (here its clock runs 4 s behind, so it
// holds the voucher until the deal's start comes on its clock). The
// provider answers "not paid" rather than "inactive", and the requester
// holds the connection until the deal is served instead of failing it.
func TestTunnelBeforeProviderStarts(t *testing.T) {
	dc := startGraceChain(t)
	behind := func() time.Time { return time.Now().Add(-4 * time.Second) }
	tn := startTestnet(t, testnet.Config{Providers: 1, Requesters: 1, Countries: []string{"DE"}, DevChain: dc,
		NodeOptions: []node.Option{node.WithDeals(dealTestConfig)}, Logger: testLogger(t),
		Offer: func(int, string) sdk.OfferParams { return dealOffer("DE", 1, 1_000_000_000_000) },
		MemberOptions: func(i int) []node.Option {
			if i == 0 {
				return []node.Option{node.WithClock(behind)}
			}
			return nil
		}})
	prov, req := tn.Members[0], tn.Members[1].Node
	ctx := awaitCtx(t)
	awaitOffers(t, ctx, req, 1)
	r, err := req.CreateRequest(ctx, dealRequest("DE", 120))
	if err != nil {
		t.Fatal(err)
	}
	d := awaitDeal(t, ctx, req, r.ID().Hex(), "active")
	target := "http://" + whoami(t) + "/"
	if got := curl(t, "--socks5-hostname", req.SOCKSAddr().String(), "--proxy-user", ":"+req.ProxyPassword(), target); got != prov.IP {
		t.Errorf("first connection of the deal: server saw %q, want %s", got, prov.IP)
	}
	pd, err := prov.Node.Deal(ctx, common.HexToHash(d.ID))
	if err != nil {
		t.Fatal(err)
	}
	if pd.Status != "active" {
		t.Errorf("provider's deal is %s after serving, want active", pd.Status)
	}
}

// TestEgressPool: a provider renting out two IPs binds each deal to its
// own exit IP.
func TestEgressPool(t *testing.T) {
	dc := startGraceChain(t)
	pool := []netip.Addr{netip.MustParseAddr("127.0.0.61"), netip.MustParseAddr("127.0.0.62")}
	tn := startTestnet(t, testnet.Config{Providers: 1, Requesters: 1, Countries: []string{"DE"}, DevChain: dc,
		NodeOptions: []node.Option{node.WithDeals(dealTestConfig)},
		Offer:       func(int, string) sdk.OfferParams { return dealOffer("DE", 2, 1_000_000_000_000) },
		MemberOptions: func(i int) []node.Option {
			if i == 0 {
				return []node.Option{node.WithEgressPool(pool...)}
			}
			return nil
		}})
	req := tn.Members[1].Node
	actx := awaitCtx(t)
	for i := 0; i < 2; i++ {
		awaitOffers(t, actx, req, 1)
		r, err := req.CreateRequest(actx, dealRequest("DE", 120))
		if err != nil {
			t.Fatal(err)
		}
		awaitDeal(t, actx, req, r.ID().Hex(), "active")
	}
	target := "http://" + whoami(t) + "/"
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		seen[curl(t, "--socks5-hostname", req.SOCKSAddr().String(), "--proxy-user", ":"+req.ProxyPassword(), target)]++
	}
	if len(seen) != 2 || seen[pool[0].String()] == 0 || seen[pool[1].String()] == 0 {
		t.Errorf("two deals on a two-IP provider exited from %v, want each from its own of %v", seen, pool)
	}
}

// TestRouteLeavesDeadProvider: a requester with auto-buy routes a country
// through the deal it bought; that deal's provider then goes away. The
// next connection for the country does not fail on the dead provider: the
// deal is set aside and auto-buy buys from the other provider, which
// serves it.
func TestRouteLeavesDeadProvider(t *testing.T) {
	dc := startGraceChain(t)
	ab := testnet.DefaultAutoBuy()
	ab.Wait = 60 * time.Second
	tn := startTestnet(t, testnet.Config{Providers: 2, Requesters: 1, Countries: []string{"DE"}, DevChain: dc,
		AutoBuy: &ab, NodeOptions: []node.Option{node.WithDeals(dealTestConfig)}, Logger: testLogger(t)})
	req := tn.Members[2].Node
	ctx := awaitCtx(t)
	awaitOffers(t, ctx, req, 2)
	target := "http://" + whoami(t) + "/"
	user := "country-DE:" + req.ProxyPassword()
	first := curl(t, "--max-time", "90", "--socks5-hostname", req.SOCKSAddr().String(), "--proxy-user", user, target)
	var dead, other *testnet.Member
	for _, m := range tn.Members[:2] {
		if m.IP == first {
			dead = m
		} else {
			other = m
		}
	}
	if dead == nil {
		t.Fatalf("the first connection left from %q, not from a provider", first)
	}
	if err := dead.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := curl(t, "--max-time", "120", "--socks5-hostname", req.SOCKSAddr().String(), "--proxy-user", user, target); got != other.IP {
		t.Errorf("after %s went away: server saw %q, want the other provider %s", dead.IP, got, other.IP)
	}
}
