//go:build !nodevchain

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
	"github.com/spf13/cobra"
)

func demoCommand(a *app) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the local demo: a dev chain, providers and a requester on loopback",
		Long: `demo starts an embedded dev chain (a real EVM with the IPSX token and
escrow deployed), three providers in two countries and a requester, each a
full node on its own 127.0.0.x address; the providers publish offers, the
requester a request; it shows the offers arriving over gossip at the
requester and the requester's ranked candidates from the deterministic
matcher, then stops everything (or keeps it running with --keep).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the network running until interrupted")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, keep bool) error {
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "ipsx-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("starting the embedded dev chain (a real EVM) with the IPSX token and escrow")
	dc, rpcURL, stopChain, err := serveDevChain(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stopChain()
	c := dc.Contracts()
	fmt.Fprintf(out, "    chain id %s, JSON-RPC %s\n    token  %s\n    escrow %s\n", c.ChainID, rpcURL, c.Token.Hex(), c.Escrow.Hex())

	step("starting 3 providers (DE, US, DE) and 1 requester, each on its own 127.0.0.x, funded from the chain")
	fmt.Fprintln(out, "    (testnet only: providers may reach loopback, so a local server stands in for the internet)")
	prices := []string{"3600000000000000", "1800000000000000", "7200000000000000"} // per IP-hour: 0.0036, 0.0018, 0.0072 tok
	tn, err := testnet.Start(ctx, testnet.Config{
		Dir: dir, Providers: 3, Requesters: 1, Countries: []string{"DE", "US"},
		DevChain: dc, Chain: &testnet.ChainInfo{RPC: rpcURL},
		Offer: func(i int, cc string) sdk.OfferParams {
			o := testnet.DefaultOffer(i, cc)
			o.PricePerHour = prices[i%len(prices)]
			return o
		},
	})
	if err != nil {
		return err
	}
	defer tn.Close()
	requester := tn.Members[3]
	for _, m := range tn.Members {
		cc := m.Country
		if m.Role == "requester" {
			cc = "--"
		}
		fmt.Fprintf(out, "    %-6s %-9s %s  %s  %s\n", m.Name, m.Role, m.IP, cc, m.Node.Address().Hex())
	}
	rcl := sdk.NewClient("http://"+requester.Node.APIAddr().String(), requester.Node.Token())
	w, err := rcl.Wallet(ctx)
	if err != nil {
		return err
	}
	step("the requester's wallet: %s in the escrow, %s in its wallet", tokens(w.Free), tokens(w.Balance))

	step("waiting for the providers' offers to reach the requester over gossip")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := testnet.Await(wctx, func() error {
		book, err := rcl.Book(wctx, "DE")
		if err != nil || len(book) < 2 {
			return fmt.Errorf("requester sees %d DE offers", len(book))
		}
		return nil
	}); err != nil {
		return err
	}
	book, err := rcl.Book(ctx, "DE")
	if err != nil {
		return err
	}
	for _, o := range book {
		fmt.Fprintf(out, "    offer %s… by %s: %d IPs at %s/IP-hour\n", o.ID().Hex()[:18], o.Maker.Hex(), o.IPs, tokens(o.PricePerHour.String()))
	}

	step("requester asks for 1 DE IP for 60 s; its node matches, proposes, funds the deal in escrow")
	req, err := rcl.CreateRequest(ctx, sdk.RequestParams{
		Country: "DE", IPType: "any", IPs: 1, Duration: 60,
		MaxPricePerHour: "10000000000000000", MaxPricePerGB: "100000000000000000",
	})
	if err != nil {
		return fmt.Errorf("create request: %w", err)
	}
	deal, err := awaitDealStatus(ctx, rcl, req.ID().Hex(), "active")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "    deal %s is active: provider %s at %s/IP-hour, %s locked\n", deal.ID, deal.Provider, tokens(deal.PricePerHour), tokens(deal.MaxAmount))

	step("fetching a page from a local server through the requester's SOCKS5 proxy with curl")
	srv, addr, err := whoamiServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	socks := requester.Node.SOCKSAddr().String()
	// The username picks the route, the password is the requester's proxy
	// password (ipsx proxy password; in testnet.json).
	user := "country-DE:" + requester.Node.ProxyPassword()
	fmt.Fprintf(out, "    $ curl --socks5-hostname %s --proxy-user %s http://%s/\n", socks, user, addr)
	page, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "30", "--socks5-hostname", socks, "--proxy-user", user, "http://"+addr+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("curl: %v: %s", err, page)
	}
	fmt.Fprintf(out, "    %s\n", strings.TrimSpace(string(page)))

	step("waiting for the traffic to show in a voucher (the requester pays ahead, the provider meters)")
	if err := testnet.Await(wctx, func() error {
		d, err := rcl.Deal(wctx, common.HexToHash(deal.ID))
		if err != nil {
			return err
		}
		if d.Voucher == nil || d.Voucher.Bytes == 0 {
			return fmt.Errorf("no voucher with bytes yet")
		}
		return nil
	}); err != nil {
		return err
	}

	step("closing the deal: the provider settles on chain with the last voucher")
	if _, err := rcl.CloseDeal(ctx, common.HexToHash(deal.ID)); err != nil {
		return err
	}
	settled, err := awaitDealStatus(ctx, rcl, req.ID().Hex(), "settled")
	if err != nil {
		return err
	}
	if v := settled.Voucher; v != nil {
		fmt.Fprintf(out, "    last voucher: %s for %d bytes (connection log %s…)\n", tokens(v.Amount), v.Bytes, v.ConnLogHash[:18])
	}
	fmt.Fprintf(out, "    settled on chain: %s paid, %s commission to the treasury\n", tokens(settled.Settled), tokens(settled.Commission))
	for _, e := range settled.History {
		fmt.Fprintf(out, "      %s  %-22s %s -> %s\n", e.At.Format("15:04:05"), e.Event, e.From, e.To)
	}
	w2, err := rcl.Wallet(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "    requester's escrow now: %s free, %s reserved\n", tokens(w2.Free), tokens(w2.Reserved))
	if keep {
		fmt.Fprintf(out, "==> running; %s/testnet.json describes the nodes; Ctrl-C to stop\n", dir)
		<-ctx.Done()
	}
	return nil
}

// awaitDealStatus waits for the requester's deal on a request to reach a
// status.
func awaitDealStatus(ctx context.Context, c *sdk.Client, requestID, status string) (*sdk.Deal, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var found *sdk.Deal
	err := testnet.Await(ctx, func() error {
		ds, err := c.Deals(ctx)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.RequestID == requestID && d.Status == status {
				found, err = c.Deal(ctx, common.HexToHash(d.ID))
				return err
			}
		}
		return fmt.Errorf("no %s deal for request %s yet", status, requestID)
	})
	return found, err
}

// whoamiServer serves, on loopback, a page that names the address it was
// fetched from.
func whoamiServer() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "hello from the local server: you came from %s\n", host)
	})}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}
