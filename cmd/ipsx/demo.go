package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/ipsx/ipsx/matching"
	"github.com/ipsx/ipsx/orderbook"
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
	tn, err := testnet.Start(ctx, testnet.Config{
		Dir: dir, Nodes: 4, Countries: []string{"DE", "US"},
		DevChain: dc, Chain: &testnet.ChainInfo{RPC: rpcURL},
	})
	if err != nil {
		return err
	}
	defer tn.Close()
	providers, requester := tn.Members[:3], tn.Members[3]
	for _, m := range tn.Members {
		role := "provider"
		if m == requester {
			role = "requester"
		}
		fmt.Fprintf(out, "    %-6s %-9s %s  %s  api %s\n", m.Name, role, m.IP, m.Node.Address().Hex(), m.Node.APIAddr())
	}
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		return err
	}

	step("providers publish offers through their local API")
	prices := []string{"1200", "900", "1500"}
	var offers []*orderbook.Order
	for i, m := range providers {
		cl := sdk.NewClient("http://"+m.Node.APIAddr().String(), m.Node.Token())
		cc := []string{"DE", "US", "DE"}[i]
		o, err := cl.CreateOffer(ctx, sdk.OfferParams{
			Country: cc, IPType: "residential", IPs: uint32(2 + i), PricePerHour: prices[i], PricePerGB: "40",
			MinDuration: 60, MaxDuration: 86400, Bandwidth: 100,
		})
		if err != nil {
			return fmt.Errorf("%s: create offer: %w", m.Name, err)
		}
		offers = append(offers, o)
		fmt.Fprintf(out, "    %s offers %d %s IPs at %s/IP-hour: %s\n", m.Name, o.IPs, cc, o.PricePerHour, o.ID().Hex())
	}

	rcl := sdk.NewClient("http://"+requester.Node.APIAddr().String(), requester.Node.Token())
	w, err := rcl.Wallet(ctx)
	if err != nil {
		return err
	}
	step("the requester's wallet: %s in the escrow, %s in its wallet", tokens(w.Free), tokens(w.Balance))

	step("requester publishes a request for 2 DE IPs for 1 hour (peers check its escrow covers it)")
	req, err := rcl.CreateRequest(ctx, sdk.RequestParams{
		Country: "DE", IPType: "any", IPs: 2, Duration: 3600, MaxPricePerHour: "2000", MaxPricePerGB: "100",
	})
	if err != nil {
		return fmt.Errorf("create request: %w", err)
	}
	fmt.Fprintf(out, "    request %s\n", req.ID().Hex())

	step("waiting for every offer to reach the requester over gossip")
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := testnet.Await(wctx, func() error {
		for _, o := range offers {
			if _, err := rcl.Order(wctx, o.ID()); err != nil {
				return fmt.Errorf("offer %s not at the requester yet", o.ID().Hex())
			}
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "    all %d offers arrived in %s\n", len(offers), time.Since(start).Round(time.Millisecond))

	step("the requester's book for DE, and its ranked candidates")
	book, err := rcl.Book(ctx, "DE")
	if err != nil {
		return err
	}
	cands, err := matching.Candidates(matching.NewSnapshot(book), req, time.Now(), matching.Params{})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    RANK\tOFFER\tMAKER\tIPS\tPRICE/H\tPRICE/GB")
	for i, f := range cands {
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%d\t%s\t%s\n", i+1, f.OfferID.Hex()[:18]+"…", f.Offer.Maker.Hex(), f.IPs, f.PricePerHour, f.PricePerGB)
	}
	tw.Flush()
	fmt.Fprintln(out, "    (the US offer is not a candidate: the request is for DE)")
	fmt.Fprintln(out, "==> not yet in this demo: negotiating the deal, funding it in escrow, and")
	fmt.Fprintln(out, "    fetching a page through the SOCKS5 proxy (issues 4 and 5)")
	if keep {
		fmt.Fprintf(out, "==> running; %s/testnet.json describes the nodes; Ctrl-C to stop\n", dir)
		<-ctx.Done()
	}
	return nil
}
