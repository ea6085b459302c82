package sdk

import (
	"encoding/json"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/orderbook"
)

// OfferParams are the fields of an offer its maker chooses; the node fills in
// maker, nonce, version, created, expires and the signature. Amounts are
// decimal strings of token base units, or of tokens with the suffix "tok"
// (see ParseAmount).
type OfferParams struct {
	Country      string   `json:"country"`
	Region       string   `json:"region,omitempty"`
	City         string   `json:"city,omitempty"`
	ASN          uint32   `json:"asn,omitempty"`
	IPType       string   `json:"ipType"`
	IPs          uint32   `json:"ips"`
	Protocols    []string `json:"protocols,omitempty"` // default ["tcp"]
	PricePerHour string   `json:"pricePerHour"`
	PricePerGB   string   `json:"pricePerGB"`
	MinDuration  uint32   `json:"minDuration"` // seconds
	MaxDuration  uint32   `json:"maxDuration"` // seconds
	Bandwidth    uint32   `json:"bandwidth"`   // Mbit/s
	// TTL is how long the order stays valid, in seconds (default 24 h).
	TTL uint32 `json:"ttl,omitempty"`
}

// RequestParams are the fields of a request its maker chooses.
type RequestParams struct {
	Country         string   `json:"country"`
	Region          string   `json:"region,omitempty"`
	City            string   `json:"city,omitempty"`
	ASN             uint32   `json:"asn,omitempty"`
	IPType          string   `json:"ipType"` // or "any"
	IPs             uint32   `json:"ips"`
	Protocols       []string `json:"protocols,omitempty"`
	Duration        uint32   `json:"duration"` // seconds
	MaxPricePerHour string   `json:"maxPricePerHour"`
	MaxPricePerGB   string   `json:"maxPricePerGB"`
	MinBandwidth    uint32   `json:"minBandwidth,omitempty"`
	TTL             uint32   `json:"ttl,omitempty"`
}

// Status is GET /v1/status.
type Status struct {
	Version     string        `json:"version"`
	PeerID      string        `json:"peerId"`
	Address     string        `json:"address"` // Ethereum address of the node key
	ChainID     uint64        `json:"chainId"`
	Escrow      string        `json:"escrow"`
	ListenAddrs []string      `json:"listenAddrs"`
	Peers       int           `json:"peers"`
	Shards      []ShardStatus `json:"shards"`
	Orders      int           `json:"orders"` // live orders in the book
	OwnOrders   int           `json:"ownOrders"`
	Uptime      string        `json:"uptime"`
	Started     time.Time     `json:"started"`
	// Reachability is AutoNAT's verdict: public, private (behind NAT or a
	// firewall: reached through relays and hole punching) or unknown.
	Reachability string `json:"reachability"`
	// ObservedAddrs are the addresses connected peers see the node at.
	ObservedAddrs []ObservedAddr `json:"observedAddrs,omitempty"`
	// PublicIP is the public address the node's location is looked up for.
	PublicIP string `json:"publicIp,omitempty"`
	// RelayAddrs are the relayed addresses the node holds reservations for.
	RelayAddrs   []string `json:"relayAddrs,omitempty"`
	RelayService bool     `json:"relayService,omitempty"`
	// HolePunch counts the hole punches the node took part in.
	HolePunch HolePunchStats `json:"holePunch"`
	// Listeners are where the node's local services listen.
	Listeners []Listener `json:"listeners,omitempty"`
	// Proxy describes the requester's proxies' front door.
	Proxy *ProxyStatus `json:"proxy,omitempty"`
	// Chain is the chain as the node sees it (nil: none configured).
	Chain *ChainStatus `json:"chain,omitempty"`
	// Exit is the provider side's exit (nil without deals).
	Exit *ExitStatus `json:"exit,omitempty"`
}

// Listener is one local service's listen address: "api", "socks" or
// "http-proxy". Public is true for an address other than loopback (allowed
// only with --allow-public-listen).
type Listener struct {
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Public bool   `json:"public,omitempty"`
}

// ProxyStatus is the proxies' front door: whether they ask for a
// credential, and each credential's cap and spending (never a password).
type ProxyStatus struct {
	Auth        bool               `json:"auth"`
	Credentials []CredentialStatus `json:"credentials,omitempty"`
}

// CredentialStatus is one proxy credential: its cap and what it has spent,
// token base units as decimal strings (Cap empty: no cap).
type CredentialStatus struct {
	Name  string `json:"name"`
	Cap   string `json:"cap,omitempty"`
	Spent string `json:"spent"`
}

// HolePunchStats are the outcomes of a node's hole punches (DCUtR): how
// many gave a direct connection, how many did not, and the last failure.
// Failures only, over and over, mean peers reach the node through relays
// alone (a symmetric NAT), and so cannot open tunnels to it.
type HolePunchStats struct {
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	LastError string `json:"lastError,omitempty"`
}

// ObservedAddr is an address peers see the node at, and how many do.
type ObservedAddr struct {
	Addr      string `json:"addr"`
	Observers int    `json:"observers"`
}

// Domain is the EIP-712 domain the node signs and checks orders under.
func (s Status) Domain() orderbook.Domain {
	return orderbook.Domain{ChainID: s.ChainID, VerifyingContract: common.HexToAddress(s.Escrow)}
}

// ShardStatus describes one subscribed shard.
type ShardStatus struct {
	Country string `json:"country"`
	Peers   int    `json:"peers"`  // gossip peers on the topic
	Synced  bool   `json:"synced"` // an order sync with a peer has completed
}

// Event is one server-sent event on GET /v1/events. Type is e.g.
// "order.added", "order.removed", "deal.updated"; "stream.reset" says
// that events since the Last-Event-ID a stream resumed from may be lost
// (re-read state), "error" that the node ends the stream.
//
// ID is the event's SSE id: a client that reconnects with it as
// Last-Event-ID gets every event after it that the node still holds. The
// stream's own events (stream.reset, error) have none.
type Event struct {
	ID   string          `json:"id,omitempty"`
	Type string          `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// OrderEvent is the data of order.added and order.removed.
type OrderEvent struct {
	Order  *orderbook.Order `json:"order"`
	Reason string           `json:"reason,omitempty"` // removed: expired, cancelled, superseded, dead
}

// Error is the body of every 4xx/5xx answer.
type Error struct {
	Error string `json:"error"`
	// Code is a stable machine-readable word, e.g. "bad_signature",
	// "expired", "not_found", "unauthorized".
	Code string `json:"code"`
}

// Wallet is GET /v1/wallet: the node key's balances, in token base units
// as decimal strings.
type Wallet struct {
	Address  string `json:"address"`
	ChainID  uint64 `json:"chainId"`
	Token    string `json:"token"`  // token contract
	Escrow   string `json:"escrow"` // escrow contract
	Balance  string `json:"tokenBalance"`
	Free     string `json:"escrowBalance"` // free balance in the escrow
	Reserved string `json:"reserved"`      // locked in open deals
	// Gas is the node key's ETH balance, in wei, which pays for its
	// transactions.
	Gas string `json:"gas"`
}

// SendParams is the body of POST /v1/wallet/send.
type SendParams struct {
	To string `json:"to"` // an Ethereum address
	// Amount is token base units, decimal; wei with Asset "eth".
	Amount string `json:"amount"`
	// Asset is "token" (the default) or "eth".
	Asset string `json:"asset,omitempty"`
}

// RequestDetail is GET /v1/requests/{id}: one of the node's own requests
// and the offers of its book that come closest to filling it.
type RequestDetail struct {
	Request *orderbook.Order `json:"request"`
	// Candidates are the best offers, those that can fill the request
	// first (in the order the node proposes to them), then those that
	// cannot, closest first, each with the first reason it fails.
	Candidates []Candidate `json:"candidates"`
	// Offers is how many offers of the request's shard were looked at.
	Offers int `json:"offers"`
	// Matched tells whether any candidate can fill the request now.
	Matched bool `json:"matched"`
	// Expired is set when the request itself is expired.
	Expired bool `json:"expired,omitempty"`
}

// Candidate is one offer as RequestDetail judges it.
type Candidate struct {
	Offer *orderbook.Order `json:"offer"`
	// Reason is empty for an offer that can fill the request, else the
	// first check it fails: expired, own_offer, country, ip_type, region,
	// city, asn, protocols, duration, bandwidth, price_per_hour,
	// price_per_gb, or capacity (higher-priority requests take its IPs).
	Reason string `json:"reason,omitempty"`
	// Detail says the reason with the numbers.
	Detail string `json:"detail,omitempty"`
	// IPs is how many IPs the offer could give the request.
	IPs uint32 `json:"ips,omitempty"`
	// Score is the node's local reputation score of the offer's maker
	// (see Reputation); it ranks candidates, it never rules one out.
	Score int64 `json:"score"`
}

// UnmatchedEvent is the data of request.unmatched: one of the node's
// requests has had no candidate for Seconds, and these are the closest
// offers with the reasons they fail.
type UnmatchedEvent struct {
	Request    *orderbook.Order `json:"request"`
	Seconds    uint64           `json:"seconds"`
	Candidates []Candidate      `json:"candidates"`
}

// AmountParams is the body of POST /v1/wallet/deposit and /withdraw.
type AmountParams struct {
	Amount string `json:"amount"` // token base units, decimal, or tokens with the suffix "tok"
}

// TxResult is the answer of a wallet transaction: its receipt and the
// wallet after it.
type TxResult struct {
	TxHash  string `json:"txHash"`
	Block   uint64 `json:"block"`
	GasUsed uint64 `json:"gasUsed"`
	Wallet  Wallet `json:"wallet"`
}

// Reputation is what a node's own deals with a provider came to. It is
// local to each node (GET /v1/orders shows the node's records for the
// makers listed) and ranks a requester's candidates after matching.
type Reputation struct {
	Completed     uint32 `json:"completed"`     // deals settled
	Failed        uint32 `json:"failed"`        // deals that expired before the provider funded
	Refunded      uint32 `json:"refunded"`      // deals refunded because the provider never settled
	GeoChecks     uint32 `json:"geoChecks"`     // deals whose provider address was looked up
	GeoMismatches uint32 `json:"geoMismatches"` // ... and was not in the offer's country
	// Traffic of completed deals over their running time.
	Bytes             uint64 `json:"bytes"`
	Seconds           uint64 `json:"seconds"`
	AvgBytesPerSecond uint64 `json:"avgBytesPerSecond"`
	// Score: completed − 2 × (failed + refunded) − 4 × geo mismatches.
	Score int64 `json:"score"`
}

// GeoCheck is a requester's check of where its provider really is: the
// address of its direct connection, looked up in the node's geolocation
// database.
type GeoCheck struct {
	IP         string `json:"ip"`
	Claimed    string `json:"claimed"`              // the offer's country
	Unverified bool   `json:"unverified,omitempty"` // the offer said its location was declared
	Country    string `json:"country,omitempty"`    // the database's answer
	Result     string `json:"result"`               // match, mismatch or unknown (not in the database)
}

// Peer is a connected peer, in GET /v1/peers.
type Peer struct {
	PeerID string `json:"peerId"`
	Conns  []Conn `json:"conns"`
}

// Conn is one connection to a peer. Relayed connections run through a
// circuit relay and carry only small messages (deal negotiation); tunnels
// wait for a direct one.
type Conn struct {
	Addr      string    `json:"addr"`
	Direction string    `json:"direction"` // inbound or outbound
	Relayed   bool      `json:"relayed"`
	Opened    time.Time `json:"opened"`
}

// PingParams is the optional body of POST /v1/peers/{peer}/ping.
type PingParams struct {
	// Direct insists on a direct connection, hole-punching first if the
	// peer is connected only through a relay.
	Direct bool `json:"direct,omitempty"`
}

// PingResult is the answer of POST /v1/peers/{peer}/ping.
type PingResult struct {
	PeerID    string  `json:"peerId"`
	RTT       string  `json:"rtt"`
	RTTMillis float64 `json:"rttMillis"`
	Conn      Conn    `json:"conn"` // the connection the ping ran over
}

// Health is GET /healthz, which needs no token: whether the node is alive
// (its main loop runs) and ready (it can serve: database, chain, shards),
// and each check. It says nothing else about the node.
type Health struct {
	Status string        `json:"status"` // ok, or unavailable (alive but not ready)
	Live   bool          `json:"live"`
	Ready  bool          `json:"ready"`
	Checks []HealthCheck `json:"checks"`
}

// HealthCheck is one readiness check: database (reads work), chain (the
// chain answers, or none is configured), shards (every followed shard has
// finished its order sync).
type HealthCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// LogLevel is GET and PUT /v1/log/level: debug, info, warn or error.
type LogLevel struct {
	Level string `json:"level"`
}

// ChainStatus is what the node sees of its chain, in Status.
type ChainStatus struct {
	// Reachable is whether the chain answered just now; Block is its
	// newest block, BlockTime that block's time.
	Reachable bool      `json:"reachable"`
	Block     uint64    `json:"block,omitempty"`
	BlockTime time.Time `json:"blockTime,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// ExitStatus is a provider's exit, in Status: the IPs its tunnels leave
// from, and its exit policy.
type ExitStatus struct {
	// Egress are the addresses tunnels leave from; empty: the OS chooses
	// (the machine's default route).
	Egress []string `json:"egress"`
	// DefaultDeny describes what the policy refuses by default; Allow
	// and Deny are the operator's CIDRs on top (--exit-allow, --exit-deny).
	DefaultDeny []string `json:"defaultDeny"`
	Allow       []string `json:"allow,omitempty"`
	Deny        []string `json:"deny,omitempty"`
	// LoopbackAllowed is set on a local testnet's providers only.
	LoopbackAllowed bool `json:"loopbackAllowed,omitempty"`
}
