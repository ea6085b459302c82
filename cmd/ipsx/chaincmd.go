package main

import (
	"fmt"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/network"
	"github.com/spf13/cobra"
)

func chainCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chain",
		Short: "Deploy the IPSX contracts to an Ethereum chain, and check a deployment",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(chainDeployCommand(a), chainVerifyCommand(a))
	return cmd
}

func chainDeployCommand(a *app) *cobra.Command {
	var (
		k             localKey
		rpcs          []string
		treasury      string
		commission    uint16
		grace         time.Duration
		bootstrap     []string
		confirmations optUint
		name, out     string
		force         bool
	)
	cmd := &cobra.Command{
		Use:   "deploy --chain-rpc URL",
		Short: "Deploy the token and the escrow, and write a network file",
		Long: `chain deploy deploys the IPSX token (its whole supply goes to the deploying
key) and an escrow for it to the chain at --chain-rpc (any Ethereum JSON-RPC
endpoint; several are tried in turn), with EIP-1559 fees, waits for both
receipts, checks the deployed code, prints the addresses and writes a
network file (--out) that nodes join with ipsx init --network or ipsx node
--network.

The key is --keystore (a geth keystore file) or the data dir's, decrypted
with the passphrase of --keystore-password-file or IPSX_PASSWORD; it needs
ETH for gas. Hand out tokens afterwards with ipsx wallet send --keystore.`,
		Example: `  ipsx chain deploy --chain-rpc http://127.0.0.1:8545 --datadir deployer --out network.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(rpcs) == 0 {
				return fmt.Errorf("--chain-rpc is required")
			}
			if k.path == "" {
				k.path = a.datadir
			}
			key, err := k.load(a)
			if err != nil {
				return err
			}
			from := ethcrypto.PubkeyToAddress(key.PublicKey)
			cfg := chain.DeployConfig{Treasury: from, CommissionBps: commission, GraceSeconds: uint64(grace / time.Second)}
			if treasury != "" {
				if !common.IsHexAddress(treasury) {
					return fmt.Errorf("--treasury %q is not an address", treasury)
				}
				cfg.Treasury = common.HexToAddress(treasury)
			}
			nf := network.File{Name: name, RPC: rpcs, CommissionBps: commission, Bootstrap: bootstrap, Confirmations: confirmations.v}
			// Check what can be checked before paying for gas.
			nf.ChainID, nf.Token, nf.Escrow = 1, common.Address{1}, common.Address{1}
			if err := nf.Validate(); err != nil {
				return err
			}
			if err := checkWritable(out, force); err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := chain.DialAll(ctx, rpcs)
			if err != nil {
				return err
			}
			defer b.Close()
			c, err := chain.Deploy(ctx, b, key, cfg)
			if err != nil {
				return err
			}
			if _, err := chain.VerifyDeployment(ctx, b, c); err != nil {
				return fmt.Errorf("deployed, but: %w", err)
			}
			nf.ChainID, nf.Token, nf.Escrow, nf.DeployBlock = c.ChainID.Uint64(), c.Token, c.Escrow, c.DeployBlock
			if err := nf.Write(out, force); err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"network": nf, "file": out, "deployer": from.Hex()})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "chain id: %d\n", nf.ChainID)
			fmt.Fprintf(w, "token: %s\n", c.Token.Hex())
			fmt.Fprintf(w, "escrow: %s\n", c.Escrow.Hex())
			fmt.Fprintf(w, "deploy block: %d\n", c.DeployBlock)
			fmt.Fprintf(w, "treasury: %s\n", cfg.Treasury.Hex())
			fmt.Fprintf(w, "token supply held by: %s\n", from.Hex())
			_, err = fmt.Fprintf(w, "network file: %s\n", out)
			return err
		},
	}
	fl := cmd.Flags()
	k.flags(cmd, "geth keystore file of the deploying key (default: the data dir's key)")
	fl.StringSliceVar(&rpcs, "chain-rpc", nil, "Ethereum JSON-RPC URL(s) of the chain (required; written to the network file)")
	fl.StringVar(&treasury, "treasury", "", "address that receives the commission (default: the deploying key's)")
	fl.Uint16Var(&commission, "commission-bps", 100, "the escrow's commission in basis points (at most 500)")
	fl.DurationVar(&grace, "grace", time.Hour, "how long after a deal's deadline its requester can take a refund")
	fl.StringSliceVar(&bootstrap, "bootstrap", nil, "bootstrap peers to list in the network file")
	fl.Var(&confirmations, "confirmations", "confirmations nodes wait for on deal events (default: 0 on the dev chain, 12 elsewhere)")
	fl.StringVar(&name, "name", "", "a name for the network")
	fl.StringVar(&out, "out", "network.json", "network file to write")
	fl.BoolVar(&force, "force", false, "replace an existing network file")
	return cmd
}

func chainVerifyCommand(a *app) *cobra.Command {
	var ch chainFlags
	cmd := &cobra.Command{
		Use:   "verify --network FILE",
		Short: "Check that a network's chain holds this build's contracts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			b, c, closeChain, err := ch.dial(ctx, true)
			if err != nil {
				return err
			}
			defer closeChain()
			d, err := chain.VerifyDeployment(ctx, b, c)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"chainId": c.ChainID, "token": c.Token, "escrow": c.Escrow,
					"treasury": d.Treasury, "commissionBps": d.CommissionBps, "graceSeconds": d.GraceSeconds})
			}
			return writeString(cmd.OutOrStdout(), fmt.Sprintf("ok: chain %s, token %s, escrow %s (commission %d bps, grace %s, treasury %s)\n",
				c.ChainID, c.Token.Hex(), c.Escrow.Hex(), d.CommissionBps, time.Duration(d.GraceSeconds)*time.Second, d.Treasury.Hex()))
		},
	}
	ch.flags(cmd)
	return cmd
}

func checkWritable(path string, force bool) error {
	if force {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; not replaced (--force replaces it)", path)
	}
	return nil
}
