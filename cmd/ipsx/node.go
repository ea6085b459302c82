package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"time"

	"github.com/ipsx/ipsx/node"
	"github.com/spf13/cobra"
)

// nodeCommands returns the commands that run things in this process (init,
// node, testnet, devchain) rather than talk to a running node.
func nodeCommands(a *app) []*cobra.Command {
	return append([]*cobra.Command{initCommand(a), runNodeCommand(a)}, devCommands(a)...)
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
