package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

func vpnCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vpn",
		Short: "Route the whole system (or some networks) through a rented IP",
		Long: `vpn drives the requester node's VPN: a TUN device inside the node's process
whose TCP and UDP flows go through the node's deals as tunnel flows, under
the providers' exit policies, metered and paid like proxy connections. The
node needs root (CAP_NET_ADMIN) for the device and the routes, and iproute2
and nftables for --default-route and --kill-switch.`,
	}
	cmd.AddCommand(vpnUpCommand(a), vpnDownCommand(a), vpnStatusCommand(a))
	return cmd
}

func vpnUpCommand(a *app) *cobra.Command {
	var p sdk.VPNParams
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the VPN up",
		Long: `up creates the TUN and routes into it: the networks given with --prefix
(a split tunnel), or everything with --default-route except the node's own
traffic (its libp2p connections and chain RPC), by policy routing as
wg-quick does. --route picks the deals, in the proxy username grammar
(country-DE, country-US-city-newyork), in order of preference: new flows
stay on one deal and move to the next when its provider cannot be reached.
--dns points the system's resolver at the TUN, whose queries leave from the
provider for --dns-server. --kill-switch blocks what would leave outside
the TUN while the tunnel is down, a crash of the node included, until
"ipsx vpn down". The routes are restored when the VPN goes down, and when
the node starts after a crash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.VPNUp(cmd.Context(), p)
			if err != nil {
				return a.explain(err)
			}
			return a.printVPN(cmd.OutOrStdout(), st)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&p.Routes, "route", nil, "a route whose deals carry the flows, e.g. country-DE (repeat: in order of preference; default: any deal)")
	f.StringArrayVar(&p.Prefixes, "prefix", nil, "a network to send through the TUN, e.g. 203.0.113.0/24 (repeat)")
	f.BoolVar(&p.DefaultRoute, "default-route", false, "send everything through the TUN except the node's own traffic")
	f.BoolVar(&p.DNS, "dns", false, "send DNS through the tunnel (rewrites /etc/resolv.conf until vpn down)")
	f.StringVar(&p.DNSServer, "dns-server", "", "the resolver DNS goes to from the provider, ip or ip:port (default 1.1.1.1:53)")
	f.BoolVar(&p.KillSwitch, "kill-switch", false, "block traffic outside the TUN while the tunnel is down, until vpn down")
	f.StringVar(&p.Device, "device", "", "TUN device name (default ipsx0)")
	f.IntVar(&p.MTU, "mtu", 0, "TUN MTU (default 65520)")
	return cmd
}

func vpnDownCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Take the VPN down, restoring the routes and disarming the kill switch",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.VPNDown(cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			return a.printVPN(cmd.OutOrStdout(), st)
		},
	}
}

func vpnStatusCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the VPN: its device, routes, deal, flows and bytes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.VPN(cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			return a.printVPN(cmd.OutOrStdout(), st)
		},
	}
}

func (a *app) printVPN(w io.Writer, st *sdk.VPNStatus) error {
	if a.json {
		return printJSON(w, st)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("state", st.State)
	row("error", st.Error)
	if st.Device != "" {
		row("device", fmt.Sprintf("%s (mtu %d, %s)", st.Device, st.MTU, strings.Join(st.Addrs, ", ")))
	}
	row("into the tun", strings.Join(st.Prefixes, ", "))
	row("routes", strings.Join(st.Routes, ", "))
	row("deal", st.Deal)
	row("provider", st.Provider)
	row("dns", st.DNS)
	if st.KillSwitch {
		row("kill switch", "on")
	}
	if st.KillSwitchArmed {
		row("kill switch", "ARMED: traffic outside the TUN is blocked; ipsx vpn down disarms it")
	}
	c := st.Counters
	row("flows", fmt.Sprintf("%d live; %d tcp and %d udp so far, %d refused, %d cut, %d moves to another deal",
		len(st.Flows), c.TCPFlows, c.UDPFlows, c.Refused, c.Failed, c.Moves))
	row("bytes", fmt.Sprintf("%d up, %d down", c.Up, c.Down))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Flows) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTO\tFROM\tTO\tDEAL\tUP\tDOWN")
	for _, f := range st.Flows {
		deal := f.Deal
		if len(deal) > 10 {
			deal = deal[:10] + "…"
		}
		to := f.Dst
		if f.Target != f.Dst {
			to += " → " + f.Target
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", f.Proto, f.Src, to, deal, f.Up, f.Down)
	}
	return tw.Flush()
}
