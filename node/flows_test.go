package node_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/node"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// socksDial opens a SOCKS5 CONNECT to target through the proxy at addr
// with the proxy password (RFC 1929, an empty username: any route), the
// way any SOCKS client does.
func socksDial(proxy, pass string, target netip.AddrPort) (net.Conn, error) {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	req := append([]byte{5, 1, 2, 1, 0, byte(len(pass))}, pass...)
	req = append(req, 5, 1, 0, 1)
	ip := target.Addr().As4()
	req = append(req, ip[:]...)
	req = binary.BigEndian.AppendUint16(req, target.Port())
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	var hello [4]byte
	var reply [10]byte
	_, err = io.ReadFull(r, hello[:])
	if err == nil {
		_, err = io.ReadFull(r, reply[:])
	}
	if err != nil || hello != [4]byte{5, 2, 1, 0} || reply[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("socks5: hello %v reply %v: %v", hello, reply, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// flowDeal starts a provider and a requester with an active deal between
// them (the provider serving: it has the first voucher) and an echo server.
func flowDeal(t *testing.T) (prov, req *node.Node, target netip.AddrPort) {
	t.Helper()
	_, tn := startDealNet(t, 2, "DE")
	ctx := awaitCtx(t)
	prov, req = tn.Members[0].Node, tn.Members[1].Node
	if _, err := prov.CreateOffer(ctx, dealOffer("DE", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 1)
	r, err := req.CreateRequest(ctx, dealRequest("DE", 300))
	if err != nil {
		t.Fatal(err)
	}
	awaitDeal(t, ctx, req, r.ID().Hex(), "active")
	awaitDeal(t, ctx, prov, r.ID().Hex(), "active")
	return prov, req, echoServer(t)
}

// runFlows opens n SOCKS connections through req to the echo server at
// once and echoes a line over each, and returns each flow's error. With
// hold, every connection stays open until all have echoed (and the caller
// closes them); without, each closes after its echo.
func runFlows(t *testing.T, req *node.Node, target netip.AddrPort, n int, hold bool) ([]net.Conn, []error) {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := socksDial(req.SOCKSAddr().String(), req.ProxyPassword(), target)
			if err != nil {
				errs[i] = err
				return
			}
			if hold {
				conns[i] = c
			} else {
				defer c.Close()
			}
			msg := []byte(fmt.Sprintf("flow %d\n", i))
			back := make([]byte, len(msg))
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			if _, err := c.Write(msg); err != nil {
				errs[i] = err
			} else if _, err := io.ReadFull(c, back); err != nil || string(back) != string(msg) {
				errs[i] = fmt.Errorf("echo %q: %v", back, err)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() { closeAll(conns) })
	return conns, errs
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// logDeals logs both sides' deals, for a failure.
func logDeals(t *testing.T, nodes ...*node.Node) {
	ctx := awaitCtx(t)
	for _, n := range nodes {
		ds, _ := n.Deals(ctx)
		for _, d := range ds {
			full, _ := n.Deal(ctx, common.HexToHash(d.ID))
			t.Logf("%s deal: %s %s %s voucher %+v paid %s bytes %d %+v", full.Role, full.Status, full.Reason, full.Detail, full.Voucher, full.Paid, full.Bytes, full.History)
		}
	}
}

// TestManyTunnelFlows: one requester holds 200 proxied connections open
// through one provider at once, each its own tunnel stream over one libp2p
// connection. With go-libp2p's default limits the provider resets that
// requester's tunnel streams past about 70 (checked by removing the tunnel
// protocol's per-peer limit in node/limits.go: flow 72 on fail); IPSX
// allows 1,024.
func TestManyTunnelFlows(t *testing.T) {
	prov, req, target := flowDeal(t)
	_, errs := runFlows(t, req, target, 200, true)
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed < 3 {
				t.Errorf("flow %d: %v", i, err)
			}
			failed++
		}
	}
	if failed > 0 {
		logDeals(t, prov, req)
		t.Fatalf("%d of %d concurrent flows failed", failed, len(errs))
	}
}

// TestFlowsOverStreamLimit: a requester holding 300 proxied connections
// open through one provider at once gets 224 of them, the rest fail after
// a wait with a SOCKS error, and the deal goes on: once those close, new
// connections go through. Over QUIC a peer accepts at most 256 streams at
// once; without the requester's cap on flows per provider, the opens past
// that wait inside QUIC, the deal's next voucher among them, and the deal
// ends payment-stalled, taking every flow with it (checked with the cap
// lifted: 46 of 300 flows failed and the deal was over).
func TestFlowsOverStreamLimit(t *testing.T) {
	prov, req, target := flowDeal(t)
	conns, errs := runFlows(t, req, target, 300, true)
	ok := 0
	var refused error
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			refused = err
		}
	}
	if ok != node.MaxFlowsPerProvider {
		logDeals(t, prov, req)
		t.Fatalf("%d of 300 flows held open, want the cap of %d (a refused one: %v)", ok, node.MaxFlowsPerProvider, refused)
	}
	t.Logf("%d flows held, the others refused: %v", ok, refused)
	closeAll(conns)
	_, errs = runFlows(t, req, target, 10, false)
	for i, err := range errs {
		if err != nil {
			logDeals(t, prov, req)
			t.Fatalf("flow %d after the held ones closed: %v", i, err)
		}
	}
	ctx := awaitCtx(t)
	for _, n := range []*node.Node{prov, req} {
		ds, err := n.Deals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].Status != "active" {
			t.Errorf("after the flows: %+v, want one active deal", ds)
		}
	}
}
