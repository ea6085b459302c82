//go:build !nodevchain

package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// DevChainConfig configures a DevChain. Start from DefaultDevChainConfig.
type DevChainConfig struct {
	// Accounts is the number of funded dev accounts, DevKey(1..Accounts).
	Accounts int
	// Keys are further accounts to fund (for example a testnet's nodes).
	Keys []*ecdsa.PrivateKey
	// Fund are further addresses to fund, whose keys live elsewhere (a
	// keystore of `ipsx init`).
	Fund []common.Address
	// Empty leaves the contracts out: the chain starts with the funded
	// accounts' ETH only, for `ipsx chain deploy` to deploy to. Accounts
	// then get no tokens.
	Empty bool
	// ETH (wei) and Tokens (base units) each funded account gets.
	ETH, Tokens *big.Int
	// CommissionBps and GraceSeconds of the Escrow deployment.
	CommissionBps uint16
	GraceSeconds  uint64
	// ChainConfig selects the fork rules; nil is go-ethereum's dev chain
	// config (params.AllDevChainProtocolChanges). See MainnetRules.
	ChainConfig *params.ChainConfig
	// HTTPAddr is where RunDevChain serves JSON-RPC; a loopback host:port
	// unless PublicListen.
	HTTPAddr string
	// PublicListen lets HTTPAddr be any address: for a container whose
	// chain the other containers of a private network reach. The dev keys
	// are public, so anyone who reaches the chain can spend its funds.
	PublicListen bool
	// Faucet, when set, is served beside the JSON-RPC (see Faucet).
	Faucet *FaucetConfig
	// PollInterval is how often the chain's own clients poll for receipts.
	PollInterval time.Duration
}

// DefaultDevChainConfig: 4 accounts with 1000 ETH and 1,000,000 IPSX each,
// 1% commission, one hour of grace, JSON-RPC on 127.0.0.1:8545.
func DefaultDevChainConfig() DevChainConfig {
	return DevChainConfig{
		Accounts:      4,
		ETH:           new(big.Int).Mul(big.NewInt(1000), Ether),
		Tokens:        new(big.Int).Mul(big.NewInt(1_000_000), Token),
		CommissionBps: 100,
		GraceSeconds:  3600,
		HTTPAddr:      "127.0.0.1:8545",
		PollInterval:  5 * time.Millisecond,
	}
}

func (c *DevChainConfig) validate() error {
	switch {
	case c.Accounts < 0:
		return fmt.Errorf("%w: negative account count", ErrInvalidConfig)
	case c.ETH == nil || c.ETH.Sign() < 0 || c.Tokens == nil || c.Tokens.Sign() < 0:
		return fmt.Errorf("%w: ETH and Tokens must be set and non-negative", ErrInvalidConfig)
	case c.CommissionBps > 500:
		return fmt.Errorf("%w: commission %d bps above 500", ErrInvalidConfig, c.CommissionBps)
	case c.PollInterval <= 0:
		return fmt.Errorf("%w: poll interval must be positive", ErrInvalidConfig)
	}
	return nil
}

// DevChain is an in-memory Ethereum chain with a real EVM and the IPSX
// contracts deployed: go-ethereum's simulated backend, assembled from the
// same parts (node, eth service, simulated beacon) so that its RPC APIs can
// be served on a listener of our choosing. A block is sealed as soon as a
// transaction reaches the pool, by a goroutine that StartDevChain starts and
// Close joins; Commit and AdjustTime seal blocks on demand.
type DevChain struct {
	stack   *node.Node
	backend *eth.Ethereum
	beacon  *catalyst.SimulatedBeacon
	client  *ethclient.Client
	rpc     *rpc.Server // eth, net and web3 only

	contracts Contracts
	deployer  *ecdsa.PrivateKey
	funded    []*ecdsa.PrivateKey
	poll      time.Duration

	sealMu sync.Mutex // serialises block production
	paused atomic.Bool
	// sealing, if set, runs as an automatic seal starts, under sealMu (a
	// test's hook).
	sealing func()

	stop      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// StartDevChain starts the chain and its sealing goroutine, deploys the
// token and escrow and funds the accounts. Close releases it.
func StartDevChain(ctx context.Context, cfg DevChainConfig) (*DevChain, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	deployer := DevKey(0)
	funded := make([]*ecdsa.PrivateKey, 0, cfg.Accounts+len(cfg.Keys))
	for i := 1; i <= cfg.Accounts; i++ {
		funded = append(funded, DevKey(i))
	}
	funded = append(funded, cfg.Keys...)

	alloc := core.SystemContractAllocs()
	// The deployer pays for deployment and funding transactions.
	deployerETH := new(big.Int).Mul(big.NewInt(1_000_000), Ether)
	maps.Copy(alloc, types.GenesisAlloc{crypto.PubkeyToAddress(deployer.PublicKey): {Balance: deployerETH}})
	for _, k := range funded {
		alloc[crypto.PubkeyToAddress(k.PublicKey)] = types.Account{Balance: new(big.Int).Set(cfg.ETH)}
	}
	for _, a := range cfg.Fund {
		alloc[a] = types.Account{Balance: new(big.Int).Set(cfg.ETH)}
	}
	chainCfg := cfg.ChainConfig
	if chainCfg == nil {
		chainCfg = params.AllDevChainProtocolChanges
	}

	// As simulated.NewBackend does (go-ethereum v1.17.10).
	nodeConf := node.DefaultConfig
	nodeConf.DataDir = ""
	nodeConf.P2P = p2p.Config{NoDiscovery: true}
	ethConf := ethconfig.Defaults
	ethConf.Genesis = &core.Genesis{Config: chainCfg, GasLimit: ethconfig.Defaults.Miner.GasCeil, Alloc: alloc}
	ethConf.SyncMode = ethconfig.FullSync
	ethConf.TxPool.NoLocals = true
	ethConf.LogNoHistory = true

	stack, err := node.New(&nodeConf)
	if err != nil {
		return nil, fmt.Errorf("devchain: new node: %w", err)
	}
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("devchain: new eth service: %w", err)
	}
	filterAPI := filters.NewFilterAPI(filters.NewFilterSystem(backend.APIBackend, filters.Config{}))
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filterAPI}})
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, fmt.Errorf("devchain: start node: %w", err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("devchain: simulated beacon: %w", err)
	}
	if err := beacon.Fork(backend.BlockChain().GetCanonicalHash(0)); err != nil {
		stack.Close()
		return nil, fmt.Errorf("devchain: reset to genesis: %w", err)
	}

	// Served APIs: only eth, net and web3 — not admin, debug, miner or txpool.
	srv := rpc.NewServer()
	for _, api := range backend.APIs() {
		if api.Namespace == "eth" || api.Namespace == "net" {
			if err := srv.RegisterName(api.Namespace, api.Service); err != nil {
				stack.Close()
				return nil, fmt.Errorf("devchain: register %s api: %w", api.Namespace, err)
			}
		}
	}
	if err := errors.Join(srv.RegisterName("eth", filterAPI), srv.RegisterName("web3", web3API{})); err != nil {
		stack.Close()
		return nil, fmt.Errorf("devchain: register api: %w", err)
	}

	dc := &DevChain{
		stack: stack, backend: backend, beacon: beacon,
		client: ethclient.NewClient(stack.Attach()), rpc: srv,
		deployer: deployer, funded: funded, poll: cfg.PollInterval,
		stop: make(chan struct{}), loopDone: make(chan struct{}),
	}
	sub := make(chan core.NewTxsEvent, 16)
	subscription := backend.TxPool().SubscribeTransactions(sub, true)
	go dc.sealLoop(sub, subscription.Unsubscribe)

	if err := dc.setup(ctx, cfg); err != nil {
		dc.Close()
		return nil, err
	}
	return dc, nil
}

func (dc *DevChain) setup(ctx context.Context, cfg DevChainConfig) error {
	if cfg.Empty {
		dc.contracts = Contracts{ChainID: dc.backend.BlockChain().Config().ChainID}
		return nil
	}
	deployerAddr := crypto.PubkeyToAddress(dc.deployer.PublicKey)
	c, err := Deploy(ctx, dc.client, dc.deployer, DeployConfig{
		Treasury: deployerAddr, CommissionBps: cfg.CommissionBps, GraceSeconds: cfg.GraceSeconds,
	}, WithPollInterval(dc.poll))
	if err != nil {
		return fmt.Errorf("devchain: %w", err)
	}
	dc.contracts = c
	if cfg.Tokens.Sign() == 0 {
		return nil
	}
	cl, err := dc.NewClient(dc.deployer)
	if err != nil {
		return err
	}
	addrs := append([]common.Address(nil), cfg.Fund...)
	for _, k := range dc.funded {
		addrs = append(addrs, crypto.PubkeyToAddress(k.PublicKey))
	}
	for _, a := range addrs {
		if _, err := cl.Transfer(ctx, a, cfg.Tokens); err != nil {
			return fmt.Errorf("devchain: fund: %w", err)
		}
	}
	return nil
}

// sealLoop seals a block whenever transactions arrive, and an empty one
// whenever the wall clock has moved past the latest block, until Close.
// Without the empty blocks the chain's time would stand still while idle,
// and a refund that is due by the clock would still be "too early" on
// chain. (A chain that sealed ahead of the clock in a burst is left to
// fall back in step.)
func (dc *DevChain) sealLoop(txs <-chan core.NewTxsEvent, unsubscribe func()) {
	defer close(dc.loopDone)
	defer unsubscribe()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Transactions that arrive within a short window share a block: every
	// block moves the chain's clock at least a second, so sealing each one
	// alone would run the clock far ahead of the wall clock in a burst.
	const batch = 20 * time.Millisecond
	seal := time.NewTimer(time.Hour)
	seal.Stop()
	pending := false
	// The pool announces new transactions from its reorg loop, which
	// TxPool.Sync in sealPending waits for: a burst of announcements while
	// sealing must not fill the subscription and block that loop, so they
	// are drained here and folded into one nudge.
	arrived := make(chan struct{}, 1)
	drained := make(chan struct{})
	defer func() { <-drained }()
	go func() {
		defer close(drained)
		for {
			select {
			case <-dc.stop:
				return
			case <-txs:
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
		}
	}()
	for {
		select {
		case <-dc.stop:
			return
		case <-arrived:
			if !pending {
				pending = true
				seal.Reset(batch)
			}
		case <-seal.C:
			pending = false
			dc.sealPending()
		case now := <-tick.C:
			dc.sealMu.Lock()
			if !dc.paused.Load() && uint64(now.Unix()) > dc.backend.BlockChain().CurrentBlock().Time {
				dc.beacon.Commit()
			}
			dc.sealMu.Unlock()
		}
	}
}

// sealPending commits until no executable transaction is left, unless
// sealing is paused. It checks under sealMu, which PauseSealing takes.
func (dc *DevChain) sealPending() {
	dc.sealMu.Lock()
	defer dc.sealMu.Unlock()
	if dc.sealing != nil {
		dc.sealing()
	}
	if dc.paused.Load() {
		return
	}
	for i := 0; i < 16; i++ {
		dc.beacon.Commit()
		if err := dc.backend.TxPool().Sync(); err != nil {
			return
		}
		if pending, _ := dc.backend.TxPool().Stats(); pending == 0 {
			return
		}
	}
}

// Fund sends eth (wei) and tokens (base units) from the deployer to addr.
func (dc *DevChain) Fund(ctx context.Context, addr common.Address, eth, tokens *big.Int) error {
	cl, err := dc.NewClient(dc.deployer)
	if err != nil {
		return err
	}
	if eth != nil && eth.Sign() > 0 {
		if _, err := cl.SendETH(ctx, addr, eth); err != nil {
			return fmt.Errorf("devchain: fund %s: %w", addr.Hex(), err)
		}
	}
	if tokens != nil && tokens.Sign() > 0 {
		if _, err := cl.Transfer(ctx, addr, tokens); err != nil {
			return fmt.Errorf("devchain: fund %s: %w", addr.Hex(), err)
		}
	}
	return nil
}

// FundMany sends eth and tokens from the deployer to every address. The
// transfers are submitted together, so they share blocks.
func (dc *DevChain) FundMany(ctx context.Context, addrs []common.Address, eth, tokens *big.Int) error {
	cl, err := dc.NewClient(dc.deployer)
	if err != nil {
		return err
	}
	errs := make([]error, 2*len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if eth != nil && eth.Sign() > 0 {
				if _, err := cl.SendETH(ctx, a, eth); err != nil {
					errs[2*i] = fmt.Errorf("devchain: fund %s: %w", a.Hex(), err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			if tokens != nil && tokens.Sign() > 0 {
				if _, err := cl.Transfer(ctx, a, tokens); err != nil {
					errs[2*i+1] = fmt.Errorf("devchain: fund %s: %w", a.Hex(), err)
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Commit seals a block with the pending transactions and returns its hash.
func (dc *DevChain) Commit() common.Hash {
	dc.sealMu.Lock()
	defer dc.sealMu.Unlock()
	return dc.beacon.Commit()
}

// Fork makes the block parent the head of the chain, as a reorg does: the
// blocks after it leave the canonical chain, their logs are removed, and
// the transactions they carried are dropped rather than replayed, so what
// they did stays undone until someone sends them again. Blocks sealed
// afterwards build on parent. It fails while transactions are pending.
func (dc *DevChain) Fork(parent common.Hash) error {
	dc.sealMu.Lock()
	defer dc.sealMu.Unlock()
	if err := dc.beacon.Fork(parent); err != nil {
		return fmt.Errorf("devchain: fork at %s: %w", parent, err)
	}
	// The pool puts the dropped blocks' transactions back once it has seen
	// the new head; wait for that, then drop them.
	if err := dc.backend.TxPool().Sync(); err != nil {
		return fmt.Errorf("devchain: fork: sync pool: %w", err)
	}
	dc.backend.TxPool().Clear()
	return nil
}

// PauseSealing stops the chain from sealing blocks by itself, so that
// transactions wait in the pool as they do on a congested chain, until
// ResumeSealing. Commit and AdjustTime still seal.
//
// It waits for a seal under way: once it returns, no block takes a
// transaction sent afterwards.
func (dc *DevChain) PauseSealing() {
	dc.sealMu.Lock()
	defer dc.sealMu.Unlock()
	dc.paused.Store(true)
}

// ResumeSealing undoes PauseSealing and seals what is pending.
func (dc *DevChain) ResumeSealing() {
	dc.paused.Store(false)
	dc.sealPending()
}

// AdjustTime seals an empty block d later than the latest one, moving the
// chain's clock forward. It fails if transactions are pending.
func (dc *DevChain) AdjustTime(d time.Duration) error {
	dc.sealMu.Lock()
	defer dc.sealMu.Unlock()
	if err := dc.beacon.AdjustTime(d); err != nil {
		return fmt.Errorf("devchain: adjust time: %w", err)
	}
	return nil
}

// Client is an in-process JSON-RPC client of the chain.
func (dc *DevChain) Client() Backend { return dc.client }

// Contracts is the deployment on this chain (only the chain id on an
// Empty one).
func (dc *DevChain) Contracts() Contracts { return dc.contracts }

// Deployer is the key that deployed the contracts, holds the rest of the
// token supply and is the treasury.
func (dc *DevChain) Deployer() *ecdsa.PrivateKey { return dc.deployer }

// Funded returns the funded accounts' keys: DevKey(1..Accounts), then Keys.
func (dc *DevChain) Funded() []*ecdsa.PrivateKey {
	return append([]*ecdsa.PrivateKey(nil), dc.funded...)
}

// NewClient returns an escrow client on this chain signing with key.
func (dc *DevChain) NewClient(key *ecdsa.PrivateKey, opts ...Option) (*Client, error) {
	return NewClient(dc.client, dc.contracts, key, append([]Option{WithPollInterval(dc.poll)}, opts...)...)
}

// Serve serves the chain's eth, net and web3 JSON-RPC APIs over HTTP on ln
// until ctx is done, then shuts the server down. It returns nil after ctx
// is done.
func (dc *DevChain) Serve(ctx context.Context, ln net.Listener) error {
	return serveHTTP(ctx, ln, dc.rpc)
}

func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("devchain: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	if err != nil {
		return fmt.Errorf("devchain: shutdown: %w", err)
	}
	return nil
}

// Listen opens a TCP listener on addr, which must be a loopback address
// (the dev keys are public; the chain is for this machine only).
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrInvalidConfig, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%w: listen address %q is not loopback", ErrInvalidConfig, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devchain: %w", err)
	}
	return ln, nil
}

// ListenAndServe serves on a loopback addr until ctx is done.
func (dc *DevChain) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return dc.Serve(ctx, ln)
}

// Close stops sealing and the node. It is safe to call more than once.
func (dc *DevChain) Close() error {
	dc.closeOnce.Do(func() {
		close(dc.stop)
		<-dc.loopDone
		dc.rpc.Stop()
		dc.client.Close()
		dc.closeErr = errors.Join(dc.beacon.Stop(), dc.stack.Close())
	})
	return dc.closeErr
}

// RunDevChain starts a dev chain, serves it over JSON-RPC on cfg.HTTPAddr
// and writes its chain id, RPC URL, contract addresses and the funded dev
// accounts with their (public, dev-only) keys to out, one "name: value" per
// line. It returns when ctx is done.
func RunDevChain(ctx context.Context, cfg DevChainConfig, out io.Writer) error {
	listen := Listen
	if cfg.PublicListen {
		listen = listenAny
	}
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		if !cfg.PublicListen && errors.Is(err, ErrInvalidConfig) {
			return fmt.Errorf("%w (a container's chain: --allow-public-listen)", err)
		}
		return err
	}
	defer ln.Close()
	dc, err := StartDevChain(ctx, cfg)
	if err != nil {
		return err
	}
	defer dc.Close()
	var faucet *Faucet
	if cfg.Faucet != nil {
		if faucet, err = NewFaucet(dc, *cfg.Faucet, cfg.CommissionBps); err != nil {
			return err
		}
	}
	c := dc.Contracts()
	fmt.Fprintf(out, "chain id: %s\n", c.ChainID)
	if cfg.Empty {
		fmt.Fprintf(out, "contracts: none (deploy them with ipsx chain deploy)\n")
	} else {
		fmt.Fprintf(out, "token: %s\n", c.Token)
		fmt.Fprintf(out, "escrow: %s\n", c.Escrow)
		fmt.Fprintf(out, "treasury: %s\n", crypto.PubkeyToAddress(dc.deployer.PublicKey))
	}
	for i, k := range dc.funded {
		fmt.Fprintf(out, "account %d: %s key %s\n", i+1, crypto.PubkeyToAddress(k.PublicKey), hexutil.Encode(crypto.FromECDSA(k)))
	}
	for _, a := range cfg.Fund {
		fmt.Fprintf(out, "funded: %s\n", a)
	}
	if faucet != nil {
		fmt.Fprintf(out, "faucet: http://%s/faucet/ (%s wei and %s token units per address)\n", ln.Addr(), cfg.Faucet.ETH, cfg.Faucet.Tokens)
	}
	fmt.Fprintf(out, "rpc: http://%s\n", ln.Addr())
	return serveHTTP(ctx, ln, dc.Handler(faucet))
}

// listenAny is Listen without the loopback check (PublicListen).
func listenAny(addr string) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrInvalidConfig, addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devchain: %w", err)
	}
	return ln, nil
}

// web3API serves web3_clientVersion and web3_sha3, which wallets probe.
type web3API struct{}

func (web3API) ClientVersion() string { return "ipsx-devchain" }

func (web3API) Sha3(input hexutil.Bytes) hexutil.Bytes { return crypto.Keccak256(input) }
