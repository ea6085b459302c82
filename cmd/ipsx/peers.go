package main

import (
	"fmt"

	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

func peersCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List connected peers and whether each connection is direct or relayed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			peers, err := c.Peers(cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				if peers == nil {
					peers = []sdk.Peer{}
				}
				return printJSON(cmd.OutOrStdout(), peers)
			}
			return printPeers(cmd.OutOrStdout(), peers)
		},
	}
}

func pingCommand(a *app) *cobra.Command {
	var direct bool
	cmd := &cobra.Command{
		Use:   "ping <peer id | maker address>",
		Short: "Open a stream to a peer and time a round trip",
		Long: `ping reaches a peer the way a deal would: through a relay if that is all
there is, or, with --direct, over a direct connection, hole-punching a
relayed one first as tunnels do. A maker address works once the node holds
one of its orders. It prints the round trip and the connection used.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Ping(cmd.Context(), args[0], direct)
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s via %s (%s, %s)\n", res.PeerID, res.RTT, connKind(res.Conn), res.Conn.Direction, res.Conn.Addr)
			return err
		},
	}
	cmd.Flags().BoolVar(&direct, "direct", false, "insist on a direct connection (hole punch a relayed one)")
	return cmd
}
