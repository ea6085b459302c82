package node

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/geo"
	"github.com/ipsx/ipsx/internal/crash"
	"github.com/ipsx/ipsx/network"
	"github.com/ipsx/ipsx/node/deals"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Version is the node's version, set at build time with -ldflags.
var Version = "dev"

// Node is one IPSX node. New opens its data dir and starts nothing; Run
// starts the host, gossip, sync and API and blocks until its context ends,
// joining every goroutine it started. Accessors that describe the running
// host are valid after Ready is closed.
type Node struct {
	cfg    Config
	dir    string
	key    *ecdsa.PrivateKey
	addr   common.Address
	token  string
	o      options
	log    *slog.Logger
	params orderbook.Params

	db      *badger.DB
	book    *orderbook.Book
	reg     *prometheus.Registry
	metrics *metrics
	events  *broker
	peerLim *limiter
	mkLim   *limiter
	// The gossip spam guard (also the host's connection gater), the bans
	// it made for runGuard to carry out, and the validation pool.
	guard *spamGuard
	bans  chan banNote
	vpool *vpool

	// network is the network file of Config.Network, nil without one.
	network *network.File
	// exitLog limits how often refusals by the exit policy are logged at
	// info level.
	exitLog *rate.Limiter

	// The chain, when configured: set by Run before ready is closed.
	escrow     *chain.Client
	balances   *balanceView
	chainClose func()

	// Set up by Run before ready is closed; read-only afterwards.
	host    host.Host
	dht     *dht.IpfsDHT
	ps      *pubsub.PubSub
	apiAddr net.Addr
	started time.Time
	ready   chan struct{}

	mu     sync.Mutex // guards shards and nonce allocation
	shards map[string]*shard

	reconcile chan pull
	runCtx    context.Context // set by Run
	runWG     *sync.WaitGroup // set by Run: goroutines Run joins
	runErr    chan error      // set by Run: a part that fails ends Run
	handlers  *handlerGroup   // set by Run: stream handlers Run waits for
	// Deals: the driver owns their state (see deals.go); nil without a
	// chain. Set by Run before ready is closed.
	deals       *deals.Driver
	offerMu     sync.Mutex                  // guards lastOffer
	lastOffer   map[uint64]*orderbook.Order // newest own version per offer series
	republishMu sync.Mutex                  // one offer republication at a time
	tun         *tunnels                    // set by Run when deals run
	autoBuyer   *autoBuyer

	peersMu sync.Mutex // guards peerIDs
	peerIDs map[common.Address]peer.ID

	reach reach
	geo   *geo.DB    // nil without --geoip
	repMu sync.Mutex // serialises reputation updates

	scoreMu sync.Mutex // guards scores
	scores  map[peer.ID]float64

	closeOnce sync.Once
	closeErr  error
}

// New opens the data dir: decrypts the key with password, opens the
// database. cfg is usually LoadConfig(dir).
func New(dir, password string, cfg Config, opts ...Option) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg, netFile, err := cfg.withNetwork()
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.ExitAllowLoopback {
		o.unsafeLoopbackExit = true
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	key := o.key
	if key == nil {
		k, err := ReadKey(dir, password)
		if err != nil {
			return nil, err
		}
		key = k
	}
	token, err := EnsureToken(dir)
	if err != nil {
		return nil, err
	}
	bopts := badger.DefaultOptions(filepath.Join(dir, dbDir)).
		WithLogger(nil).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(32 << 20).
		WithNumCompactors(2)
	gdb, err := openGeo(cfg.GeoIP)
	if err != nil {
		return nil, err
	}
	db, err := badger.Open(bopts)
	if err != nil {
		if gdb != nil {
			gdb.Close()
		}
		return nil, fmt.Errorf("node: open database: %w", err)
	}
	addr := ethcrypto.PubkeyToAddress(key.PublicKey)
	n := &Node{
		cfg: cfg, dir: dir, key: key, addr: addr, token: token, o: o,
		network: netFile, exitLog: rate.NewLimiter(rate.Every(time.Second), 5),
		log:       o.logger.With("component", "node", "address", addr.Hex()),
		params:    orderbook.DefaultParams(cfg.Domain()),
		db:        db,
		book:      orderbook.NewBook(db, orderbook.BookConfig{TTL: o.liveTTL, Own: addr}),
		reg:       prometheus.NewRegistry(),
		events:    newBroker(),
		peerLim:   newLimiter(o.peerRate, o.peerBurst),
		mkLim:     newLimiter(o.makerRate, o.makerBurst),
		balances:  newBalanceView(o.balanceTTL, o.clock),
		ready:     make(chan struct{}),
		shards:    map[string]*shard{},
		reach:     reach{observed: map[peer.ID]ma.Multiaddr{}},
		geo:       gdb,
		reconcile: make(chan pull, 1024),
		lastOffer: map[uint64]*orderbook.Order{},
		peerIDs:   map[common.Address]peer.ID{},
		autoBuyer: &autoBuyer{pending: map[string]common.Hash{}},
	}
	n.metrics = newMetrics(n.reg, func() float64 { return float64(n.book.Count()) }, func() float64 {
		own, _ := n.ownOrders()
		return float64(len(own))
	})
	n.balances.failed = func(err error) { n.metrics.chainCall("balances", err) }
	n.guard = newSpamGuard(o.spam, time.Now)
	n.bans = make(chan banNote, 256)
	n.guard.banned = func(p peer.ID, d time.Duration, why string) {
		select {
		case n.bans <- banNote{p, d, why}:
		default: // runGuard is behind; the gater refuses the peer's next connection anyway
		}
	}
	n.vpool = newVPool(validationQueuePerPeer, n.guard.throttledNow)
	return n, nil
}

// Close releases the database. Run must have returned. Safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.events.close()
		n.closeErr = n.db.Close()
		if n.geo != nil {
			n.geo.Close()
		}
	})
	return n.closeErr
}

// Ready is closed once Run has the host, gossip and API up.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Address is the node's Ethereum address.
func (n *Node) Address() common.Address { return n.addr }

// Maker implements api.Backend.
func (n *Node) Maker() common.Address { return n.addr }

// Token is the API bearer token.
func (n *Node) Token() string { return n.token }

// PeerID is the node's libp2p identity (valid after Ready).
func (n *Node) PeerID() peer.ID { return n.host.ID() }

// Host is the libp2p host (valid after Ready).
func (n *Node) Host() host.Host { return n.host }

// AddrInfo is how other nodes reach this one (valid after Ready).
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()} }

// APIAddr is the address the REST API listens on (valid after Ready).
func (n *Node) APIAddr() net.Addr { return n.apiAddr }

// Book is the node's order book.
func (n *Node) Book() *orderbook.Book { return n.book }

// Registry is the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Connect dials a peer.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return n.host.Connect(ctx, ai)
}

func (n *Node) now() time.Time { return n.o.clock() }

// balanceView is what the anti-spam rule checks: the chain's balances when
// the node has a chain, else the WithBalances view (nil: unchecked).
func (n *Node) balanceView() orderbook.BalanceView {
	if n.escrow != nil {
		return n.balances
	}
	return n.o.balances
}

// Escrow is the node key's escrow client, nil without a chain (valid after
// Ready).
func (n *Node) Escrow() *chain.Client { return n.escrow }

// Status implements api.Backend.
func (n *Node) Status(ctx context.Context) sdk.Status {
	st := sdk.Status{
		Version: Version, Address: n.addr.Hex(),
		ChainID: n.cfg.ChainID, Escrow: n.cfg.Escrow,
		Orders: n.book.Count(), Started: n.started,
		Uptime: time.Since(n.started).Truncate(time.Second).String(),
	}
	own, _ := n.ownOrders()
	st.OwnOrders = len(own)
	if n.host != nil {
		st.PeerID = n.host.ID().String()
		for _, a := range n.host.Addrs() {
			st.ListenAddrs = append(st.ListenAddrs, a.String()+"/p2p/"+n.host.ID().String())
		}
		st.Peers = len(n.host.Network().Peers())
		n.reachStatus(&st)
	}
	n.mu.Lock()
	for cc, s := range n.shards {
		ss := sdk.ShardStatus{Country: cc, Synced: s.synced.Load()}
		if n.ps != nil {
			ss.Peers = len(n.ps.ListPeers(topicName(cc)))
		}
		st.Shards = append(st.Shards, ss)
	}
	n.mu.Unlock()
	sort.Slice(st.Shards, func(i, j int) bool { return st.Shards[i].Country < st.Shards[j].Country })
	n.listenerStatus(&st)
	n.opsStatus(ctx, &st)
	return st
}

// Subscribe subscribes to the node's events from now on.
func (n *Node) Subscribe() (<-chan sdk.Event, func()) { return n.events.subscribe() }

// SubscribeFrom implements api.Backend.
func (n *Node) SubscribeFrom(lastEventID string) (<-chan sdk.Event, func()) {
	return n.events.subscribeFrom(lastEventID)
}

// Orders implements api.Backend.
func (n *Node) Orders(ctx context.Context, q orderbook.Query) ([]*orderbook.Order, error) {
	return n.book.List(q)
}

// Order implements api.Backend.
func (n *Node) Order(ctx context.Context, id common.Hash) (*orderbook.Order, error) {
	return n.book.Get(id)
}

func (n *Node) ownOrders() ([]*orderbook.Order, error) {
	return n.book.List(orderbook.Query{Maker: n.addr})
}

// CreateOffer implements api.Backend.
func (n *Node) CreateOffer(ctx context.Context, p sdk.OfferParams) (*orderbook.Order, error) {
	unverified, err := n.locate(&p)
	if err != nil {
		return nil, err
	}
	o, err := p.Order(n.now())
	if err != nil {
		return nil, err
	}
	o.Unverified = unverified
	return n.signAndPublish(ctx, o)
}

// CreateRequest implements api.Backend.
func (n *Node) CreateRequest(ctx context.Context, p sdk.RequestParams) (*orderbook.Order, error) {
	o, err := p.Order(n.now())
	if err != nil {
		return nil, err
	}
	return n.signAndPublish(ctx, o)
}

// signAndPublish completes an order of the node's own key (domain, maker,
// a fresh nonce, version 1), signs, stores and publishes it.
func (n *Node) signAndPublish(ctx context.Context, o *orderbook.Order) (*orderbook.Order, error) {
	o.ChainID, o.VerifyingContract = n.params.Domain.ChainID, n.params.Domain.VerifyingContract
	o.Version = 1
	o.Maker = n.addr
	if err := orderbook.CheckFields(o); err != nil {
		return nil, err
	}
	nonce, err := n.nextNonce()
	if err != nil {
		return nil, err
	}
	o.Nonce = nonce
	if err := o.Sign(n.key); err != nil {
		return nil, err
	}
	if err := n.addLocal(ctx, o); err != nil {
		return nil, err
	}
	crash.Point("order.created." + o.Kind.String())
	n.registerOwnOffer(ctx, o)
	if o.Kind == orderbook.KindRequest && n.deals != nil {
		n.deals.KickProposer()
	}
	return o, nil
}

// Import implements api.Backend.
func (n *Node) Import(ctx context.Context, o *orderbook.Order) error {
	return n.addLocal(ctx, o)
}

// addLocal validates an order that entered through this node, stores it
// durably and publishes it on its shard.
func (n *Node) addLocal(ctx context.Context, o *orderbook.Order) error {
	data, err := orderbook.Message{Order: o}.Encode()
	if err != nil {
		return err
	}
	if err := orderbook.Validate(o, len(data), n.now(), n.params, n.book, n.balanceView()); err != nil {
		return err
	}
	added, err := n.book.Add(o)
	if err != nil {
		return err
	}
	if err := n.db.Sync(); err != nil {
		return fmt.Errorf("node: sync database: %w", err)
	}
	n.emitAdded(o, added)
	if err := n.publish(ctx, o.Shard(), data); err != nil {
		// Stored: peers will pull it on the next heartbeat digest.
		n.log.Warn("publish order", "order", o.ID().Hex(), "err", err)
	}
	return nil
}

// Cancel implements api.Backend.
func (n *Node) Cancel(ctx context.Context, id common.Hash) (*orderbook.Cancel, error) {
	if n.book.Cancelled(id) {
		return nil, fmt.Errorf("%w: order %s is already cancelled", orderbook.ErrDuplicate, id.Hex())
	}
	o, err := n.book.Get(id)
	if err != nil {
		return nil, err
	}
	if o.Maker != n.addr {
		return nil, fmt.Errorf("%w: order %s is %s's; only its maker can cancel it", orderbook.ErrWrongSigner, id.Hex(), o.Maker.Hex())
	}
	c := &orderbook.Cancel{
		ChainID: n.params.Domain.ChainID, VerifyingContract: n.params.Domain.VerifyingContract,
		OrderID: id, Created: uint64(n.now().Unix()),
	}
	if err := c.Sign(n.key); err != nil {
		return nil, err
	}
	if _, err := n.book.Cancel(c); err != nil {
		return nil, err
	}
	if err := n.db.Sync(); err != nil {
		return nil, fmt.Errorf("node: sync database: %w", err)
	}
	n.events.publish("order.removed", sdk.OrderEvent{Order: o, Reason: "cancelled"})
	data, err := orderbook.Message{Cancel: c}.Encode()
	if err != nil {
		return nil, err
	}
	if err := n.publish(ctx, o.Shard(), data); err != nil {
		n.log.Warn("publish cancel", "order", id.Hex(), "err", err)
	}
	return c, nil
}

func (n *Node) emitAdded(o *orderbook.Order, a orderbook.Added) {
	if a.Superseded != nil {
		n.events.publish("order.removed", sdk.OrderEvent{Order: a.Superseded, Reason: "superseded"})
	}
	n.events.publish("order.added", sdk.OrderEvent{Order: o})
}

var nonceKey = []byte("node/nonce")

// nextNonce allocates a nonce, persisted before use so a restart never
// reuses one (a reused nonce would make a new order supersede an old one).
func (n *Node) nextNonce() (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var next uint64 = 1
	err := n.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(nonceKey)
		if err == nil {
			if err := item.Value(func(v []byte) error {
				if len(v) == 8 {
					next = new(big.Int).SetBytes(v).Uint64() + 1
				}
				return nil
			}); err != nil {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(nonceKey, new(big.Int).SetUint64(next).FillBytes(make([]byte, 8)))
	})
	if err != nil {
		return 0, fmt.Errorf("node: allocate nonce: %w", err)
	}
	return next, n.db.Sync()
}

func parseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("node: bootstrap %q: %w", a, err)
		}
		mas = append(mas, m)
	}
	return peer.AddrInfosFromP2pAddrs(mas...)
}
