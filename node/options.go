package node

import (
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/orderbook"
	"golang.org/x/time/rate"
)

// Option configures a Node beyond its Config (things a test, the testnet
// or an embedding application sets, not a user's config file).
type Option func(*options)

type options struct {
	logger     *slog.Logger
	logLevel   *slog.LevelVar // WithLogLevel: the API may change it
	clock      func() time.Time
	key        *ecdsa.PrivateKey
	liveTTL    time.Duration
	heartbeat  time.Duration
	balances   orderbook.BalanceView
	peerRate   rate.Limit
	peerBurst  int
	makerRate  rate.Limit
	makerBurst int
	queue      int
	spam       SpamLimits
	noAPI      bool
	syncPage   int

	chainBackend chain.Backend
	contracts    chain.Contracts
	balanceTTL   time.Duration
	deals        DealConfig

	unmatchedAfter     time.Duration
	autoBuy            *AutoBuy
	egress             netip.Addr
	egressPool         []netip.Addr
	unsafeLoopbackExit bool
}

func (o options) dealTick() time.Duration {
	if o.deals.Tick > 0 {
		return o.deals.Tick
	}
	return time.Second
}

func defaultOptions() options {
	return options{
		logger:     slog.New(slog.DiscardHandler),
		clock:      time.Now,
		liveTTL:    orderbook.DefaultLiveTTL,
		heartbeat:  DefaultHeartbeat,
		peerRate:   500,
		peerBurst:  5000,
		makerRate:  50,
		makerBurst: 2000,
		queue:      8192,
		spam:       DefaultSpamLimits(),
		syncPage:   256,
		balanceTTL: DefaultBalanceTTL,

		unmatchedAfter: DefaultUnmatchedAfter,
	}
}

func (o options) validate() error {
	switch {
	case o.liveTTL < time.Second:
		return errors.New("node: live TTL under a second")
	case o.heartbeat <= 0 || o.heartbeat >= o.liveTTL:
		return errors.New("node: heartbeat interval must be positive and shorter than the live TTL")
	case o.peerBurst < 1 || o.makerBurst < 1 || o.peerRate <= 0 || o.makerRate <= 0:
		return errors.New("node: rate limits must be positive")
	case o.queue < 32:
		return errors.New("node: gossip queues under 32")
	case !o.spam.valid():
		return errors.New("node: spam limits must be positive, with BanAt >= ThrottleAt and MaxBackoff >= Backoff")
	case o.autoBuy != nil && (o.autoBuy.MaxPricePerHour == nil || o.autoBuy.MaxPricePerGB == nil || o.autoBuy.BudgetPerHour == nil):
		return errors.New("node: auto-buy needs a budget per hour and max prices")
	case o.balanceTTL <= 0:
		return errors.New("node: balance TTL must be positive")
	case o.unmatchedAfter <= 0:
		return errors.New("node: the unmatched delay must be positive")
	case o.syncPage < 1 || o.syncPage > maxSyncPage:
		return errors.New("node: sync page size out of range")
	}
	return nil
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock validation and signing read.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithKey uses key instead of decrypting the keystore (tests, testnet).
func WithKey(k *ecdsa.PrivateKey) Option { return func(o *options) { o.key = k } }

// WithLiveness sets the offer TTL and the heartbeat interval.
func WithLiveness(ttl, heartbeat time.Duration) Option {
	return func(o *options) { o.liveTTL, o.heartbeat = ttl, heartbeat }
}

// WithBalances sets the escrow balance view the anti-spam rule checks.
func WithBalances(b orderbook.BalanceView) Option { return func(o *options) { o.balances = b } }

// WithRateLimits sets the gossip rate limits per forwarding peer and per
// maker: a sustained rate in messages per second and a burst.
func WithRateLimits(peerRate float64, peerBurst int, makerRate float64, makerBurst int) Option {
	return func(o *options) {
		o.peerRate, o.peerBurst = rate.Limit(peerRate), peerBurst
		o.makerRate, o.makerBurst = rate.Limit(makerRate), makerBurst
	}
}

// WithChain connects the node to a chain in-process (the testnet's shared
// dev chain) instead of dialing Config.ChainRPC.
func WithChain(b chain.Backend, c chain.Contracts) Option {
	return func(o *options) { o.chainBackend, o.contracts = b, c }
}

// WithBalanceTTL sets how long a maker's escrow balance is cached.
func WithBalanceTTL(d time.Duration) Option { return func(o *options) { o.balanceTTL = d } }

// WithDeals tunes the deal protocol (tests shorten its intervals).
func WithDeals(c DealConfig) Option { return func(o *options) { o.deals = c } }

// WithAutoBuy turns on auto-buy for the proxies (see AutoBuy).
func WithAutoBuy(a AutoBuy) Option { return func(o *options) { o.autoBuy = &a } }

// WithEgress makes the provider's tunnel connections leave from addr (one
// of the machine's addresses); by default the OS chooses.
func WithEgress(addr netip.Addr) Option { return func(o *options) { o.egress = addr } }

// WithEgressPool gives a provider with several IPs (a data-center range)
// the addresses its offers rent out: each deal gets its own (as many as
// it rents), so requesters of different deals never share an exit IP.
func WithEgressPool(addrs ...netip.Addr) Option {
	return func(o *options) { o.egressPool = append([]netip.Addr(nil), addrs...) }
}

// WithUnsafeLoopbackExit lets the provider's exit reach 127.0.0.0/8, so a
// local testnet can stand a loopback server in for the internet. Never on a
// provider serving the public: it opens the machine's own services to every
// requester. Only the testnet sets it, and says so.
func WithUnsafeLoopbackExit() Option { return func(o *options) { o.unsafeLoopbackExit = true } }

// WithUnmatchedAfter sets how long one of the node's requests may go
// without a candidate offer before the request.unmatched event fires
// (default DefaultUnmatchedAfter).
func WithUnmatchedAfter(d time.Duration) Option { return func(o *options) { o.unmatchedAfter = d } }

// WithSyncPage sets how many orders one order-sync page carries.
func WithSyncPage(n int) Option { return func(o *options) { o.syncPage = n } }

// WithoutAPI runs no REST API (embedding applications, some tests).
func WithoutAPI() Option { return func(o *options) { o.noAPI = true } }
