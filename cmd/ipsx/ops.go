package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

// logCommand is ipsx log: the running node's log level.
func logCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "The running node's logs"}
	cmd.AddCommand(&cobra.Command{
		Use:   "level [debug|info|warn|error]",
		Short: "Show the node's log level, or change it while the node runs",
		Long: `log level prints the running node's log level; with a level, it changes it
at once, for every component, until the node stops (--log-level sets it at
start).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var l *sdk.LogLevel
			if len(args) == 1 {
				l, err = c.SetLogLevel(cmd.Context(), args[0])
			} else {
				l, err = c.LogLevel(cmd.Context())
			}
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), l)
			}
			return writeString(cmd.OutOrStdout(), "log level: "+l.Level+"\n")
		},
	})
	return cmd
}

// dealLine is what ipsx events shows of a deal: an update is printed only
// when it changes (status, payments, a pending transaction, a reason),
// not for every byte count the node reports.
type dealLine struct {
	status, paid, settled, refunded, pending, reason, txErr string
}

func lineOf(d sdk.Deal) dealLine {
	return dealLine{d.Status, d.Paid, d.Settled, d.Refunded, d.Pending, d.Reason, d.TxError}
}

// eventPrinter formats events for ipsx events, dropping deal updates that
// change nothing shown.
type eventPrinter struct {
	last map[string]dealLine
}

// format returns the line for ev, or "" to print nothing.
func (p *eventPrinter) format(ev sdk.Event) string {
	if ev.Type == "deal.updated" {
		var d sdk.Deal
		if json.Unmarshal(ev.Data, &d) == nil && d.ID != "" {
			if p.last == nil {
				p.last = map[string]dealLine{}
			}
			l := lineOf(d)
			if old, ok := p.last[d.ID]; ok && old == l {
				return ""
			}
			p.last[d.ID] = l
		}
	}
	return formatEvent(ev)
}

// dealAmounts is the amounts part of a deal's event line.
func dealAmounts(d sdk.Deal) string {
	var parts []string
	side := "paid"
	if d.Role == "provider" {
		side = "earned"
	}
	if d.Paid != "" {
		parts = append(parts, side+" "+amount(d.Paid))
	}
	parts = append(parts, byteCount(d.Bytes))
	if d.Settled != "" {
		parts = append(parts, "settled "+amount(d.Settled))
	}
	if d.Refunded != "" {
		parts = append(parts, "refunded "+amount(d.Refunded))
	}
	if d.Pending != "" {
		parts = append(parts, "tx "+d.Pending+" pending")
	}
	return strings.Join(parts, ", ")
}

// amount is tokens, or base units for an amount too small to show in
// tokens' 6 decimals.
func amount(base string) string {
	if t := tokens(base); t != "0 tok" || base == "0" {
		return t
	}
	return base + " base units"
}

// byteCount prints bytes in B, kB, MB, GB (powers of 1000, as the prices
// per GB count them).
func byteCount(b uint64) string {
	const unit = 1000
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	f, i := float64(b), 0
	for f >= unit && i < 3 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, [...]string{"B", "kB", "MB", "GB"}[i])
}

// printOps prints the chain, the exit and the health of a status.
func printOps(w io.Writer, st *sdk.Status, h *sdk.Health) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	b := tw
	if c := st.Chain; c != nil {
		if c.Reachable {
			fmt.Fprintf(b, "chain head:\tblock %d (%s)\n", c.Block, c.BlockTime.UTC().Format("2006-01-02T15:04:05Z"))
		} else {
			fmt.Fprintf(b, "chain head:\tUNREACHABLE: %s\n", c.Error)
		}
	} else {
		fmt.Fprint(b, "chain head:\tno chain configured\n")
	}
	synced := 0
	for _, s := range st.Shards {
		if s.Synced {
			synced++
		}
	}
	fmt.Fprintf(b, "sync:\t%d of %d shards synced\n", synced, len(st.Shards))
	if e := st.Exit; e != nil {
		eg := "the OS's default route"
		if len(e.Egress) > 0 {
			eg = strings.Join(e.Egress, ", ")
		}
		fmt.Fprintf(b, "exit egress:\t%s\n", eg)
		if len(e.Allow) > 0 {
			fmt.Fprintf(b, "exit allows:\t%s\n", strings.Join(e.Allow, ", "))
		}
		if len(e.Deny) > 0 {
			fmt.Fprintf(b, "exit denies:\t%s\n", strings.Join(e.Deny, ", "))
		}
		if e.LoopbackAllowed {
			fmt.Fprint(b, "exit loopback:\tALLOWED (testnet only)\n")
		}
	}
	if h != nil {
		state := "ready"
		if !h.Ready {
			var bad []string
			for _, c := range h.Checks {
				if !c.OK {
					bad = append(bad, c.Name+" ("+c.Detail+")")
				}
			}
			state = "NOT READY: " + strings.Join(bad, ", ")
		}
		fmt.Fprintf(b, "health:\t%s\n", state)
	}
	return tw.Flush()
}
