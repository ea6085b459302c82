//go:build !nodevchain

// The commands that run a dev chain in this process: testnet, devchain
// and demo. A build with -tags nodevchain (the node image) leaves them,
// and go-ethereum's node, out (devcmds_slim.go).

package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/network"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/testnet"
	"github.com/spf13/cobra"
)

// devCommands are testnet, devchain and demo.
func devCommands(a *app) []*cobra.Command {
	return []*cobra.Command{testnetCommand(a), devchainCommand(a), demoCommand(a)}
}

func testnetCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "testnet", Short: "Run a local in-process testnet"}
	var (
		nodes      int
		providers  int
		requesters int
		dir        string
		countries  []string
		logLevel   string
		logFormat  string
		chainHTTP  string
	)
	up := &cobra.Command{
		Use:   "up",
		Short: "Start N nodes on loopback and run them until interrupted",
		Long: `testnet up starts an embedded dev chain (served over JSON-RPC) and N
in-process nodes (or --providers P and --requesters R), each funded from the
chain, with its own data dir under
--dir and its own 127.0.0.x address, spread over --countries, every node
following every one of those shards, all connected to each other. It writes
<dir>/testnet.json with each node's name, peer id, address, API address and
token, data dir, country, proxy addresses and proxy password, and
<dir>/network.json, the network file a hand-run node joins the testnet with
(ipsx node --network). Keys use light scrypt and a fixed passphrase:
for development only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var lv slog.LevelVar
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat, &lv)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			ctx := cmd.Context()
			dc, rpcURL, stopChain, err := serveDevChain(ctx, chainHTTP)
			if err != nil {
				return err
			}
			defer stopChain()
			tn, err := testnet.Start(ctx, testnet.Config{
				Dir: dir, Nodes: nodes, Providers: providers, Requesters: requesters,
				Countries: countries, Logger: log, NodeOptions: []node.Option{node.WithLogLevel(&lv)},
				DevChain: dc, Chain: &testnet.ChainInfo{RPC: rpcURL},
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			f := tn.Info()
			netPath, err := writeTestnetNetwork(dir, dc, rpcURL, f)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "chain %d at %s (token %s, escrow %s)\n", f.Chain.ChainID, f.Chain.RPC, f.Chain.Token, f.Chain.Escrow)
			for _, n := range f.Nodes {
				fmt.Fprintf(out, "%-7s %-9s %s  api %-21s %s\n", n.Name, n.Role, n.Country, n.API, n.PeerID)
				if n.Role == "requester" && n.HTTP != "" {
					fmt.Fprintf(out, "        proxies: http://country-%s:%s@%s  socks5h://country-%[1]s:%[2]s@%[4]s\n", n.Country, n.ProxyPassword, n.HTTP, n.SOCKS)
				}
			}
			fmt.Fprintf(out, "every node is funded and has deposited %s into the escrow\n", tokens(testnet.DefaultDeposit.String()))
			fmt.Fprintln(out, "testnet only: requesters run with auto-buy on (a test budget), and providers' exits may reach loopback targets")
			fmt.Fprintf(out, "wrote %s/testnet.json and %s (join with ipsx node --network %s); running until interrupted (Ctrl-C)\n", dir, netPath, netPath)
			<-ctx.Done()
			return tn.Close()
		},
	}
	up.Flags().IntVar(&nodes, "nodes", 3, "number of nodes without a role (ignored with --providers or --requesters)")
	up.Flags().IntVar(&providers, "providers", 0, "providers, each with a live offer in its country")
	up.Flags().IntVar(&requesters, "requesters", 0, "requesters, following every shard of the testnet")
	up.Flags().StringVar(&dir, "dir", "testnet-data", "directory for the nodes' data dirs and testnet.json")
	up.Flags().StringSliceVar(&countries, "countries", testnet.DefaultCountries, "countries to spread the nodes over")
	up.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	up.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	up.Flags().StringVar(&chainHTTP, "chain-http", "127.0.0.1:0", "where the testnet's dev chain serves JSON-RPC (loopback)")
	cmd.AddCommand(up)
	return cmd
}

func devchainCommand(a *app) *cobra.Command {
	cfg := chain.DefaultDevChainConfig()
	var fund []string
	eth, toks := "1000eth", "1000000tok"
	var faucet bool
	faucetETH, faucetToks := "10eth", "100000tok"
	cmd := &cobra.Command{
		Use:   "devchain",
		Short: "Serve an embedded dev chain (a real EVM) over JSON-RPC",
		Long: `devchain runs go-ethereum's simulated backend with the IPSX token and
escrow deployed and dev accounts funded, serves it over JSON-RPC on --http
(loopback only), and prints the chain id, contract addresses and dev keys.

--fund gives further addresses (keys of ipsx init, say) --fund-eth and
--fund-tokens. --empty deploys nothing, for ipsx chain deploy to deploy to:
the accounts get ETH only.

--faucet serves a faucet beside the JSON-RPC, under /faucet/: GET
/faucet/network (chain id, contracts, the bootstrap peers announced),
POST /faucet/fund {"address": ...} (--faucet-eth and --faucet-tokens, once
per address) and POST /faucet/bootstrap {"addrs": [...]}: what the nodes of
the docker-compose testnet (deploy/) join with. --allow-public-listen lets
--http be an address other than loopback, for a container: anyone who
reaches it can spend the dev accounts, whose keys are public.`,
		Example: `  ipsx devchain --fund 0x5FbDB2315678afecb367f032d93F642f64180aa3
  ipsx devchain --empty --fund 0x5FbDB2315678afecb367f032d93F642f64180aa3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range fund {
				if !common.IsHexAddress(s) {
					return fmt.Errorf("--fund %q is not an address", s)
				}
				cfg.Fund = append(cfg.Fund, common.HexToAddress(s))
			}
			e, err := parseAmountArg(eth, true)
			if err != nil {
				return fmt.Errorf("--fund-eth: %w", err)
			}
			t, err := parseTokens(toks)
			if err != nil {
				return fmt.Errorf("--fund-tokens: %w", err)
			}
			cfg.ETH, _ = new(big.Int).SetString(e, 10)
			cfg.Tokens, _ = new(big.Int).SetString(t, 10)
			if faucet {
				fe, err := parseAmountArg(faucetETH, true)
				if err != nil {
					return fmt.Errorf("--faucet-eth: %w", err)
				}
				ft, err := parseTokens(faucetToks)
				if err != nil {
					return fmt.Errorf("--faucet-tokens: %w", err)
				}
				fc := chain.FaucetConfig{}
				fc.ETH, _ = new(big.Int).SetString(fe, 10)
				fc.Tokens, _ = new(big.Int).SetString(ft, 10)
				cfg.Faucet = &fc
			}
			return chain.RunDevChain(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:8545", "JSON-RPC listen address (loopback)")
	cmd.Flags().IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "number of funded dev accounts")
	cmd.Flags().Uint64Var(&cfg.GraceSeconds, "grace", cfg.GraceSeconds, "escrow refund grace after a deal's deadline, seconds")
	cmd.Flags().StringSliceVar(&fund, "fund", nil, "further addresses to fund, e.g. node keys")
	cmd.Flags().StringVar(&eth, "fund-eth", eth, "ETH each funded account gets (wei, or NNeth)")
	cmd.Flags().StringVar(&toks, "fund-tokens", toks, "tokens each funded account gets (base units, or NNtok; none with --empty)")
	cmd.Flags().BoolVar(&cfg.Empty, "empty", false, "deploy no contracts (for ipsx chain deploy)")
	cmd.Flags().BoolVar(&faucet, "faucet", false, "serve a faucet and bootstrap list under /faucet/ (the docker-compose testnet's nodes fund themselves there)")
	cmd.Flags().StringVar(&faucetETH, "faucet-eth", faucetETH, "ETH the faucet gives each address (wei, or NNeth)")
	cmd.Flags().StringVar(&faucetToks, "faucet-tokens", faucetToks, "tokens the faucet gives each address (base units, or NNtok)")
	cmd.Flags().BoolVar(&cfg.PublicListen, "allow-public-listen", false, "allow --http on an address other than loopback (a container's; the dev keys are public)")
	return cmd
}

// serveDevChain starts an embedded dev chain and serves it over JSON-RPC on
// addr; stop ends both and waits.
func serveDevChain(ctx context.Context, addr string) (*chain.DevChain, string, func(), error) {
	return serveDevChainCfg(ctx, addr, chain.DefaultDevChainConfig())
}

func serveDevChainCfg(ctx context.Context, addr string, cfg chain.DevChainConfig) (*chain.DevChain, string, func(), error) {
	ln, err := chain.Listen(addr)
	if err != nil {
		return nil, "", nil, err
	}
	dc, err := chain.StartDevChain(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = dc.Serve(sctx, ln) }()
	stop := func() {
		cancel()
		<-done
		dc.Close()
	}
	return dc, "http://" + ln.Addr().String(), stop, nil
}

// writeTestnetNetwork writes <dir>/network.json for a running testnet:
// its chain and every node's addresses as bootstrap peers.
func writeTestnetNetwork(dir string, dc *chain.DevChain, rpcURL string, info testnet.File) (string, error) {
	c := dc.Contracts()
	nf := network.File{Name: "ipsx-testnet", ChainID: c.ChainID.Uint64(), RPC: []string{rpcURL},
		Token: c.Token, Escrow: c.Escrow, DeployBlock: c.DeployBlock, CommissionBps: chain.DefaultDevChainConfig().CommissionBps}
	for _, n := range info.Nodes {
		if len(n.P2P) > 0 {
			nf.Bootstrap = append(nf.Bootstrap, n.P2P[0])
		}
	}
	path := filepath.Join(dir, "network.json")
	return path, nf.Write(path, true)
}
