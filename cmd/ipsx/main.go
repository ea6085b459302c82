// Command ipsx is the IPSX command line: it runs a node (ipsx init, ipsx
// node) and talks to a running node through its local API with the Go SDK
// (offers, requests, orders, the book, deals, status). It stays thin: parsing
// flags, calling the SDK or the node package, printing.
//
// Every flag can also come from the environment, IPSX_<NAME> with the
// flag's name in upper case and "-" as "_" (IPSX_API, IPSX_DATADIR,
// IPSX_PASSWORD_FILE), or from <datadir>/config.json, a flat JSON object
// whose keys are flag names. A flag on the command line wins over the
// environment, which wins over the config file, which wins over the
// default. See config.go.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	home, _ := os.UserHomeDir()
	return newRoot(&app{getenv: os.Getenv, home: home}).ExecuteContext(ctx)
}

// app is what the commands share: the process's environment (injected, so
// tests run commands in-process without touching the real one) and the
// global flags.
type app struct {
	getenv func(string) string
	home   string
	// httpClient is the SDK's HTTP client (tests); nil for the default.
	httpClient *http.Client

	api, token, datadir string
	json                bool
}

// Every PersistentPreRunE on the way from the root runs, so a command with
// its own hook still gets its flags bound. (A package setting, set once:
// tests build roots in parallel.)
func init() { cobra.EnableTraverseRunHooks = true }

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "ipsx",
		Short: "IPSX: rent and rent out IP addresses, peer to peer",
		Long: `ipsx runs an IPSX node and talks to it.

Providers publish offers for their IPs; requesters publish requests; nodes
gossip and match them and settle through an on-chain escrow. Commands other
than init, node, key, chain, devchain, testnet and version talk to a running
node through its local API.

Every flag can also be set with the environment variable IPSX_<FLAG> (upper
case, "-" as "_", e.g. IPSX_API) or with the key of the same name in
<datadir>/config.json. The command line wins, then the environment, then
the config file, then the default.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return bindFlags(cmd, a.getenv)
		},
	}
	def := filepath.Join(a.home, ".ipsx")
	pf := root.PersistentFlags()
	pf.StringVar(&a.datadir, "datadir", def, "data directory (key, database, config.json, api.token)")
	pf.StringVar(&a.api, "api", "127.0.0.1:7480", "address of the node's local API")
	pf.StringVar(&a.token, "token", "", "API bearer token (default: read from <datadir>/api.token)")
	pf.BoolVar(&a.json, "json", false, "print raw JSON instead of tables")
	root.SetVersionTemplate("ipsx {{.Version}}\n")

	root.AddCommand(
		offerCommand(a),
		requestCommand(a),
		orderCommand(a),
		bookCommand(a),
		statusCommand(a),
		walletCommand(a),
		dealsCommand(a),
		peersCommand(a),
		pingCommand(a),
		eventsCommand(a),
		proxyCommand(a),
		logCommand(a),
		vpnCommand(a),
		versionCommand(a),
		keyCommand(a),
		chainCommand(a),
	)
	root.AddCommand(nodeCommands(a)...)
	root.AddCommand(composeCommands(a)...)
	return root
}

func versionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of ipsx",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"version": version})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "ipsx %s\n", version)
			return err
		},
	}
}

func writeString(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	return err
}
