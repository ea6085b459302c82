package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

// The hidden commands of the container image (deploy/Dockerfile): the
// image is FROM scratch, with no shell, so what an entrypoint script would
// do is done here. compose-node is the docker-compose testnet's node
// (deploy/compose.yaml), health is the image's HEALTHCHECK, echo-ip is the
// testnet's target web server.

func composeCommands(a *app) []*cobra.Command {
	return []*cobra.Command{composeNodeCommand(a), healthCommand(a), echoIPCommand()}
}

func composeNodeCommand(a *app) *cobra.Command {
	var (
		f         nodeFlags
		faucetURL string
		role      string
		country   string
		deposit   string
		wait      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "compose-node --faucet URL --role bootstrap|provider|requester",
		Short: "Run a node of the docker-compose testnet (key, funding and offer on its own)",
		Long: `compose-node runs a node of a testnet whose chain is an ipsx devchain with
its faucet (--faucet, the dev chain's URL, also its JSON-RPC). On first
start it generates the node's key in the data dir; on every start it takes
the chain id, escrow and bootstrap peers from the faucet, asks it for ETH
and tokens (it gives them once), runs the node, deposits --deposit into the
escrow when less is free there, and then:

  bootstrap  announces its addresses to the faucet, for the others to join;
  provider   publishes an offer in --country unless it has a live one;
  requester  nothing more (give it --auto-buy).

It waits up to --wait for the faucet (and, but for the bootstrap role, for
a bootstrap peer). For development testnets only: the dev chain's keys are
public.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch role {
			case "bootstrap", "requester":
			case "provider":
				if len(country) != 2 {
					return fmt.Errorf("--country %q: a provider needs an ISO 3166-1 alpha-2 country code, e.g. DE", country)
				}
			default:
				return fmt.Errorf("--role %q: want bootstrap, provider or requester", role)
			}
			if faucetURL == "" {
				return errors.New("--faucet is required (the dev chain's URL, e.g. http://devchain:8545)")
			}
			dep, err := parseTokens(deposit)
			if err != nil {
				return fmt.Errorf("--deposit: %w", err)
			}
			depAmount, _ := new(big.Int).SetString(dep, 10)
			pw, err := f.password(a)
			if err != nil {
				return err
			}
			log, err := f.logger(cmd)
			if err != nil {
				return err
			}
			log = log.With("component", "compose-node", "role", role)
			ctx := cmd.Context()
			fc := &faucetClient{base: strings.TrimRight(faucetURL, "/"), log: log}

			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			netw, err := fc.network(wctx, role != "bootstrap")
			if err != nil {
				return err
			}
			if !node.HasKey(a.datadir) {
				if err := newComposeKey(a.datadir, pw, f.cfg.Scrypt); err != nil {
					return err
				}
				log.Info("generated the node's key", "datadir", a.datadir)
			}
			key, err := node.ReadKey(a.datadir, pw)
			if err != nil {
				return err
			}
			addr := ethcrypto.PubkeyToAddress(key.PublicKey)
			funded, err := fc.fund(wctx, addr.Hex())
			if err != nil {
				return err
			}
			log.Info("faucet", "address", addr.Hex(), "funded", funded.Funded)

			cfg := f.config(a)
			cfg.ChainRPC = fc.base
			cfg.ChainID, cfg.Escrow = netw.ChainID, netw.Escrow.Hex()
			cfg.Bootstrap = append(cfg.Bootstrap, netw.Bootstrap...)
			opts, err := f.nodeOptions(log)
			if err != nil {
				return err
			}
			n, err := node.New(a.datadir, pw, cfg, opts...)
			if err != nil {
				return err
			}
			defer n.Close()
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- n.Run(rctx) }()
			select {
			case <-n.Ready():
			case err := <-done:
				return err
			}
			if err := composeSetUp(wctx, n, fc, role, country, depAmount, log); err != nil {
				stop()
				<-done
				return err
			}
			return <-done
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&faucetURL, "faucet", "", "URL of the dev chain with its faucet (ipsx devchain --faucet), also the chain's JSON-RPC")
	fl.StringVar(&role, "role", "", "bootstrap, provider or requester")
	fl.StringVar(&country, "country", "", "provider: the country of its offer")
	fl.StringVar(&deposit, "deposit", "1000tok", "keep at least this much free in the escrow (token base units or NNtok)")
	fl.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the faucet and a bootstrap peer")
	return cmd
}

// newComposeKey makes a data dir's key, API token and proxy password (what
// ipsx init makes, without a config.json: the testnet's settings come from
// the environment).
func newComposeKey(dir, pw, scrypt string) error {
	key, err := ethcrypto.GenerateKey()
	if err != nil {
		return err
	}
	if scrypt == "" {
		scrypt = node.ScryptStandard
	}
	if _, err := node.WriteKey(dir, key, pw, scrypt); err != nil {
		return err
	}
	if _, err := node.EnsureToken(dir); err != nil {
		return err
	}
	_, err = node.EnsureCredentials(dir)
	return err
}

// composeSetUp is what a running compose node does once: the escrow
// deposit, then its role's step.
func composeSetUp(ctx context.Context, n *node.Node, fc *faucetClient, role, country string, deposit *big.Int, log *slog.Logger) error {
	if deposit.Sign() > 0 {
		w, err := n.Wallet(ctx)
		if err != nil {
			return fmt.Errorf("compose-node: wallet: %w", err)
		}
		free, _ := new(big.Int).SetString(w.Free, 10)
		if free == nil || free.Cmp(deposit) < 0 {
			if _, err := n.Deposit(ctx, deposit); err != nil {
				return fmt.Errorf("compose-node: deposit: %w", err)
			}
			log.Info("deposited into the escrow", "amount", deposit.String())
		}
	}
	switch role {
	case "bootstrap":
		ai := n.AddrInfo()
		var addrs []string
		for _, ma := range ai.Addrs {
			s := ma.String()
			if strings.HasPrefix(s, "/ip4/127.") || strings.HasPrefix(s, "/ip6/::1/") {
				continue
			}
			addrs = append(addrs, s+"/p2p/"+ai.ID.String())
		}
		if len(addrs) == 0 {
			return errors.New("compose-node: the bootstrap node has no address beyond loopback to announce (--listen)")
		}
		if err := fc.announce(ctx, addrs); err != nil {
			return err
		}
		log.Info("announced to the faucet", "addrs", strings.Join(addrs, ","))
	case "provider":
		own, err := n.Orders(ctx, orderbook.Query{Maker: n.Address(), Kind: orderbook.KindOffer})
		if err != nil {
			return fmt.Errorf("compose-node: own offers: %w", err)
		}
		now := uint64(time.Now().Unix())
		for _, o := range own {
			if o.Expires > now+60 {
				log.Info("offer live already", "order", o.ID().Hex())
				return nil
			}
		}
		o, err := n.CreateOffer(ctx, sdk.DevOffer(strings.ToUpper(country)))
		if err != nil {
			return fmt.Errorf("compose-node: offer: %w", err)
		}
		log.Info("published an offer", "order", o.ID().Hex(), "country", strings.ToUpper(country))
	}
	return nil
}

// faucetClient talks to the /faucet/ endpoints of ipsx devchain.
type faucetClient struct {
	base string
	log  *slog.Logger
	hc   http.Client
}

// network polls GET /faucet/network until it answers (and, with
// needBootstrap, names a bootstrap peer) or ctx ends.
func (fc *faucetClient) network(ctx context.Context, needBootstrap bool) (chain.FaucetNetwork, error) {
	var n chain.FaucetNetwork
	err := fc.poll(ctx, "the faucet's network (and a bootstrap peer)", func() error {
		if err := fc.do(ctx, http.MethodGet, "/faucet/network", nil, &n); err != nil {
			return err
		}
		if needBootstrap && len(n.Bootstrap) == 0 {
			return errors.New("no bootstrap node has announced itself yet")
		}
		return nil
	})
	return n, err
}

func (fc *faucetClient) fund(ctx context.Context, addr string) (chain.FaucetFunded, error) {
	var res chain.FaucetFunded
	err := fc.poll(ctx, "funds from the faucet", func() error {
		return fc.do(ctx, http.MethodPost, "/faucet/fund", map[string]string{"address": addr}, &res)
	})
	return res, err
}

func (fc *faucetClient) announce(ctx context.Context, addrs []string) error {
	return fc.poll(ctx, "the faucet to take the bootstrap addresses", func() error {
		return fc.do(ctx, http.MethodPost, "/faucet/bootstrap", map[string][]string{"addrs": addrs}, nil)
	})
}

// poll retries try every half second until it succeeds or ctx ends,
// logging the reason every 10 s.
func (fc *faucetClient) poll(ctx context.Context, what string, try func() error) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var last time.Time
	for {
		err := try()
		if err == nil {
			return nil
		}
		var bad *faucetRefusal
		if errors.As(err, &bad) {
			return err
		}
		if time.Since(last) > 10*time.Second {
			fc.log.Info("waiting for "+what, "faucet", fc.base, "err", err)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("compose-node: waiting for %s at %s: %w (last: %v)", what, fc.base, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// faucetRefusal is a 4xx answer: asking again will not help.
type faucetRefusal struct{ msg string }

func (e *faucetRefusal) Error() string { return e.msg }

func (fc *faucetClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, fc.base+path, body)
	if err != nil {
		return fmt.Errorf("compose-node: faucet URL %q: %w", fc.base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := fc.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		msg := fmt.Sprintf("faucet %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
		if resp.StatusCode/100 == 4 {
			return &faucetRefusal{msg: "compose-node: " + msg}
		}
		return errors.New(msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("faucet %s %s: %w", method, path, err)
	}
	return nil
}

// healthCommand is the image's HEALTHCHECK: the node's /healthz, exit
// status 1 unless it answers 200.
func healthCommand(a *app) *cobra.Command {
	var (
		timeout time.Duration
		url     string
	)
	cmd := &cobra.Command{
		Use:    "health",
		Short:  "Exit 0 when the node at --api reports itself healthy (GET /healthz), or --url answers 200; else 1",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if url == "" {
				url = "http://" + a.api + "/healthz"
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("health: %s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			return writeString(cmd.OutOrStdout(), "ok\n")
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	cmd.Flags().StringVar(&url, "url", "", "check this URL instead of the node's /healthz (the dev chain's, the target's)")
	return cmd
}

// echoIPCommand is the compose testnet's target: a web server that
// answers every request with the caller's IP address, so that a client of
// a proxy sees its exit IP.
func echoIPCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "echo-ip",
		Short:  "Serve HTTP on --listen, answering every request with the caller's IP",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("echo-ip: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "echo-ip: serving on %s\n", ln.Addr())
			hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				host, _, err := net.SplitHostPort(r.RemoteAddr)
				if err != nil {
					host = r.RemoteAddr
				}
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprintln(w, host)
			})}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("echo-ip: %w", err)
			case <-cmd.Context().Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = hs.Shutdown(sctx)
			<-errc
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8000", "address to serve on (the compose testnet: 0.0.0.0:80)")
	return cmd
}
