package main

import (
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

func walletCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wallet",
		Short: "The node key's token and escrow balances; deposit and withdraw",
		Long: `wallet shows and moves the node key's money. Amounts are token base units
(the token has 18 decimals) as decimal integers, or whole tokens with the
suffix "tok" (e.g. 250tok = 250000000000000000000). Transactions wait for
their receipt.`,
	}
	balance := &cobra.Command{
		Use:   "balance",
		Short: "Show token balance, free escrow balance and reserved amount",
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
				if a.json {
					return printJSON(cmd.OutOrStdout(), r)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: tx %s in block %d (gas %d)\n", use, amount, r.TxHash, r.Block, r.GasUsed)
				return printWallet(cmd.OutOrStdout(), &r.Wallet)
			},
		}
	}
	deposit := tx("deposit", "Move tokens from the node's wallet into its escrow balance", func(c *sdk.Client, cmd *cobra.Command, amount string) (*sdk.TxResult, error) {
		return c.Deposit(cmd.Context(), amount)
	})
	withdraw := tx("withdraw", "Move free escrow balance back to the node's wallet", func(c *sdk.Client, cmd *cobra.Command, amount string) (*sdk.TxResult, error) {
		return c.Withdraw(cmd.Context(), amount)
	})
	cmd.AddCommand(balance, deposit, withdraw)
	return cmd
}

// parseTokens accepts base units ("1000") or whole tokens ("2.5tok").
func parseTokens(s string) (string, error) {
	if t, ok := strings.CutSuffix(s, "tok"); ok {
		r, ok := new(big.Rat).SetString(t)
		if !ok || r.Sign() <= 0 {
			return "", fmt.Errorf("amount %q: want a positive number of tokens, e.g. 2.5tok", s)
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)))
		if !r.IsInt() {
			return "", fmt.Errorf("amount %q has more than 18 decimals", s)
		}
		return r.Num().String(), nil
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() <= 0 {
		return "", fmt.Errorf("amount %q: want a positive integer of token base units, or tokens with the suffix tok", s)
	}
	return v.String(), nil
}

// tokens formats base units as tokens with up to 6 decimals.
func tokens(base string) string {
	v, ok := new(big.Int).SetString(base, 10)
	if !ok {
		return base
	}
	r := new(big.Rat).SetFrac(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil))
	return strings.TrimRight(strings.TrimRight(r.FloatString(6), "0"), ".") + " tok"
}

func printWallet(w io.Writer, wal *sdk.Wallet) error {
	_, err := fmt.Fprintf(w, "address:   %s\nchain:     %d (token %s, escrow %s)\nwallet:    %s\nescrow:    %s free, %s reserved\n",
		wal.Address, wal.ChainID, wal.Token, wal.Escrow, tokens(wal.Balance), tokens(wal.Free), tokens(wal.Reserved))
	return err
}
