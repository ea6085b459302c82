// Package testnet runs an in-process IPSX network on loopback for tests,
// benchmarks and `ipsx testnet up`: N nodes, each with its own data dir, its
// own 127.0.0.x address (which later issues use as its egress IP) and a
// country, all connected to each other. It is for development only: keys
// are encrypted with light scrypt and a fixed passphrase.
package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Passphrase encrypts every testnet key. Not a secret.
const Passphrase = "ipsx-testnet"

// DefaultCountries are the shards a testnet spreads its nodes over.
var DefaultCountries = []string{"DE", "US", "JP"}

// Config describes a testnet.
type Config struct {
	// Dir holds one data dir per node and testnet.json.
	Dir string
	// Nodes is how many nodes to start. With Providers or Requesters set,
	// it is their sum: the first Providers nodes are providers, each
	// publishing a live offer (Offer) in its country; the rest are
	// requesters.
	Nodes      int
	Providers  int
	Requesters int
	// Offer is what provider i offers in country cc (default DefaultOffer).
	Offer func(i int, cc string) sdk.OfferParams
	// AutoBuy is what requesters run with: auto-buy is on in a testnet
	// (only there), with DefaultAutoBuy unless set.
	AutoBuy *node.AutoBuy
	// Countries the nodes are spread over, round-robin (default DE, US, JP).
	Countries []string
	// Subscribe, if set, gives the shards node i subscribes to; by default
	// every node subscribes to every country of the testnet.
	Subscribe func(i int) []string
	// FirstHost is the last octet of the first node's 127.0.0.x address
	// (default 11); node i gets FirstHost+i.
	FirstHost int
	// Logger for the nodes (default: discard).
	Logger *slog.Logger
	// NodeOptions are passed to every node; MemberOptions(i), if set, adds
	// options for node i.
	NodeOptions   []node.Option
	MemberOptions func(i int) []node.Option
	// GeoIP, if set, gives node i's geolocation databases (--geoip).
	GeoIP func(i int) []string
	// DevChain, if set, is the chain every node uses in-process; each node
	// is funded from its deployer with FundETH and FundTokens and deposits
	// Deposit into the escrow.
	DevChain   *chain.DevChain
	FundETH    *big.Int
	FundTokens *big.Int
	Deposit    *big.Int
	// Chain describes the chain for testnet.json (RPC is the caller's to
	// fill in when it serves the chain); with DevChain and no Chain, it is
	// derived from DevChain without an RPC address.
	Chain *ChainInfo
}

// Default funding of a testnet node: 10 ETH for gas, 1,000,000 tokens, of
// which 100,000 go into the escrow.
var (
	DefaultFundETH    = new(big.Int).Mul(big.NewInt(10), chain.Ether)
	DefaultFundTokens = new(big.Int).Mul(big.NewInt(1_000_000), chain.Token)
	DefaultDeposit    = new(big.Int).Mul(big.NewInt(100_000), chain.Token)
)

// ChainInfo describes the chain of a testnet, as in testnet.json.
type ChainInfo struct {
	RPC     string `json:"rpc"`
	ChainID uint64 `json:"chainId"`
	Token   string `json:"token"`
	Escrow  string `json:"escrow"`
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return errors.New("testnet: no directory")
	}
	if len(c.Countries) == 0 {
		c.Countries = DefaultCountries
	}
	if c.Providers < 0 || c.Requesters < 0 {
		return errors.New("testnet: negative provider or requester count")
	}
	if c.Providers+c.Requesters > 0 {
		c.Nodes = c.Providers + c.Requesters
	}
	if c.Offer == nil {
		c.Offer = DefaultOffer
	}
	if c.AutoBuy == nil {
		ab := DefaultAutoBuy()
		c.AutoBuy = &ab
	}
	if c.FirstHost == 0 {
		c.FirstHost = 11
	}
	if c.Nodes < 0 || c.FirstHost+c.Nodes > 254 {
		return fmt.Errorf("testnet: %d nodes from 127.0.0.%d do not fit in 127.0.0.0/24", c.Nodes, c.FirstHost)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DevChain != nil {
		ct := c.DevChain.Contracts()
		if c.Chain == nil {
			c.Chain = &ChainInfo{}
		}
		c.Chain.ChainID, c.Chain.Token, c.Chain.Escrow = ct.ChainID.Uint64(), ct.Token.Hex(), ct.Escrow.Hex()
		if c.FundETH == nil {
			c.FundETH = DefaultFundETH
		}
		if c.FundTokens == nil {
			c.FundTokens = DefaultFundTokens
		}
		if c.Deposit == nil {
			c.Deposit = DefaultDeposit
		}
	}
	return nil
}

// DefaultOffer is a testnet provider's offer, sdk.DevOffer.
func DefaultOffer(i int, cc string) sdk.OfferParams { return sdk.DevOffer(cc) }

// DefaultAutoBuy is a testnet requester's auto-buy: deals of 10 minutes
// at up to 0.01 token per IP-hour and 0.1 per GB, within 10 tokens an hour.
func DefaultAutoBuy() node.AutoBuy {
	tok := func(milli int64) *big.Int {
		return new(big.Int).Mul(big.NewInt(milli), big.NewInt(1_000_000_000_000_000))
	}
	return node.AutoBuy{BudgetPerHour: tok(10_000), MaxPricePerHour: tok(10), MaxPricePerGB: tok(100)}
}

// Member is one node of the testnet.
type Member struct {
	Name    string
	Role    string // provider, requester, or empty
	Index   int
	Country string
	IP      string // 127.0.0.x: listen address and egress IP
	Datadir string
	Node    *node.Node

	cancel context.CancelFunc
	done   chan error
}

// Testnet is a running in-process network.
type Testnet struct {
	cfg       Config
	deferFund bool       // Start funds all nodes together once they run
	nextRole  string     // the role of the member Start adds next
	mu        sync.Mutex // guards Members
	Members   []*Member
}

// Start creates the data dirs, starts every node, connects them all and
// writes Dir/testnet.json. Close stops them.
func Start(ctx context.Context, cfg Config) (*Testnet, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Testnet{cfg: cfg}
	// Nodes start one by one; their funding runs together, so that the dev
	// chain packs it into few blocks (each block moves its clock a second).
	t.deferFund = true
	for i := 0; i < cfg.Nodes; i++ {
		subs := cfg.Countries
		if cfg.Subscribe != nil {
			subs = cfg.Subscribe(i)
		}
		role := ""
		switch {
		case i < cfg.Providers:
			role = "provider"
		case i < cfg.Providers+cfg.Requesters:
			role = "requester"
		}
		t.nextRole = role
		if _, err := t.Add(ctx, cfg.Countries[i%len(cfg.Countries)], subs); err != nil {
			t.Close()
			return nil, err
		}
	}
	t.deferFund = false
	if err := t.fundAll(ctx, t.Members); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.startRoles(ctx); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.WriteJSON(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Add starts one more node with the given country and subscriptions and
// connects it to every running member.
func (t *Testnet) Add(ctx context.Context, country string, subscribe []string) (*Member, error) {
	t.mu.Lock()
	i := len(t.Members)
	t.mu.Unlock()
	m := &Member{
		Role:    t.nextRole,
		Name:    fmt.Sprintf("node%d", i),
		Index:   i,
		Country: country,
		IP:      fmt.Sprintf("127.0.0.%d", t.cfg.FirstHost+i),
		Datadir: filepath.Join(t.cfg.Dir, fmt.Sprintf("node%d", i)),
	}
	cfg := node.Config{
		Listen:    []string{"/ip4/" + m.IP + "/tcp/0", "/ip4/" + m.IP + "/udp/0/quic-v1"},
		API:       m.IP + ":0",
		SOCKS:     m.IP + ":0",
		HTTP:      m.IP + ":0",
		Countries: subscribe,
		Scrypt:    node.ScryptLight,
		DHTServer: true,
	}
	if c := t.cfg.Chain; c != nil {
		cfg.ChainID, cfg.Escrow = c.ChainID, c.Escrow
	}
	if t.cfg.GeoIP != nil {
		cfg.GeoIP = t.cfg.GeoIP(i)
	}
	if _, err := os.Stat(filepath.Join(m.Datadir, "keystore")); errors.Is(err, os.ErrNotExist) {
		key, err := ethcrypto.GenerateKey()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(m.Datadir, 0o700); err != nil {
			return nil, err
		}
		if _, err := node.WriteKey(m.Datadir, key, Passphrase, node.ScryptLight); err != nil {
			return nil, err
		}
		if err := node.WriteConfig(m.Datadir, cfg); err != nil {
			return nil, err
		}
	}
	n, err := node.New(m.Datadir, Passphrase, cfg, t.nodeOptions(m)...)
	if err != nil {
		return nil, fmt.Errorf("testnet: %s: %w", m.Name, err)
	}
	m.Node = n
	if err := t.run(ctx, m); err != nil {
		return nil, err
	}
	if !t.deferFund {
		if err := t.fundAll(ctx, []*Member{m}); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	others := append([]*Member(nil), t.Members...)
	t.Members = append(t.Members, m)
	t.mu.Unlock()
	for _, o := range others {
		if o.Node == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.Connect(cctx, o.Node.AddrInfo())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("testnet: connect %s to %s: %w", m.Name, o.Name, err)
		}
	}
	return m, nil
}

func (t *Testnet) nodeOptions(m *Member) []node.Option {
	// The testnet's providers exit from their own 127.0.0.x and may reach
	// loopback, so that a local server can stand in for the internet. Only
	// here: a provider serving the public never may.
	opts := []node.Option{
		node.WithLogger(t.cfg.Logger.With("node", m.Name)),
		node.WithEgress(netip.MustParseAddr(m.IP)),
		node.WithUnsafeLoopbackExit(),
	}
	if dc := t.cfg.DevChain; dc != nil {
		opts = append(opts, node.WithChain(dc.Client(), dc.Contracts()))
	}
	if m.Role == "requester" {
		opts = append(opts, node.WithAutoBuy(*t.cfg.AutoBuy))
	}
	if t.cfg.MemberOptions != nil {
		opts = append(opts, t.cfg.MemberOptions(m.Index)...)
	}
	return append(opts, t.cfg.NodeOptions...)
}

// fundAll gives members ETH and tokens from the dev chain's deployer and
// has each deposit into the escrow, all members at once.
func (t *Testnet) fundAll(ctx context.Context, ms []*Member) error {
	dc := t.cfg.DevChain
	if dc == nil || len(ms) == 0 {
		return nil
	}
	var addrs []common.Address
	for _, m := range ms {
		addrs = append(addrs, m.Node.Address())
	}
	if err := dc.FundMany(ctx, addrs, t.cfg.FundETH, t.cfg.FundTokens); err != nil {
		return fmt.Errorf("testnet: fund: %w", err)
	}
	if t.cfg.Deposit.Sign() <= 0 {
		return nil
	}
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Node.Deposit(ctx, t.cfg.Deposit); err != nil {
				errs[i] = fmt.Errorf("testnet: %s deposit: %w", m.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startRoles names the members' roles and has each provider publish its
// offer.
func (t *Testnet) startRoles(ctx context.Context) error {
	if t.cfg.Providers+t.cfg.Requesters == 0 {
		return nil
	}
	for i, m := range t.Members {
		if m.Role != "provider" {
			continue
		}
		if _, err := m.Node.CreateOffer(ctx, t.cfg.Offer(i, m.Country)); err != nil {
			return fmt.Errorf("testnet: %s offer: %w", m.Name, err)
		}
	}
	return nil
}

// run starts a member's node and waits until it is ready.
func (t *Testnet) run(ctx context.Context, m *Member) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done = cancel, make(chan error, 1)
	go func() { m.done <- m.Node.Run(rctx) }()
	select {
	case <-m.Node.Ready():
		return nil
	case err := <-m.done:
		cancel()
		_ = m.Node.Close()
		m.done <- err
		return fmt.Errorf("testnet: start %s: %w", m.Name, err)
	case <-ctx.Done():
		cancel()
		<-m.done
		_ = m.Node.Close()
		return ctx.Err()
	}
}

// Stop stops one member's node (its data dir stays) and returns Run's
// error.
func (m *Member) Stop() error {
	if m.Node == nil {
		return nil
	}
	m.cancel()
	err := <-m.done
	if cerr := m.Node.Close(); err == nil {
		err = cerr
	}
	m.Node = nil
	return err
}

// Restart starts a stopped member again on the same data dir and
// reconnects it to the running members.
func (t *Testnet) Restart(ctx context.Context, m *Member) error {
	return t.restart(ctx, m, true)
}

// RestartAlone starts a stopped member again without connecting it to
// anyone: it must find the network by itself (its address book).
func (t *Testnet) RestartAlone(ctx context.Context, m *Member) error {
	return t.restart(ctx, m, false)
}

func (t *Testnet) restart(ctx context.Context, m *Member, reconnect bool) error {
	if m.Node != nil {
		return fmt.Errorf("testnet: %s is running", m.Name)
	}
	cfg, err := node.LoadConfig(m.Datadir)
	if err != nil {
		return err
	}
	n, err := node.New(m.Datadir, Passphrase, cfg, t.nodeOptions(m)...)
	if err != nil {
		return err
	}
	m.Node = n
	if err := t.run(ctx, m); err != nil {
		m.Node = nil
		return err
	}
	for _, o := range t.Running() {
		if o == m || !reconnect {
			continue
		}
		if err := n.Connect(ctx, o.Node.AddrInfo()); err != nil {
			return fmt.Errorf("testnet: reconnect %s to %s: %w", m.Name, o.Name, err)
		}
	}
	return nil
}

// Running lists the members whose node runs.
func (t *Testnet) Running() []*Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Member
	for _, m := range t.Members {
		if m.Node != nil {
			out = append(out, m)
		}
	}
	return out
}

// Close stops every node and waits for them.
func (t *Testnet) Close() error {
	t.mu.Lock()
	members := append([]*Member(nil), t.Members...)
	t.mu.Unlock()
	var errs []error
	for _, m := range members {
		if m.Node != nil {
			m.cancel()
		}
	}
	for _, m := range members {
		if err := m.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

// NodeInfo is one entry of testnet.json.
type NodeInfo struct {
	Name     string `json:"name"`
	Role     string `json:"role,omitempty"` // provider or requester
	PeerID   string `json:"peerId"`
	Address  string `json:"address"`
	API      string `json:"api"`
	Token    string `json:"token"`
	Datadir  string `json:"datadir"`
	Country  string `json:"country"`
	EgressIP string `json:"egressIp"`
	SOCKS    string `json:"socks,omitempty"`
	HTTP     string `json:"http,omitempty"`
	// ProxyPassword is the node's default proxy credential: any username
	// (the route, e.g. country-DE) with this password, as in
	// http://country-DE:<password>@<http>.
	ProxyPassword string   `json:"proxyPassword,omitempty"`
	P2P           []string `json:"p2p"`
}

// File is testnet.json.
type File struct {
	Chain *ChainInfo `json:"chain,omitempty"`
	Nodes []NodeInfo `json:"nodes"`
}

// Info describes the running members.
func (t *Testnet) Info() File {
	f := File{Chain: t.cfg.Chain}
	for _, m := range t.Running() {
		n := m.Node
		info := NodeInfo{
			Name: m.Name, Role: m.Role, PeerID: n.PeerID().String(), Address: n.Address().Hex(),
			Token: n.Token(), Datadir: m.Datadir, Country: m.Country, EgressIP: m.IP,
		}
		if a := n.APIAddr(); a != nil {
			info.API = a.String()
		}
		if a := n.SOCKSAddr(); a != nil {
			info.SOCKS = a.String()
		}
		if a := n.HTTPProxyAddr(); a != nil {
			info.HTTP = a.String()
		}
		if info.SOCKS != "" || info.HTTP != "" {
			info.ProxyPassword = n.ProxyPassword()
		}
		for _, a := range n.Host().Addrs() {
			info.P2P = append(info.P2P, a.String()+"/p2p/"+n.PeerID().String())
		}
		f.Nodes = append(f.Nodes, info)
	}
	return f
}

// WriteJSON writes Dir/testnet.json.
func (t *Testnet) WriteJSON() error {
	b, err := json.MarshalIndent(t.Info(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(t.cfg.Dir, "testnet.json"), append(b, '\n'), 0o600)
}

// AwaitMesh waits until every running member sees at least want gossip
// peers on each of the given shards it subscribes to.
func (t *Testnet) AwaitMesh(ctx context.Context, want int, shards ...string) error {
	return Await(ctx, func() error {
		for _, m := range t.Running() {
			st := m.Node.Status(ctx)
			for _, s := range st.Shards {
				if len(shards) > 0 && !contains(shards, s.Country) {
					continue
				}
				if s.Peers < want {
					return fmt.Errorf("%s has %d peers on %s, want %d", m.Name, s.Peers, s.Country, want)
				}
			}
		}
		return nil
	})
}

// AwaitSynced waits until every running member has finished the order
// sync of each shard it follows (join-time sync is then out of the way of
// what a test measures).
func (t *Testnet) AwaitSynced(ctx context.Context) error {
	return Await(ctx, func() error {
		for _, m := range t.Running() {
			for _, s := range m.Node.Status(ctx).Shards {
				if !s.Synced {
					return fmt.Errorf("%s has not synced %s", m.Name, s.Country)
				}
			}
		}
		return nil
	})
}

// Await polls cond until it returns nil or ctx ends; the error names the
// last reason cond gave.
func Await(ctx context.Context, cond func() error) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// PeerIDs lists the running members' peer ids.
func (t *Testnet) PeerIDs() []peer.ID {
	var out []peer.ID
	for _, m := range t.Running() {
		out = append(out, m.Node.PeerID())
	}
	return out
}
