package node

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/sdk"
	"golang.org/x/sync/singleflight"
)

// The chain connection: the escrow client of the node key, and a cached
// view of escrow balances for the anti-spam rule (an order is valid only if
// its maker's free escrow balance covers what it could cost).

// DefaultBalanceTTL is how long a maker's balance is trusted before it is
// read from the chain again.
const DefaultBalanceTTL = 30 * time.Second

// connectChain sets up the escrow client: from WithChain, or by dialing
// the chain's RPC URLs (Config.ChainRPC, then the network file's), which
// calls fail over across. The chain's id and escrow must be the node's
// EIP-712 domain, and a dialed chain's escrow must hold this build's code
// (chain.VerifyDeployment), with the network file's token and commission.
func (n *Node) connectChain(ctx context.Context) error {
	b, c := n.o.chainBackend, n.o.contracts
	if b == nil {
		urls := n.cfg.rpcs
		if len(urls) == 0 {
			n.log.Info("no chain configured: wallet calls answer no_chain and order balances are not checked")
			return nil
		}
		fo, err := chain.DialAll(ctx, urls)
		if err != nil {
			return fmt.Errorf("node: chain %s: %w", strings.Join(urls, ", "), err)
		}
		n.chainClose = fo.Close
		b = fo
		if f := n.network; f != nil {
			id, err := b.ChainID(ctx)
			if err != nil {
				return fmt.Errorf("node: chain id: %w", err)
			}
			if id.Uint64() != f.ChainID {
				return fmt.Errorf("node: %s serves chain %s, but the network file %s is for chain %d", fo.URL(), id, n.cfg.Network, f.ChainID)
			}
			c = chain.Contracts{ChainID: id, Token: f.Token, Escrow: f.Escrow, DeployBlock: f.DeployBlock}
		} else if c, err = chain.LoadContracts(ctx, b, common.HexToAddress(n.cfg.Escrow)); err != nil {
			return fmt.Errorf("node: escrow %s on %s: %w", n.cfg.Escrow, fo.URL(), err)
		}
		d, err := chain.VerifyDeployment(ctx, b, c)
		if err != nil {
			return fmt.Errorf("node: refusing the chain at %s: %w", fo.URL(), err)
		}
		if f := n.network; f != nil && d.CommissionBps != f.CommissionBps {
			return fmt.Errorf("node: refusing the chain at %s: its escrow takes %d bps commission, the network file %s says %d",
				fo.URL(), d.CommissionBps, n.cfg.Network, f.CommissionBps)
		}
	}
	if c.ChainID.Uint64() != n.cfg.ChainID || c.Escrow != common.HexToAddress(n.cfg.Escrow) {
		return fmt.Errorf("node: the chain is %d with escrow %s, but the node is configured for chain %d escrow %s (--chain-id, --escrow)",
			c.ChainID.Uint64(), c.Escrow.Hex(), n.cfg.ChainID, n.cfg.Escrow)
	}
	cl, err := chain.NewClient(b, c, n.key)
	if err != nil {
		return err
	}
	n.escrow = cl
	n.balances.client = cl
	return nil
}

// balanceView caches free escrow balances by maker. Lookups of one maker
// share one chain read; the cache forgets everything past maxBalances
// entries, which bounds memory against makers that churn.
type balanceView struct {
	ttl     time.Duration
	now     func() time.Time
	client  *chain.Client // nil: no chain, every maker is unknown
	timeout time.Duration
	failed  func(error) // told each failed read (the metrics)

	sf singleflight.Group
	mu sync.Mutex // guards m
	m  map[common.Address]cachedBalance
}

type cachedBalance struct {
	free *big.Int
	at   time.Time
}

const maxBalances = 100_000

func newBalanceView(ttl time.Duration, now func() time.Time) *balanceView {
	return &balanceView{ttl: ttl, now: now, timeout: 5 * time.Second, m: map[common.Address]cachedBalance{}}
}

// Free implements orderbook.BalanceView.
func (v *balanceView) Free(maker common.Address) (*big.Int, bool) {
	v.mu.Lock()
	c, ok := v.m[maker]
	v.mu.Unlock()
	if ok && v.now().Sub(c.at) < v.ttl {
		return c.free, true
	}
	if v.client == nil {
		return nil, false
	}
	res, err, _ := v.sf.Do(maker.Hex(), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
		defer cancel()
		b, err := v.client.Balances(ctx, maker)
		if err != nil {
			if v.failed != nil {
				v.failed(err)
			}
			return nil, err
		}
		v.mu.Lock()
		if len(v.m) >= maxBalances {
			v.m = map[common.Address]cachedBalance{}
		}
		v.m[maker] = cachedBalance{free: b.Escrow, at: v.now()}
		v.mu.Unlock()
		return b.Escrow, nil
	})
	if err != nil {
		if ok {
			return c.free, true // stale beats unknown while the chain is unreachable
		}
		return nil, false
	}
	return res.(*big.Int), true
}

// forget drops a maker's cached balance (after the node's own deposit or
// withdrawal).
func (v *balanceView) forget(maker common.Address) {
	v.mu.Lock()
	delete(v.m, maker)
	v.mu.Unlock()
}

// Wallet implements api.Backend.
func (n *Node) Wallet(ctx context.Context) (sdk.Wallet, error) {
	if n.escrow == nil {
		return sdk.Wallet{}, api.ErrNoChain
	}
	b, err := n.escrow.Balances(ctx, n.addr)
	if err != nil {
		n.metrics.chainCall("wallet", err)
		return sdk.Wallet{}, fmt.Errorf("read balances: %w", err)
	}
	gas, err := n.escrow.GasBalance(ctx, n.addr)
	if err != nil {
		return sdk.Wallet{}, fmt.Errorf("read balances: %w", err)
	}
	c := n.escrow.Contracts()
	return sdk.Wallet{
		Address: n.addr.Hex(), ChainID: c.ChainID.Uint64(), Token: c.Token.Hex(), Escrow: c.Escrow.Hex(),
		Balance: b.Token.String(), Free: b.Escrow.String(), Reserved: b.Reserved.String(), Gas: gas.String(),
	}, nil
}

// Send implements api.Backend.
func (n *Node) Send(ctx context.Context, to common.Address, amount *big.Int, eth bool) (sdk.TxResult, error) {
	if n.escrow == nil {
		return sdk.TxResult{}, api.ErrNoChain
	}
	kind := "send"
	if eth {
		kind = "send_eth"
	}
	return n.walletTx(ctx, kind, func() (*types.Receipt, error) {
		if eth {
			return n.escrow.SendETH(ctx, to, amount)
		}
		return n.escrow.Transfer(ctx, to, amount)
	})
}

// Deposit implements api.Backend.
func (n *Node) Deposit(ctx context.Context, amount *big.Int) (sdk.TxResult, error) {
	if n.escrow == nil {
		return sdk.TxResult{}, api.ErrNoChain
	}
	return n.walletTx(ctx, "deposit", func() (*types.Receipt, error) { return n.escrow.Deposit(ctx, amount) })
}

// Withdraw implements api.Backend.
func (n *Node) Withdraw(ctx context.Context, amount *big.Int) (sdk.TxResult, error) {
	if n.escrow == nil {
		return sdk.TxResult{}, api.ErrNoChain
	}
	return n.walletTx(ctx, "withdraw", func() (*types.Receipt, error) { return n.escrow.Withdraw(ctx, amount) })
}

func (n *Node) walletTx(ctx context.Context, kind string, tx func() (*types.Receipt, error)) (sdk.TxResult, error) {
	start := time.Now()
	r, err := tx()
	n.metrics.chainTxDone(kind, kind, start, err)
	n.balances.forget(n.addr)
	if err != nil {
		return sdk.TxResult{}, err
	}
	w, err := n.Wallet(ctx)
	if err != nil {
		return sdk.TxResult{}, err
	}
	return sdk.TxResult{TxHash: r.TxHash.Hex(), Block: r.BlockNumber.Uint64(), GasUsed: r.GasUsed, Wallet: w}, nil
}
