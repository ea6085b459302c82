package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

func dealsCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deals",
		Short: "List, show and close this node's deals",
		Long: `deals shows the node's deals, as provider or requester, and closes them.
A deal id may be given in full or as a unique prefix of it, such as the short
id the list prints. Amounts are token base units.`,
		Args: cobra.NoArgs,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List this node's deals, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			deals, err := c.Deals(cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				if deals == nil {
					deals = []sdk.Deal{}
				}
				return printJSON(cmd.OutOrStdout(), deals)
			}
			return printDeals(cmd.OutOrStdout(), deals)
		},
	}
	show := &cobra.Command{
		Use:   "show <id>",
		Short: "Show one deal: terms, payment, chain outcome and history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := a.dealID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			d, err := c.Deal(cmd.Context(), id)
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return printDealDetail(cmd.OutOrStdout(), d)
		},
	}
	closeCmd := &cobra.Command{
		Use:   "close <id>",
		Short: "End a deal from this node's side",
		Long: `Close a deal: before funding the proposal is withdrawn; after funding
without service a cooperative cancel is offered; while active the service
stops and the provider settles with the latest voucher. What follows on
chain shows in ipsx deals show and ipsx events.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := a.dealID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			d, err := c.CloseDeal(cmd.Context(), id)
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return writeString(cmd.OutOrStdout(), "closed deal "+d.ID+": "+d.Status+"\n")
		},
	}
	cmd.AddCommand(list, show, closeCmd)
	return cmd
}

// dealID parses a deal id, or resolves a prefix of one (at least 0x and 4
// hex digits) against the node's deals.
func (a *app) dealID(ctx context.Context, c *sdk.Client, s string) (common.Hash, error) {
	var h common.Hash
	if len(s) == 66 && strings.HasPrefix(s, "0x") && h.UnmarshalText([]byte(s)) == nil {
		return h, nil
	}
	hexPart, ok := strings.CutPrefix(strings.ToLower(s), "0x")
	if !ok || len(hexPart) < 4 || len(hexPart) > 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return h, fmt.Errorf("%q is not a deal id (0x and 64 hex digits, or a unique prefix of at least 0x and 4)", s)
	}
	deals, err := c.Deals(ctx)
	if err != nil {
		return h, a.explain(err)
	}
	var found []string
	for _, d := range deals {
		if strings.HasPrefix(strings.ToLower(d.ID), "0x"+hexPart) {
			found = append(found, d.ID)
		}
	}
	switch len(found) {
	case 0:
		return h, fmt.Errorf("no deal id starts with %s", s)
	case 1:
		return common.HexToHash(found[0]), nil
	}
	return h, fmt.Errorf("%s is ambiguous: %d deals start with it (%s)", s, len(found), strings.Join(found, ", "))
}

func printDeals(w io.Writer, deals []sdk.Deal) error {
	if len(deals) == 0 {
		return writeString(w, "no deals\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tSTATUS\tPEER\tIPS\tPRICE/H\tPAID\tDEADLINE")
	for _, d := range deals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n",
			shortID(d.ID), d.Role, d.Status, shortAddr(counterparty(d)), d.IPs,
			d.PricePerHour, orDash(d.Paid), timeOf(d.Deadline))
	}
	return tw.Flush()
}

func printDealDetail(w io.Writer, d *sdk.Deal) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	status := d.Status
	if d.Reason != "" {
		status += " (" + d.Reason + ")"
	}
	rows := [][2]string{
		{"id", d.ID},
		{"role", d.Role},
		{"status", status},
		{"provider status", d.ProviderStatus},
		{"requester status", d.RequesterStatus},
	}
	if d.Detail != "" {
		rows = append(rows, [2]string{"detail", d.Detail})
	}
	rows = append(rows, [][2]string{
		{"provider", d.Provider},
		{"requester", d.Requester},
		{"offer", d.OfferID},
		{"request", d.RequestID},
		{"ips", fmt.Sprint(d.IPs)},
		{"price per hour", d.PricePerHour},
		{"price per GB", d.PricePerGB},
		{"max amount", d.MaxAmount},
		{"start", timeOf(d.Start)},
		{"deadline", timeOf(d.Deadline)},
		{"paid", orDash(d.Paid)},
		{"bytes", fmt.Sprint(d.Bytes)},
	}...)
	if v := d.Voucher; v != nil {
		rows = append(rows,
			[2]string{"voucher", fmt.Sprintf("%s for %d bytes", v.Amount, v.Bytes)},
			[2]string{"  conn log hash", v.ConnLogHash},
			[2]string{"  signature", v.Signature})
	} else {
		rows = append(rows, [2]string{"voucher", "-"})
	}
	for _, r := range [][2]string{
		{"pending tx", d.Pending}, {"settled", d.Settled}, {"commission", d.Commission}, {"refunded", d.Refunded},
	} {
		if r[1] != "" {
			rows = append(rows, r)
		}
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s:\t%s\n", r[0], r[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.History) == 0 {
		return writeString(w, "history: none\n")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tTRANSITION\tSTATUS\tREASON")
	for _, e := range d.History {
		fmt.Fprintf(tw, "%s\t%s\t%s→%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Event, e.From, e.To, e.Status, e.Reason)
	}
	return tw.Flush()
}

// counterparty is the other side's address.
func counterparty(d sdk.Deal) string {
	if d.Role == "provider" {
		return d.Requester
	}
	return d.Provider
}

// shortID is 0x and the first 8 hex digits: enough to tell a node's deals
// apart, and a prefix that deals show and close accept.
func shortID(id string) string {
	if len(id) > 10 {
		return id[:10]
	}
	return id
}

// shortAddr is an address as 0x1234…abcd.
func shortAddr(a string) string {
	if len(a) > 12 {
		return a[:6] + "…" + a[len(a)-4:]
	}
	return orDash(a)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
