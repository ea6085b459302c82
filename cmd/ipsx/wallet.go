package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

func walletCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wallet",
		Short: "The node key's balances; deposit, withdraw and send",
		Long: `wallet shows and moves the node key's money. Amounts are token base units
(the token has 18 decimals) as decimal integers, or tokens with the suffix
"tok" (e.g. 250tok = 250000000000000000000, 0.5tok); ETH amounts (send
--eth) are wei, or ETH with the suffix "eth". Balances are printed in full,
every decimal kept. Transactions wait for their receipt.`,
	}
	balance := &cobra.Command{
		Use:   "balance",
		Short: "Show gas (ETH), token balance, free escrow balance and reserved amount",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			w, err := c.Wallet(cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), w)
			}
			return printWallet(cmd.OutOrStdout(), w)
		},
	}
	tx := func(use, short string, do func(c *sdk.Client, cmd *cobra.Command, amount string) (*sdk.TxResult, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " AMOUNT",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				amount, err := parseTokens(args[0])
				if err != nil {
					return err
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				r, err := do(c, cmd, amount)
				if err != nil {
					return a.explain(err)
				}
				return a.printTx(cmd.OutOrStdout(), use+" "+amountText(amount, false), r)
			},
		}
	}
	deposit := tx("deposit", "Move tokens from the node's wallet into its escrow balance", func(c *sdk.Client, cmd *cobra.Command, amount string) (*sdk.TxResult, error) {
		return c.Deposit(cmd.Context(), amount)
	})
	withdraw := tx("withdraw", "Move free escrow balance back to the node's wallet", func(c *sdk.Client, cmd *cobra.Command, amount string) (*sdk.TxResult, error) {
		return c.Withdraw(cmd.Context(), amount)
	})
	cmd.AddCommand(balance, deposit, withdraw, sendCommand(a))
	return cmd
}

func sendCommand(a *app) *cobra.Command {
	var (
		eth bool
		k   localKey
		ch  chainFlags
	)
	cmd := &cobra.Command{
		Use:   "send ADDRESS AMOUNT",
		Short: "Send tokens (or ETH with --eth) to an address",
		Long: `send transfers tokens, or ETH with --eth, and waits for the receipt.

By default the running node sends from its key, through its API. With
--keystore it signs here instead, with a key from a keystore file or a data
dir, on the chain that --network or --chain-rpc names, without a node: how
the deployer of a new network hands out tokens and gas.`,
		Example: `  ipsx wallet send 0x5FbDB2315678afecb367f032d93F642f64180aa3 100tok
  ipsx wallet send 0x5FbDB2315678afecb367f032d93F642f64180aa3 1eth --eth --keystore deployer/ --network network.json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !common.IsHexAddress(args[0]) {
				return fmt.Errorf("%q is not an Ethereum address (0x and 40 hex digits)", args[0])
			}
			to := common.HexToAddress(args[0])
			amount, err := parseAmountArg(args[1], eth)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			what := "send " + amountText(amount, eth) + " to " + to.Hex()
			if k.path == "" {
				c, err := a.client()
				if err != nil {
					return err
				}
				p := sdk.SendParams{To: to.Hex(), Amount: amount}
				if eth {
					p.Asset = "eth"
				}
				r, err := c.Send(cmd.Context(), p)
				if err != nil {
					return a.explain(err)
				}
				return a.printTx(out, what, r)
			}
			key, err := k.load(a)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, contracts, closeChain, err := ch.dial(ctx, !eth)
			if err != nil {
				return err
			}
			defer closeChain()
			cl, err := chain.NewClient(b, contracts, key)
			if err != nil {
				return err
			}
			v, _ := new(big.Int).SetString(amount, 10)
			send := cl.Transfer
			if eth {
				send = cl.SendETH
			}
			r, err := send(ctx, to, v)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			res := sdk.TxResult{TxHash: r.TxHash.Hex(), Block: r.BlockNumber.Uint64(), GasUsed: r.GasUsed}
			if a.json {
				return printJSON(out, res)
			}
			_, err = fmt.Fprintf(out, "%s from %s: tx %s in block %d (gas %d)\n", what, cl.Address().Hex(), res.TxHash, res.Block, res.GasUsed)
			return err
		},
	}
	cmd.Flags().BoolVar(&eth, "eth", false, "send ETH (for gas) rather than tokens")
	k.flags(cmd, "sign here with this key (a keystore file, or a data dir) rather than through the node")
	ch.flags(cmd)
	return cmd
}

func (a *app) printTx(w io.Writer, what string, r *sdk.TxResult) error {
	if a.json {
		return printJSON(w, r)
	}
	if _, err := fmt.Fprintf(w, "%s: tx %s in block %d (gas %d)\n", what, r.TxHash, r.Block, r.GasUsed); err != nil {
		return err
	}
	return printWallet(w, &r.Wallet)
}

// parseTokens reads a positive wallet amount, base units or "2.5tok",
// and returns it in base units.
func parseTokens(s string) (string, error) {
	v, err := sdk.ParseAmount(s)
	if err != nil {
		return "", err
	}
	if v.Sign() <= 0 {
		return "", fmt.Errorf("amount %q: want a positive amount", s)
	}
	return v.String(), nil
}

// parseAmountArg reads a send amount: tokens as parseTokens does, or with
// eth wei, or ETH with the suffix "eth".
func parseAmountArg(s string, eth bool) (string, error) {
	if !eth {
		if strings.HasSuffix(s, "eth") {
			return "", fmt.Errorf("amount %q is ETH: add --eth to send ETH", s)
		}
		return parseTokens(s)
	}
	if strings.HasSuffix(s, "tok") {
		return "", fmt.Errorf("amount %q is tokens: leave out --eth to send tokens", s)
	}
	if t, ok := strings.CutSuffix(s, "eth"); ok {
		s = t + "tok" // ETH has 18 decimals too
	}
	return parseTokens(s)
}

// amountText is base units as tokens (or wei as ETH), exactly.
func amountText(base string, eth bool) string {
	v, ok := new(big.Int).SetString(base, 10)
	if !ok {
		return base
	}
	s := sdk.FormatAmount(v)
	if eth {
		s = strings.TrimSuffix(s, " tok") + " ETH"
	}
	return s
}

// tokens formats base units as tokens with every decimal kept.
func tokens(base string) string { return amountText(base, false) }

func printWallet(w io.Writer, wal *sdk.Wallet) error {
	amt := func(base string, eth bool) string {
		return fmt.Sprintf("%s (%s %s)", amountText(base, eth), orZero(base), map[bool]string{false: "base units", true: "wei"}[eth])
	}
	_, err := fmt.Fprintf(w, "address:   %s\nchain:     %d (token %s, escrow %s)\ngas:       %s\nwallet:    %s\nescrow:    %s free\nreserved:  %s\n",
		wal.Address, wal.ChainID, wal.Token, wal.Escrow, amt(wal.Gas, true), amt(wal.Balance, false), amt(wal.Free, false), amt(wal.Reserved, false))
	return err
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// errNoChainFlag is the error of a command that needs a chain and got none.
var errNoChainFlag = errors.New("no chain: give --network FILE or --chain-rpc URL")

// chainFlags name a chain for commands that talk to it directly: a network
// file, or RPC URLs and an escrow address.
type chainFlags struct {
	network string
	rpc     []string
	escrow  string
}

func (f *chainFlags) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.network, "network", "", "network file naming the chain, its RPC URLs and contracts")
	fl.StringSliceVar(&f.rpc, "chain-rpc", nil, "Ethereum JSON-RPC URL(s) of the chain (tried in turn)")
	fl.StringVar(&f.escrow, "escrow", "", "escrow contract address (with --chain-rpc; the token is the escrow's)")
}

// dial connects to the chain; with contracts set it also locates the
// deployment (from the network file, or from --escrow).
func (f *chainFlags) dial(ctx context.Context, contracts bool) (chain.Backend, chain.Contracts, func(), error) {
	urls := append([]string(nil), f.rpc...)
	var c chain.Contracts
	if f.network != "" {
		nf, err := loadNetwork(f.network)
		if err != nil {
			return nil, c, nil, err
		}
		urls = append(urls, nf.RPC...)
		c = chain.Contracts{ChainID: new(big.Int).SetUint64(nf.ChainID), Token: nf.Token, Escrow: nf.Escrow, DeployBlock: nf.DeployBlock}
	}
	if len(urls) == 0 {
		return nil, c, nil, errNoChainFlag
	}
	b, err := chain.DialAll(ctx, urls)
	if err != nil {
		return nil, c, nil, err
	}
	id, err := b.ChainID(ctx)
	if err != nil {
		b.Close()
		return nil, c, nil, err
	}
	if c.ChainID != nil && c.ChainID.Cmp(id) != 0 {
		b.Close()
		return nil, c, nil, fmt.Errorf("%s serves chain %s, the network file %s is for chain %s", b.URL(), id, f.network, c.ChainID)
	}
	c.ChainID = id
	if contracts && f.network == "" {
		if !common.IsHexAddress(f.escrow) {
			b.Close()
			return nil, c, nil, errors.New("give --network FILE, or --escrow ADDRESS with --chain-rpc")
		}
		if c, err = chain.LoadContracts(ctx, b, common.HexToAddress(f.escrow)); err != nil {
			b.Close()
			return nil, c, nil, err
		}
	}
	return b, c, b.Close, nil
}
