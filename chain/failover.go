package chain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// DefaultAttemptTimeout bounds one call to one endpoint of a Failover, so
// that an endpoint that accepts connections and never answers costs a
// call this long, not the caller's whole deadline.
const DefaultAttemptTimeout = 15 * time.Second

// Failover is a Backend over several JSON-RPC endpoints of one chain (the
// network file's RPC URLs). Each call goes to the endpoint that answered
// last; when that one cannot be reached (connection refused, a timeout, an
// HTTP error status, a garbled answer) the call is tried on the next, in
// turn, and the one that answers becomes the current endpoint. What a node
// answers — a revert, a nonce or funding refusal, not found — is returned
// as it is: another node would say the same.
//
// It is safe for concurrent use.
type Failover struct {
	urls    []string
	clients []*ethclient.Client
	cur     atomic.Uint32
	attempt time.Duration

	closeOnce sync.Once
}

var _ Backend = (*Failover)(nil)

// FailoverOption configures DialAll.
type FailoverOption func(*Failover)

// WithAttemptTimeout sets how long one endpoint gets to answer one call
// before the next is tried (default DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) FailoverOption {
	return func(f *Failover) { f.attempt = d }
}

// DialAll connects to every URL (http, ws or ipc) of one chain and checks
// that those reachable now agree on the chain id; at least one must be
// reachable. HTTP endpoints that are not are kept, to be tried when the
// others fail. Close releases them.
func DialAll(ctx context.Context, urls []string, opts ...FailoverOption) (*Failover, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no RPC URL", ErrInvalidConfig)
	}
	f := &Failover{attempt: DefaultAttemptTimeout}
	for _, o := range opts {
		o(f)
	}
	if f.attempt <= 0 {
		return nil, fmt.Errorf("%w: attempt timeout must be positive", ErrInvalidConfig)
	}
	var (
		id    *big.Int
		first = -1
		errs  []error
	)
	for _, u := range urls {
		c, err := ethclient.DialContext(ctx, u)
		if err != nil {
			// An HTTP endpoint is only dialled when called; a websocket
			// or IPC one that is down now is left out.
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		f.urls, f.clients = append(f.urls, u), append(f.clients, c)
		actx, cancel := context.WithTimeout(ctx, f.attempt)
		got, err := c.ChainID(actx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		if id != nil && got.Cmp(id) != 0 {
			f.Close()
			return nil, fmt.Errorf("%w: %s serves chain %s, %s chain %s", ErrInvalidConfig, f.urls[first], id, u, got)
		}
		if id == nil {
			id, first = got, len(f.clients)-1
		}
	}
	if id == nil {
		f.Close()
		return nil, fmt.Errorf("chain: no RPC endpoint answers: %w", errors.Join(errs...))
	}
	f.cur.Store(uint32(first))
	return f, nil
}

// URL is the endpoint calls go to now.
func (f *Failover) URL() string { return f.urls[f.cur.Load()] }

// Close closes every endpoint's client. It is safe to call more than once.
func (f *Failover) Close() {
	f.closeOnce.Do(func() {
		for _, c := range f.clients {
			c.Close()
		}
	})
}

// answered reports whether err is a node's answer, as opposed to a failure
// to get one.
func answered(err error) bool {
	var re rpc.Error
	return errors.Is(err, ethereum.NotFound) || errors.As(err, &re)
}

// try runs call on the current endpoint, then on the others in turn until
// one answers.
func try[T any](ctx context.Context, f *Failover, call func(context.Context, *ethclient.Client) (T, error)) (T, error) {
	var (
		zero T
		errs []error
	)
	start := f.cur.Load()
	for i := range uint32(len(f.clients)) {
		k := (start + i) % uint32(len(f.clients))
		actx, cancel := context.WithTimeout(ctx, f.attempt)
		v, err := call(actx, f.clients[k])
		cancel()
		if err == nil || answered(err) {
			if k != start {
				f.cur.CompareAndSwap(start, k)
			}
			return v, err
		}
		if ctx.Err() != nil {
			return zero, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", f.urls[k], err))
	}
	return zero, fmt.Errorf("chain: every RPC endpoint failed: %w", errors.Join(errs...))
}

func (f *Failover) ChainID(ctx context.Context) (*big.Int, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (*big.Int, error) { return c.ChainID(ctx) })
}

func (f *Failover) CodeAt(ctx context.Context, a common.Address, block *big.Int) ([]byte, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) ([]byte, error) { return c.CodeAt(ctx, a, block) })
}

func (f *Failover) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) ([]byte, error) {
		return c.CallContract(ctx, msg, block)
	})
}

func (f *Failover) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (*types.Header, error) {
		return c.HeaderByNumber(ctx, number)
	})
}

func (f *Failover) PendingCodeAt(ctx context.Context, a common.Address) ([]byte, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) ([]byte, error) { return c.PendingCodeAt(ctx, a) })
}

func (f *Failover) PendingNonceAt(ctx context.Context, a common.Address) (uint64, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (uint64, error) { return c.PendingNonceAt(ctx, a) })
}

func (f *Failover) NonceAt(ctx context.Context, a common.Address, block *big.Int) (uint64, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (uint64, error) { return c.NonceAt(ctx, a, block) })
}

func (f *Failover) BalanceAt(ctx context.Context, a common.Address, block *big.Int) (*big.Int, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (*big.Int, error) { return c.BalanceAt(ctx, a, block) })
}

func (f *Failover) SuggestGasPrice(ctx context.Context) (*big.Int, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (*big.Int, error) { return c.SuggestGasPrice(ctx) })
}

func (f *Failover) SuggestGasTipCap(ctx context.Context) (*big.Int, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (*big.Int, error) { return c.SuggestGasTipCap(ctx) })
}

func (f *Failover) EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (uint64, error) { return c.EstimateGas(ctx, msg) })
}

func (f *Failover) TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) (*types.Receipt, error) {
		return c.TransactionReceipt(ctx, hash)
	})
}

func (f *Failover) TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error) {
	type res struct {
		tx      *types.Transaction
		pending bool
	}
	r, err := try(ctx, f, func(ctx context.Context, c *ethclient.Client) (res, error) {
		tx, p, err := c.TransactionByHash(ctx, hash)
		return res{tx, p}, err
	})
	return r.tx, r.pending, err
}

func (f *Failover) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	return try(ctx, f, func(ctx context.Context, c *ethclient.Client) ([]types.Log, error) { return c.FilterLogs(ctx, q) })
}

// SubscribeFilterLogs subscribes on the current endpoint (a websocket
// one); a subscription does not move to another endpoint when its own
// fails.
func (f *Failover) SubscribeFilterLogs(ctx context.Context, q ethereum.FilterQuery, ch chan<- types.Log) (ethereum.Subscription, error) {
	return f.clients[f.cur.Load()].SubscribeFilterLogs(ctx, q, ch)
}

// SendTransaction sends tx to the current endpoint, and to the next when
// that one cannot be reached. The first may have taken it all the same
// and passed it on, so a later endpoint that says it knows the
// transaction, or has mined it, counts as success.
func (f *Failover) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	retried := false
	_, err := try(ctx, f, func(ctx context.Context, c *ethclient.Client) (struct{}, error) {
		err := c.SendTransaction(ctx, tx)
		if err != nil && retried && answered(err) {
			msg := err.Error()
			if strings.Contains(msg, "already known") {
				return struct{}{}, nil
			}
			if strings.Contains(msg, "nonce too low") {
				if _, _, terr := c.TransactionByHash(ctx, tx.Hash()); terr == nil {
					return struct{}{}, nil
				}
			}
		}
		retried = true
		return struct{}{}, err
	})
	return err
}
