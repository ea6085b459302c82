package node_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/testnet"
	"github.com/ipsx/ipsx/tunnel"
)

// TestUDPThroughDeal: a requester's UDP flow goes through the deal of its
// route and reaches the target from the provider's egress IP, metered for
// the deal; a provider whose offer carries tcp only refuses UDP flows.
func TestUDPThroughDeal(t *testing.T) {
	_, tn := startDealNet(t, 3, "DE", "US")
	ctx := awaitCtx(t)
	de, us, req := tn.Members[0], tn.Members[1], tn.Members[2].Node
	withUDP := dealOffer("DE", 1, 1_000_000_000_000)
	withUDP.Protocols = []string{"tcp", "udp"}
	if _, err := de.Node.CreateOffer(ctx, withUDP); err != nil {
		t.Fatal(err)
	}
	if _, err := us.Node.CreateOffer(ctx, dealOffer("US", 1, 1_000_000_000_000)); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 2)
	var deDeal string
	for _, cc := range []string{"DE", "US"} {
		p := dealRequest(cc, 120)
		if cc == "DE" {
			p.Protocols = []string{"tcp", "udp"}
		}
		r, err := req.CreateRequest(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		d := awaitDeal(t, ctx, req, r.ID().Hex(), "active")
		if cc == "DE" {
			deDeal = d.ID
		}
	}

	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	seen := make(chan string, 10)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			seen <- from.Addr().String()
			_, _ = echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()

	c, err := req.RouteUDP(ctx, tunnel.Route{Country: "DE"}, echo.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello over udp")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "hello over udp" {
		t.Fatalf("echo over the DE deal: %q %v", buf[:n], err)
	}
	if from := <-seen; from != de.IP {
		t.Fatalf("the target saw the datagram from %s, want the DE provider's %s", from, de.IP)
	}
	_ = c.Close()
	if err := testnet.Await(ctx, func() error {
		d, err := req.Deal(ctx, common.HexToHash(deDeal))
		if err != nil {
			return err
		}
		if d.Bytes < 28 {
			return errors.New("UDP bytes not metered yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	_, err = req.RouteUDP(ctx, tunnel.Route{Country: "US"}, echo.LocalAddr().String())
	if !errors.Is(err, tunnel.ErrNotAllowed) || !strings.Contains(err.Error(), "tcp only") {
		t.Fatalf("UDP over a tcp-only deal: %v, want refused by the provider", err)
	}
	select {
	case from := <-seen:
		t.Fatalf("a datagram reached the target from %s through the tcp-only deal", from)
	default:
	}
}
