package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/network"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/testnet"
	"github.com/spf13/cobra"
)

// nodeCommands returns the commands that run things in this process (init,
// node, testnet, devchain) rather than talk to a running node.
func nodeCommands(a *app) []*cobra.Command {
	return []*cobra.Command{initCommand(a), runNodeCommand(a), testnetCommand(a), devchainCommand(a), demoCommand(a)}
}

// nodeFlags are the node.Config settings as flags; their names are the
// config.json keys.
type nodeFlags struct {
	cfg           node.Config
	confirmations optUint
	passwordFile  string
	logLevel      string
	logFormat     string
	// level is the running node's log level, which the API may change.
	level slog.LevelVar

	devFastDeals bool

	autoBuy         bool
	autoBuyBudget   string
	autoBuyPriceH   string
	autoBuyPriceGB  string
	autoBuyDuration time.Duration
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.cfg.Listen, "listen", node.DefaultListen, "libp2p listen multiaddrs (TCP and QUIC)")
	fl.StringSliceVar(&f.cfg.Bootstrap, "bootstrap", nil, "bootstrap peers, /ip4/…/tcp/…/p2p/<peer id> (none by default: no public bootstrap nodes exist yet)")
	fl.StringSliceVar(&f.cfg.Countries, "countries", nil, "country shards to follow beyond those of the node's own orders, e.g. DE,US")
	fl.Uint64Var(&f.cfg.ChainID, "chain-id", node.DefaultChainID, "chain id of the EIP-712 domain")
	fl.StringVar(&f.cfg.Escrow, "escrow", node.DefaultEscrow, "escrow contract address of the EIP-712 domain")
	fl.StringVar(&f.cfg.ChainRPC, "chain-rpc", "", "Ethereum JSON-RPC endpoint of the escrow's chain (e.g. ipsx devchain's); empty: no chain")
	fl.StringVar(&f.cfg.SOCKS, "socks", node.DefaultSOCKS, "loopback address of the SOCKS5 proxy for requests through rented IPs (off: none)")
	fl.StringVar(&f.cfg.HTTP, "http-proxy", node.DefaultHTTP, "loopback address of the HTTP proxy (off: none)")
	fl.BoolVar(&f.cfg.NoProxyAuth, "no-proxy-auth", false, "let the proxies serve clients without a credential (loopback only; every local user can then spend the escrow)")
	fl.BoolVar(&f.cfg.AllowPublicListen, "allow-public-listen", false, "allow --api, --socks and --http-proxy on an address other than loopback (the proxies keep asking for credentials, /metrics needs the API token)")
	fl.StringVar(&f.cfg.TunnelIdleTimeout, "tunnel-idle-timeout", "5m", "close a tunnel that moved no byte either way for this long (0: never)")
	fl.StringSliceVar(&f.cfg.ExitAllow, "exit-allow", nil, "provider: CIDRs to allow out of the default-deny ranges (never loopback or own addresses)")
	fl.StringSliceVar(&f.cfg.ExitDeny, "exit-deny", nil, "provider: further CIDRs its exit refuses")
	fl.BoolVar(&f.cfg.ExitAllowLoopback, "exit-allow-loopback", false, "provider: UNSAFE, for local smoke tests only: let requesters reach 127.0.0.0/8, this machine's own services")
	fl.StringVar(&f.cfg.Network, "network", "", "network file (chain id, RPC URLs, contracts, bootstrap peers), as ipsx chain deploy writes it; init copies it into the data dir")
	fl.Var(&f.confirmations, "confirmations", "blocks on top of a deal event's block before the node acts on it (default: the network file's, else 0 on the dev chain, 12 elsewhere)")
	fl.StringVar(&f.cfg.Scrypt, "scrypt", node.ScryptStandard, "keystore strength: standard, or light (tests only)")
	fl.BoolVar(&f.cfg.DHTServer, "dht-server", false, "always serve the DHT (else only when publicly reachable)")
	fl.BoolVar(&f.cfg.RelayService, "relay-service", false, "relay for peers behind NAT (only on a machine with a public address)")
	fl.StringSliceVar(&f.cfg.GeoIP, "geoip", nil, "MaxMind-format .mmdb files (GeoLite2 City/Country/ASN, DB-IP Lite) that locate offers and check providers")
	fl.BoolVar(&f.cfg.UPnP, "upnp", false, "ask the router for a port mapping (UPnP / NAT-PMP)")
	fl.BoolVar(&f.autoBuy, "auto-buy", false, "when a proxy route has no active deal, place a request for it (within --auto-buy-budget)")
	fl.StringVar(&f.autoBuyBudget, "auto-buy-budget", "", "most that auto-bought deals may lock per hour, token base units or NNtok")
	fl.StringVar(&f.autoBuyPriceH, "auto-buy-max-price", "", "auto-buy's max price per IP-hour, token base units or NNtok")
	fl.StringVar(&f.autoBuyPriceGB, "auto-buy-max-price-gb", "0", "auto-buy's max price per GB, token base units or NNtok")
	fl.DurationVar(&f.autoBuyDuration, "auto-buy-duration", 10*time.Minute, "length of each auto-bought deal")
	fl.StringVar(&f.passwordFile, "password-file", "", "file holding the keystore passphrase (else IPSX_PASSWORD)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error (change it while running: ipsx log level)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text (key=value) or json (one object per line)")
	fl.BoolVar(&f.cfg.MetricsAuth, "metrics-auth", false, "require the API token for /metrics on loopback too (always required off loopback)")
	fl.BoolVar(&f.devFastDeals, "dev-fast-deals", false, "run the deal protocol's clocks in seconds (pay-ahead interval, timeouts, graces: for tests and local testnets)")
	_ = fl.MarkHidden("dev-fast-deals")
}

// devDealConfig are the clocks of --dev-fast-deals: a whole deal runs in
// seconds (the node tests use the same).
var devDealConfig = node.DealConfig{
	IntervalSeconds: 3, ProposalTimeout: 3 * time.Second, ReservationTimeout: 20 * time.Second,
	FundingTimeout: 15 * time.Second, PaymentGrace: 4 * time.Second, TxRetry: 2 * time.Second,
	TrafficBudgetGB: 1, Tick: 200 * time.Millisecond, SeriesBackoff: 2 * time.Second,
}

// nodeOptions are the node's options from the flags: logging, deals and
// auto-buy.
func (f *nodeFlags) nodeOptions(log *slog.Logger) ([]node.Option, error) {
	opts := append([]node.Option{node.WithLogger(log), node.WithLogLevel(&f.level)}, f.dealOptions()...)
	if f.autoBuy {
		ab, err := f.autoBuyConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, node.WithAutoBuy(ab))
	}
	return opts, nil
}

// dealOptions are the node options the deal flags ask for.
func (f *nodeFlags) dealOptions() []node.Option {
	if !f.devFastDeals {
		return nil
	}
	return []node.Option{node.WithDeals(devDealConfig)}
}

// password reads the keystore passphrase from --password-file or
// IPSX_PASSWORD.
func (f *nodeFlags) password(a *app) (string, error) {
	return a.readPassword(f.passwordFile, "IPSX_PASSWORD", "--password-file")
}

// config is the node.Config the flags describe.
func (f *nodeFlags) config(a *app) node.Config {
	cfg := f.cfg
	cfg.API = a.api
	cfg.Confirmations = f.confirmations.v
	return cfg
}

func (f *nodeFlags) logger(cmd *cobra.Command) (*slog.Logger, error) {
	return newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat, &f.level)
}

// newLogger makes the logger of --log-level and --log-format, its level
// held in lv (so that it can change while running).
func newLogger(w io.Writer, level, format string, lv *slog.LevelVar) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	lv.Set(lvl)
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func initCommand(a *app) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a data dir: a new key (encrypted keystore), config.json and an API token",
		Long: `init creates the data dir given by --datadir: a new secp256k1 key, which
is at once the node's Ethereum wallet and its libp2p identity, encrypted in
go-ethereum's keystore format (importable into other Ethereum wallets) with
the passphrase from --password-file or IPSX_PASSWORD; config.json with the
settings given as flags; api.token, the local API's bearer token; and
proxy-credentials.json with the proxy password (ipsx proxy password).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := f.password(a)
			if err != nil {
				return err
			}
			addr, err := node.Init(a.datadir, pw, f.config(a))
			if err != nil {
				return err
			}
			k, err := node.ReadKey(a.datadir, pw)
			if err != nil {
				return err
			}
			pid, err := node.PeerIDOf(k)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"datadir": a.datadir, "address": addr.Hex(), "peerId": pid.String()})
			}
			return writeString(cmd.OutOrStdout(), fmt.Sprintf("created %s\naddress: %s\npeer id: %s\n", a.datadir, addr.Hex(), pid))
		},
	}
	f.register(cmd)
	return cmd
}

func runNodeCommand(a *app) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run the node daemon: libp2p host, gossip, order sync and the local API",
		Long: `node runs the IPSX daemon on the data dir until interrupted. Its settings
come from flags, IPSX_* variables and <datadir>/config.json (written by init).
The local API listens on --api (loopback) and needs the bearer token in
<datadir>/api.token. The proxies (--socks, --http-proxy) ask for the proxy
password (ipsx proxy password) with a route as the username, e.g.
curl --proxy http://country-DE:PASSWORD@127.0.0.1:8080. Addresses other than
loopback are refused unless --allow-public-listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := f.password(a)
			if err != nil {
				return err
			}
			log, err := f.logger(cmd)
			if err != nil {
				return err
			}
			cfg := f.config(a)
			opts, err := f.nodeOptions(log)
			if err != nil {
				return err
			}
			n, err := node.New(a.datadir, pw, cfg, opts...)
			if err != nil {
				return err
			}
			defer n.Close()
			return n.Run(cmd.Context())
		},
	}
	f.register(cmd)
	return cmd
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

func (f *nodeFlags) autoBuyConfig() (node.AutoBuy, error) {
	ab := node.AutoBuy{Duration: f.autoBuyDuration}
	for _, x := range []struct {
		flag, v string
		dst     **big.Int
	}{
		{"--auto-buy-budget", f.autoBuyBudget, &ab.BudgetPerHour},
		{"--auto-buy-max-price", f.autoBuyPriceH, &ab.MaxPricePerHour},
		{"--auto-buy-max-price-gb", f.autoBuyPriceGB, &ab.MaxPricePerGB},
	} {
		if x.v == "0" {
			*x.dst = new(big.Int)
			continue
		}
		if x.v == "" {
			return ab, fmt.Errorf("--auto-buy needs %s", x.flag)
		}
		s, err := parseTokens(x.v)
		if err != nil {
			return ab, fmt.Errorf("%s: %w", x.flag, err)
		}
		*x.dst, _ = new(big.Int).SetString(s, 10)
	}
	return ab, nil
}
