package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

// proxyCommand manages the proxies' credentials in the data dir
// (proxy-credentials.json). It works whether or not the node runs; a
// running node picks changes up within a second.
func proxyCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Show and manage the proxy password and credentials",
		Long: `The node's SOCKS5 and HTTP proxies ask for a credential: any username (it
names the route, e.g. country-DE or brd-customer-x-zone-y-country-us) and a
credential's password. init creates the "default" credential; a fleet can
have more, each with a spending cap. They live in
<datadir>/proxy-credentials.json; a running node rereads it within a second.`,
	}
	var rotate bool
	password := &cobra.Command{
		Use:   "password",
		Short: "Print the default proxy password (--rotate: replace it first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var c node.Credential
			if rotate {
				var err error
				if c, err = node.RotateCredential(a.datadir, node.DefaultCredential); err != nil {
					return err
				}
			} else {
				pw, err := node.ProxyPassword(a.datadir)
				if err != nil {
					return err
				}
				c = node.Credential{Name: node.DefaultCredential, Password: pw}
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), c)
			}
			return writeString(cmd.OutOrStdout(), c.Password+"\n")
		},
	}
	password.Flags().BoolVar(&rotate, "rotate", false, "replace the password with a new random one (the old one stops working)")

	cred := &cobra.Command{Use: "credential", Short: "Add, list, rotate and remove proxy credentials (each with its own spending cap)"}
	var limit string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a credential with a new random password and print it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			base := ""
			if limit != "" {
				var err error
				if base, err = parseTokens(limit); err != nil {
					return fmt.Errorf("--cap: %w", err)
				}
			}
			c, err := node.AddCredential(a.datadir, args[0], base)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), c)
			}
			return writeString(cmd.OutOrStdout(), c.Password+"\n")
		},
	}
	add.Flags().StringVar(&limit, "cap", "", "most the credential may spend, token base units or NNtok (default: no cap)")
	rot := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Give a credential a new random password and print it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := node.RotateCredential(a.datadir, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), c)
			}
			return writeString(cmd.OutOrStdout(), c.Password+"\n")
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a credential (not the default one: rotate that)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return node.RemoveCredential(a.datadir, args[0])
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the credentials, their caps and (from a running node) what each has spent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := node.LoadCredentials(a.datadir)
			if err != nil {
				return err
			}
			spent := map[string]string{}
			if c, err := a.client(); err == nil {
				if st, err := c.Status(cmd.Context()); err == nil && st.Proxy != nil {
					for _, x := range st.Proxy.Credentials {
						spent[x.Name] = x.Spent
					}
				}
			}
			out := make([]sdk.CredentialStatus, len(cs))
			for i, c := range cs {
				out[i] = sdk.CredentialStatus{Name: c.Name, Cap: c.Cap, Spent: spent[c.Name]}
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCAP\tSPENT")
			for _, c := range out {
				limit, sp := "none", "- (node not running)"
				if c.Cap != "" {
					limit = tokens(c.Cap)
				}
				if c.Spent != "" {
					sp = tokens(c.Spent)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, limit, sp)
			}
			return tw.Flush()
		},
	}
	cred.AddCommand(add, list, rot, remove)
	cmd.AddCommand(password, cred)
	return cmd
}
