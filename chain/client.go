package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain/bindings"
)

// Backend is what the client needs from a chain: an ethclient.Client (see
// Dial) or the DevChain's client. Implementations must be safe for
// concurrent use.
type Backend interface {
	bind.ContractBackend
	bind.DeployBackend
	ChainID(ctx context.Context) (*big.Int, error)
	// BalanceAt is an account's ETH (gas) balance at a block (nil: the
	// latest).
	BalanceAt(ctx context.Context, account common.Address, block *big.Int) (*big.Int, error)
	// TransactionByHash finds a transaction in the pool or on chain
	// (ethereum.NotFound if the node knows none).
	TransactionByHash(ctx context.Context, hash common.Hash) (tx *types.Transaction, isPending bool, err error)
	// NonceAt is an account's nonce in the state of a block (nil: the
	// latest): the transactions it has mined.
	NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error)
}

// Contracts locates one IPSX deployment.
type Contracts struct {
	ChainID *big.Int
	Token   common.Address
	Escrow  common.Address
	// DeployBlock is the block the token was deployed in, where reading
	// the escrow's events can start; 0 when not known (LoadContracts).
	DeployBlock uint64
}

// Domain returns the EIP-712 domain that deal terms, vouchers and cancels of
// this deployment are signed in.
func (c Contracts) Domain() agreement.Domain {
	return agreement.Domain{ChainID: c.ChainID, Escrow: c.Escrow}
}

// DealStatus is the escrow's record of a deal id.
type DealStatus uint8

const (
	StatusNone DealStatus = iota // never opened
	StatusOpen
	StatusSettled
	StatusRefunded
	StatusCancelled
)

func (s DealStatus) String() string {
	switch s {
	case StatusNone:
		return "none"
	case StatusOpen:
		return "open"
	case StatusSettled:
		return "settled"
	case StatusRefunded:
		return "refunded"
	case StatusCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("DealStatus(%d)", uint8(s))
}

// Balances of one address, in token base units.
type Balances struct {
	Token    *big.Int // in the address's wallet
	Escrow   *big.Int // free balance in the escrow
	Reserved *big.Int // locked in open deals
}

// Option configures a Client (and Deploy).
type Option func(*clientConfig)

type clientConfig struct {
	receiptTimeout time.Duration
	pollInterval   time.Duration
	replaceAfter   time.Duration
	// onSend, if set, sees every transaction sent, replacements included
	// (tests).
	onSend func(*types.Transaction)
}

// WithReceiptTimeout bounds the wait for each transaction's receipt
// (default 2 minutes).
func WithReceiptTimeout(d time.Duration) Option {
	return func(c *clientConfig) { c.receiptTimeout = d }
}

// WithPollInterval sets how often a receipt is polled for (default 1s; the
// dev chain mines instantly, so its clients use a few milliseconds).
func WithPollInterval(d time.Duration) Option { return func(c *clientConfig) { c.pollInterval = d } }

// WithReplaceAfter sets how long a transaction may wait unmined before it
// is replaced by one with the same nonce and higher fees (default 40 s,
// about three blocks on mainnet).
func WithReplaceAfter(d time.Duration) Option { return func(c *clientConfig) { c.replaceAfter = d } }

func newConfig(opts []Option) (clientConfig, error) {
	cfg := clientConfig{receiptTimeout: 2 * time.Minute, pollInterval: time.Second, replaceAfter: 40 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.receiptTimeout <= 0 || cfg.pollInterval <= 0 || cfg.replaceAfter <= 0 {
		return cfg, fmt.Errorf("%w: receipt timeout, poll interval and replacement delay must be positive", ErrInvalidConfig)
	}
	return cfg, nil
}

// sender signs, sends and waits for transactions from one key.
type sender struct {
	b       Backend
	key     *ecdsa.PrivateKey
	from    common.Address
	chainID *big.Int
	signer  types.Signer
	cfg     clientConfig

	mu sync.Mutex // serialises nonce lookup and send, so concurrent calls get distinct nonces
	// next is the nonce after the last transaction this sender sent, at
	// sentAt, with hash last; mu guards the three.
	next   uint64
	sentAt time.Time
	last   common.Hash
}

// nonceMemory is how long a sender trusts its own count of nonces over a
// node's pending nonce that is lower. The node lags by a block reset, a
// matter of milliseconds; a node whose pool dropped the sender's
// transaction stays lower, and is believed again after this long.
const nonceMemory = 30 * time.Second

func newSender(b Backend, chainID *big.Int, key *ecdsa.PrivateKey, opts []Option) (*sender, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if b == nil || key == nil || chainID == nil {
		return nil, fmt.Errorf("%w: backend, key and chain id are required", ErrInvalidConfig)
	}
	return &sender{
		b: b, key: key, from: crypto.PubkeyToAddress(key.PublicKey), chainID: chainID,
		signer: types.LatestSignerForChainID(chainID), cfg: cfg,
	}, nil
}

// send submits a transaction calling to (nil: contract creation) with data
// and waits for its receipt. A reverted transaction returns its receipt and
// an error wrapping ErrReverted.
func (s *sender) send(ctx context.Context, to *common.Address, data []byte) (*types.Receipt, error) {
	tx, err := s.signAndSend(ctx, to, data)
	if err != nil {
		return nil, err
	}
	txSent(ctx, tx.Hash())
	rcpt, err := s.wait(ctx, tx)
	if err != nil {
		return nil, err
	}
	if rcpt.Status != types.ReceiptStatusSuccessful {
		// Replay the call on the block's state for the revert data.
		msg := ethereum.CallMsg{From: s.from, To: to, Data: data, Gas: tx.Gas()}
		_, cerr := s.b.CallContract(ctx, msg, rcpt.BlockNumber)
		if cerr = classify(cerr); errors.Is(cerr, ErrReverted) {
			return rcpt, fmt.Errorf("tx %s: %w", tx.Hash(), cerr)
		}
		return rcpt, fmt.Errorf("tx %s: %w (gas used %d of %d)", tx.Hash(), ErrReverted, rcpt.GasUsed, tx.Gas())
	}
	return rcpt, nil
}

// sendPacked returns send bound to ctx and to, taking a TryPack result, so
// that arguments the ABI cannot encode (negative or oversized amounts) are an
// error rather than a panic.
func (s *sender) sendPacked(ctx context.Context, to *common.Address) func([]byte, error) (*types.Receipt, error) {
	return func(data []byte, err error) (*types.Receipt, error) {
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
		return s.send(ctx, to, data)
	}
}

func (s *sender) signAndSend(ctx context.Context, to *common.Address, data []byte) (*types.Transaction, error) {
	return s.signAndSendValue(ctx, to, nil, data)
}

func (s *sender) signAndSendValue(ctx context.Context, to *common.Address, value *big.Int, data []byte) (*types.Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gas, err := s.b.EstimateGas(ctx, ethereum.CallMsg{From: s.from, To: to, Value: value, Data: data})
	if err != nil {
		return nil, fmt.Errorf("estimate gas: %w", classify(err))
	}
	nonce, err := s.b.PendingNonceAt(ctx, s.from)
	if err != nil {
		return nil, fmt.Errorf("pending nonce: %w", err)
	}
	if nonce < s.next && time.Since(s.sentAt) < nonceMemory {
		// The pool may lag a block just sealed: the mined state then has
		// our last transaction, and its nonce is what counts.
		if mined, err := s.b.NonceAt(ctx, s.from, nil); err == nil && mined > nonce {
			nonce = mined
		}
	}
	if nonce < s.next && time.Since(s.sentAt) < nonceMemory && s.known(ctx, s.last) {
		// A lagging pool names a nonce of a transaction still pending;
		// signed anew, it could replace that one. (A node that knows
		// nothing of an unmined last transaction lost it, to a reorg or an
		// eviction, and its nonce is right. Asked about a transaction just
		// mined, a node may not know it yet while it indexes: the mined
		// nonce above settles that case first.)
		nonce = s.next
	}
	tip, err := s.b.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, fmt.Errorf("suggest gas tip: %w", err)
	}
	head, err := s.b.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("latest header: %w", err)
	}
	feeCap := new(big.Int).Set(tip)
	if head.BaseFee != nil {
		feeCap.Add(feeCap, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	}
	// The nonce may still be taken (another program sending from this
	// account): the node answers "nonce too low", "replacement transaction
	// underpriced" or "already known", and the next nonce is tried. A
	// nonce is only skipped when the node says it is taken, so no gap
	// opens.
	for attempt := 0; ; attempt++ {
		tx, err := types.SignNewTx(s.key, s.signer, &types.DynamicFeeTx{
			ChainID:   s.chainID,
			Nonce:     nonce,
			GasTipCap: tip,
			GasFeeCap: feeCap,
			Gas:       gas + gas/5, // estimates are exact; the margin absorbs state changes before inclusion
			To:        to,
			Value:     value,
			Data:      data,
		})
		if err != nil {
			return nil, fmt.Errorf("sign transaction: %w", err)
		}
		err = s.sendTx(ctx, tx)
		if err == nil {
			s.next, s.sentAt, s.last = nonce+1, time.Now(), tx.Hash()
			return tx, nil
		}
		if !nonceTaken(err.Error()) || attempt == maxNonceRetries {
			return nil, fmt.Errorf("send transaction: %w", classify(err))
		}
		fresh, perr := s.b.PendingNonceAt(ctx, s.from)
		if perr != nil {
			return nil, fmt.Errorf("pending nonce: %w", perr)
		}
		nonce = max(nonce+1, fresh)
	}
}

// known reports whether the node has heard of the transaction hash (in its
// pool or on chain); when it cannot say, it is assumed to have.
func (s *sender) known(ctx context.Context, hash common.Hash) bool {
	_, _, err := s.b.TransactionByHash(ctx, hash)
	return !errors.Is(err, ethereum.NotFound)
}

// maxNonceRetries bounds how many taken nonces a send steps over.
const maxNonceRetries = 8

func (s *sender) sendTx(ctx context.Context, tx *types.Transaction) error {
	if s.cfg.onSend != nil {
		s.cfg.onSend(tx)
	}
	return s.b.SendTransaction(ctx, tx)
}

// firstPoll is the first wait for a receipt.
const firstPoll = 25 * time.Millisecond

// maxReplacements bounds how often one transaction is replaced; each
// replacement raises its fees by at least an eighth.
const maxReplacements = 6

// wait waits for the receipt of tx, or of a replacement of it. A
// transaction left unmined for replaceAfter (its fees too low for a
// crowded chain) is replaced by one with the same nonce and fees an eighth
// higher, or the node's current suggestion if that is higher still (the
// pool takes a replacement only with both fees a tenth higher); whichever
// of them is mined ends the wait.
func (s *sender) wait(ctx context.Context, tx *types.Transaction) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.receiptTimeout)
	defer cancel()
	// The first looks come soon (a dev chain seals within milliseconds),
	// then the interval doubles up to the poll interval.
	every := min(firstPoll, s.cfg.pollInterval)
	t := time.NewTimer(every)
	defer t.Stop()
	sent := []common.Hash{tx.Hash()}
	cur, sentAt, replacing := tx, time.Now(), true
	var lastErr error
	for {
		for _, hash := range sent {
			rcpt, err := s.b.TransactionReceipt(ctx, hash)
			if err == nil {
				// A node can serve the receipt before its block is the head
				// that "latest" reads use; wait for the head so that reads
				// after a transaction see its effects.
				var head *types.Header
				if head, err = s.b.HeaderByNumber(ctx, nil); err == nil && head.Number.Cmp(rcpt.BlockNumber) >= 0 {
					return rcpt, nil
				}
			}
			if err != nil && !errors.Is(err, ethereum.NotFound) {
				lastErr = err
			}
		}
		if replacing && len(sent) <= maxReplacements && time.Since(sentAt) >= s.cfg.replaceAfter {
			next, err := s.bump(ctx, cur)
			if err == nil {
				err = s.sendTx(ctx, next)
			}
			switch {
			case err == nil:
				sent = append(sent, next.Hash())
				cur = next
			case strings.Contains(err.Error(), "nonce too low"):
				replacing = false // one of them is mined: its receipt is on the way
			case strings.Contains(err.Error(), "replacement transaction underpriced"):
				cur = next // the next bump starts from this one
			default:
				lastErr = err
			}
			sentAt = time.Now()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("tx %s: %w after %s (%d sent; last error: %v)", tx.Hash(), ErrReceiptTimeout, s.cfg.receiptTimeout, len(sent), lastErr)
			}
			return nil, fmt.Errorf("tx %s: wait for receipt: %w", tx.Hash(), ctx.Err())
		case <-t.C:
			every = min(2*every, s.cfg.pollInterval)
			t.Reset(every)
		}
	}
}

// bump signs tx again with higher fees.
func (s *sender) bump(ctx context.Context, tx *types.Transaction) (*types.Transaction, error) {
	raise := func(x *big.Int) *big.Int {
		r := new(big.Int).Rsh(x, 3)
		return r.Add(r.Add(r, x), common.Big1)
	}
	tip, feeCap := raise(tx.GasTipCap()), raise(tx.GasFeeCap())
	if sug, err := s.b.SuggestGasTipCap(ctx); err == nil && sug.Cmp(tip) > 0 {
		tip = sug
	}
	if head, err := s.b.HeaderByNumber(ctx, nil); err == nil && head.BaseFee != nil {
		if want := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2))); want.Cmp(feeCap) > 0 {
			feeCap = want
		}
	}
	if feeCap.Cmp(tip) < 0 {
		feeCap = new(big.Int).Set(tip)
	}
	next, err := types.SignNewTx(s.key, s.signer, &types.DynamicFeeTx{
		ChainID: s.chainID, Nonce: tx.Nonce(), GasTipCap: tip, GasFeeCap: feeCap,
		Gas: tx.Gas(), To: tx.To(), Value: tx.Value(), Data: tx.Data(),
	})
	if err != nil {
		return nil, fmt.Errorf("sign replacement: %w", err)
	}
	return next, nil
}

func (s *sender) call(ctx context.Context, to common.Address, data []byte) ([]byte, error) {
	out, err := s.b.CallContract(ctx, ethereum.CallMsg{From: s.from, To: &to, Data: data}, nil)
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// Client submits escrow and token transactions from one key and reads
// balances. Methods are safe for concurrent use; each transaction method
// blocks until its receipt arrives (or the receipt timeout) and returns it.
type Client struct {
	s      *sender
	c      Contracts
	escrow *bindings.Escrow
	token  *bindings.IPSXToken
}

// NewClient returns a client for the deployment c that signs with key. It
// does no I/O; see LoadContracts to locate a deployment from the escrow
// address.
func NewClient(b Backend, c Contracts, key *ecdsa.PrivateKey, opts ...Option) (*Client, error) {
	s, err := newSender(b, c.ChainID, key, opts)
	if err != nil {
		return nil, err
	}
	return &Client{s: s, c: c, escrow: bindings.NewEscrow(), token: bindings.NewIPSXToken()}, nil
}

// LoadContracts reads the chain id and the escrow's token address.
func LoadContracts(ctx context.Context, b Backend, escrow common.Address) (Contracts, error) {
	id, err := b.ChainID(ctx)
	if err != nil {
		return Contracts{}, fmt.Errorf("chain id: %w", err)
	}
	code, err := b.CodeAt(ctx, escrow, nil)
	if err != nil {
		return Contracts{}, fmt.Errorf("escrow code: %w", err)
	}
	if len(code) == 0 {
		return Contracts{}, fmt.Errorf("%w: escrow %s", ErrNoContract, escrow)
	}
	e := bindings.NewEscrow()
	out, err := b.CallContract(ctx, ethereum.CallMsg{To: &escrow, Data: e.PackToken()}, nil)
	if err != nil {
		return Contracts{}, fmt.Errorf("escrow token: %w", classify(err))
	}
	token, err := e.UnpackToken(out)
	if err != nil {
		return Contracts{}, fmt.Errorf("escrow token: %w", err)
	}
	return Contracts{ChainID: id, Token: token, Escrow: escrow}, nil
}

// Address is the client's account.
func (c *Client) Address() common.Address { return c.s.from }

// Contracts is the deployment the client talks to.
func (c *Client) Contracts() Contracts { return c.c }

// Deposit approves the escrow for amount (if the allowance is short) and
// deposits amount into the caller's free balance. It returns the deposit's
// receipt.
func (c *Client) Deposit(ctx context.Context, amount *big.Int) (*types.Receipt, error) {
	if amount == nil || amount.Sign() <= 0 {
		return nil, fmt.Errorf("deposit %v: %w: amount must be positive", amount, ErrInvalidArgument)
	}
	out, err := c.s.call(ctx, c.c.Token, c.token.PackAllowance(c.s.from, c.c.Escrow))
	if err != nil {
		return nil, fmt.Errorf("deposit: allowance: %w", err)
	}
	allowance, err := c.token.UnpackAllowance(out)
	if err != nil {
		return nil, fmt.Errorf("deposit: allowance: %w", err)
	}
	if allowance.Cmp(amount) < 0 {
		if _, err := c.s.sendPacked(ctx, &c.c.Token)(c.token.TryPackApprove(c.c.Escrow, amount)); err != nil {
			return nil, fmt.Errorf("deposit: approve %s: %w", amount, err)
		}
	}
	r, err := c.s.sendPacked(ctx, &c.c.Escrow)(c.escrow.TryPackDeposit(amount))
	if err != nil {
		return r, fmt.Errorf("deposit %s: %w", amount, err)
	}
	return r, nil
}

// SendETH sends amount wei to an address and waits for the receipt (the dev
// chain and testnets fund accounts with it).
func (c *Client) SendETH(ctx context.Context, to common.Address, amount *big.Int) (*types.Receipt, error) {
	if amount == nil || amount.Sign() <= 0 {
		return nil, fmt.Errorf("send ETH %v: %w: amount must be positive", amount, ErrInvalidArgument)
	}
	tx, err := c.s.signAndSendValue(ctx, &to, amount, nil)
	if err != nil {
		return nil, fmt.Errorf("send ETH to %s: %w", to.Hex(), err)
	}
	r, err := c.s.wait(ctx, tx)
	if err != nil {
		return r, fmt.Errorf("send ETH to %s: %w", to.Hex(), err)
	}
	return r, nil
}

// Withdraw moves amount from the caller's free escrow balance to its wallet.
func (c *Client) Withdraw(ctx context.Context, amount *big.Int) (*types.Receipt, error) {
	r, err := c.s.sendPacked(ctx, &c.c.Escrow)(c.escrow.TryPackWithdraw(amount))
	if err != nil {
		return r, fmt.Errorf("withdraw %s: %w", amount, err)
	}
	return r, nil
}

// Transfer sends amount tokens from the caller's wallet to to.
func (c *Client) Transfer(ctx context.Context, to common.Address, amount *big.Int) (*types.Receipt, error) {
	r, err := c.s.sendPacked(ctx, &c.c.Token)(c.token.TryPackTransfer(to, amount))
	if err != nil {
		return r, fmt.Errorf("transfer %s to %s: %w", amount, to, err)
	}
	return r, nil
}

// Open opens the deal t with both parties' signatures over its id.
func (c *Client) Open(ctx context.Context, t agreement.Terms, providerSig, requesterSig []byte) (*types.Receipt, error) {
	r, err := c.s.sendPacked(ctx, &c.c.Escrow)(c.escrow.TryPackOpen(dealArg(t), providerSig, requesterSig))
	if err != nil {
		return r, fmt.Errorf("open deal %s: %w", t.ID(c.c.Domain()), err)
	}
	return r, nil
}

// Settle pays the provider (the caller) with the requester-signed voucher.
func (c *Client) Settle(ctx context.Context, t agreement.Terms, v agreement.Voucher, requesterSig []byte) (*types.Receipt, error) {
	r, err := c.s.sendPacked(ctx, &c.c.Escrow)(c.escrow.TryPackSettle(dealArg(t), voucherArg(v), requesterSig))
	if err != nil {
		return r, fmt.Errorf("settle deal %s: %w", t.ID(c.c.Domain()), err)
	}
	return r, nil
}

// Refund returns an unsettled deal's reservation to its requester after
// the deadline plus the escrow's grace period.
func (c *Client) Refund(ctx context.Context, t agreement.Terms) (*types.Receipt, error) {
	r, err := c.s.sendPacked(ctx, &c.c.Escrow)(c.escrow.TryPackRefund(dealArg(t)))
	if err != nil {
		return r, fmt.Errorf("refund deal %s: %w", t.ID(c.c.Domain()), err)
	}
	return r, nil
}

// Cancel closes an open deal with both parties' signatures over
// agreement.CancelDigest.
func (c *Client) Cancel(ctx context.Context, t agreement.Terms, providerSig, requesterSig []byte) (*types.Receipt, error) {
	r, err := c.s.sendPacked(ctx, &c.c.Escrow)(c.escrow.TryPackCancel(dealArg(t), providerSig, requesterSig))
	if err != nil {
		return r, fmt.Errorf("cancel deal %s: %w", t.ID(c.c.Domain()), err)
	}
	return r, nil
}

// Balances returns addr's wallet balance, free escrow balance and reserved
// amount at the latest block.
func (c *Client) Balances(ctx context.Context, addr common.Address) (Balances, error) {
	out, err := c.s.call(ctx, c.c.Token, c.token.PackBalanceOf(addr))
	if err != nil {
		return Balances{}, fmt.Errorf("token balance of %s: %w", addr, err)
	}
	tok, err := c.token.UnpackBalanceOf(out)
	if err != nil {
		return Balances{}, fmt.Errorf("token balance of %s: %w", addr, err)
	}
	out, err = c.s.call(ctx, c.c.Escrow, c.escrow.PackAccounts(addr))
	if err != nil {
		return Balances{}, fmt.Errorf("escrow account of %s: %w", addr, err)
	}
	acc, err := c.escrow.UnpackAccounts(out)
	if err != nil {
		return Balances{}, fmt.Errorf("escrow account of %s: %w", addr, err)
	}
	return Balances{Token: tok, Escrow: acc.Balance, Reserved: acc.Reserved}, nil
}

// GasBalance returns addr's ETH balance (what pays for gas), in wei, at
// the latest block.
func (c *Client) GasBalance(ctx context.Context, addr common.Address) (*big.Int, error) {
	b, err := c.s.b.BalanceAt(ctx, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("gas balance of %s: %w", addr, err)
	}
	return b, nil
}

// DealStatus returns the escrow's status of a deal id.
func (c *Client) DealStatus(ctx context.Context, id common.Hash) (DealStatus, error) {
	out, err := c.s.call(ctx, c.c.Escrow, c.escrow.PackDealStatus(id))
	if err != nil {
		return 0, fmt.Errorf("deal status %s: %w", id, err)
	}
	s, err := c.escrow.UnpackDealStatus(out)
	if err != nil {
		return 0, fmt.Errorf("deal status %s: %w", id, err)
	}
	return DealStatus(s), nil
}

// DealID asks the contract for the id of t; it equals t.ID(Contracts().Domain()).
func (c *Client) DealID(ctx context.Context, t agreement.Terms) (common.Hash, error) {
	data, err := c.escrow.TryPackDealId(dealArg(t))
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	out, err := c.s.call(ctx, c.c.Escrow, data)
	if err != nil {
		return common.Hash{}, fmt.Errorf("deal id: %w", err)
	}
	id, err := c.escrow.UnpackDealId(out)
	return id, err
}

// VoucherDigest asks the contract for the digest of v; it equals
// v.Digest(Contracts().Domain()).
func (c *Client) VoucherDigest(ctx context.Context, v agreement.Voucher) (common.Hash, error) {
	data, err := c.escrow.TryPackVoucherDigest(voucherArg(v))
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	out, err := c.s.call(ctx, c.c.Escrow, data)
	if err != nil {
		return common.Hash{}, fmt.Errorf("voucher digest: %w", err)
	}
	d, err := c.escrow.UnpackVoucherDigest(out)
	return d, err
}

// CancelDigest asks the contract for the digest of Cancel{id}; it equals
// agreement.CancelDigest(Contracts().Domain(), id).
func (c *Client) CancelDigest(ctx context.Context, id common.Hash) (common.Hash, error) {
	out, err := c.s.call(ctx, c.c.Escrow, c.escrow.PackCancelDigest(id))
	if err != nil {
		return common.Hash{}, fmt.Errorf("cancel digest: %w", err)
	}
	d, err := c.escrow.UnpackCancelDigest(out)
	return d, err
}

func orZero(x *big.Int) *big.Int {
	if x == nil {
		return new(big.Int)
	}
	return x
}

func dealArg(t agreement.Terms) bindings.EscrowDeal {
	return bindings.EscrowDeal{
		OfferId:        t.OfferID,
		RequestId:      t.RequestID,
		Provider:       t.Provider,
		Requester:      t.Requester,
		Ips:            t.IPs,
		PricePerIpHour: orZero(t.PricePerIPHour),
		PricePerGB:     orZero(t.PricePerGB),
		MaxAmount:      orZero(t.MaxAmount),
		Start:          t.Start,
		Deadline:       t.Deadline,
		Nonce:          t.Nonce,
	}
}

func voucherArg(v agreement.Voucher) bindings.EscrowVoucher {
	return bindings.EscrowVoucher{DealId: v.DealID, Amount: orZero(v.Amount), ByteCount: v.Bytes, ConnLogHash: v.ConnLogHash}
}

// DeployConfig parameterises a new deployment.
type DeployConfig struct {
	Treasury      common.Address // receives the commission in its escrow balance
	CommissionBps uint16         // at most 500 (5%)
	GraceSeconds  uint64         // refund possible from deadline + grace
}

// Deploy deploys IPSXToken (its whole supply goes to key's address) and an
// Escrow for it, with EIP-1559 fees, waiting for both receipts.
func Deploy(ctx context.Context, b Backend, key *ecdsa.PrivateKey, cfg DeployConfig, opts ...Option) (Contracts, error) {
	if cfg.CommissionBps > 500 || cfg.Treasury == (common.Address{}) {
		return Contracts{}, fmt.Errorf("%w: commission %d bps (max 500), treasury %s", ErrInvalidConfig, cfg.CommissionBps, cfg.Treasury)
	}
	id, err := b.ChainID(ctx)
	if err != nil {
		return Contracts{}, fmt.Errorf("deploy: chain id: %w", err)
	}
	s, err := newSender(b, id, key, opts)
	if err != nil {
		return Contracts{}, err
	}
	rt, err := s.send(ctx, nil, common.FromHex(bindings.IPSXTokenMetaData.Bin))
	if err != nil {
		return Contracts{}, fmt.Errorf("deploy token: %w", err)
	}
	ctor := bindings.NewEscrow().PackConstructor(rt.ContractAddress, cfg.Treasury, cfg.CommissionBps, cfg.GraceSeconds)
	re, err := s.send(ctx, nil, append(common.FromHex(bindings.EscrowMetaData.Bin), ctor...))
	if err != nil {
		return Contracts{}, fmt.Errorf("deploy escrow: %w", err)
	}
	return Contracts{ChainID: id, Token: rt.ContractAddress, Escrow: re.ContractAddress, DeployBlock: rt.BlockNumber.Uint64()}, nil
}
