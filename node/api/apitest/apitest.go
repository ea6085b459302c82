// Package apitest is a Backend for tests of the local API, the SDK and the
// CLI: a real orderbook.Book over real badger in a temporary directory,
// real signing and the real orderbook.Validate, so it behaves like a node
// minus gossip. It is for tests only; nothing in the node imports it.
package apitest

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// Domain is the EIP-712 domain of the test backend.
var Domain = orderbook.Domain{ChainID: 1337, VerifyingContract: common.HexToAddress("0x00000000000000000000000000000000000E5C40")}

// Backend implements api.Backend over a real book.
type Backend struct {
	Key    *ecdsa.PrivateKey
	Book   *orderbook.Book
	Params orderbook.Params
	// Balances, when set, is the escrow view (the anti-spam rule).
	Balances orderbook.BalanceView
	started  time.Time

	mu    sync.Mutex // guards subs, log, next, nonce, deals, peers, rep, health, level
	subs  map[int]chan sdk.Event
	log   []sdk.Event // every event published, for SubscribeFrom
	next  int
	nonce uint64
	deals []sdk.Deal // in the order put; listed newest first
	peers []sdk.Peer
	rep   map[common.Address]sdk.Reputation
	// health and level answer Health and LogLevel.
	health *sdk.Health
	level  slog.Level
}

var _ api.Backend = (*Backend)(nil)

// NewBackend opens a book in t.TempDir() with a fresh key.
func NewBackend(t testing.TB) *Backend {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	maker := crypto.PubkeyToAddress(key.PublicKey)
	return &Backend{
		Key:     key,
		Book:    orderbook.NewBook(db, orderbook.BookConfig{Own: maker}),
		Params:  orderbook.DefaultParams(Domain),
		started: time.Now(),
		subs:    map[int]chan sdk.Event{},
	}
}

// Server starts an api.Server for b on a loopback httptest server, closed
// at the end of the test, and returns it with its bearer token.
func (b *Backend) Server(t testing.TB, opts ...api.Option) (*httptest.Server, string) {
	t.Helper()
	const token = "test-token-0123456789abcdef0123456789abcdef"
	ts := httptest.NewServer(api.New(b, token, opts...).Handler())
	t.Cleanup(ts.Close)
	return ts, token
}

func (b *Backend) Status(context.Context) sdk.Status {
	own, _ := b.Orders(context.Background(), orderbook.Query{Maker: b.Maker()})
	return sdk.Status{
		Version:     "test",
		PeerID:      "16Uiu2HAtest",
		Address:     b.Maker().Hex(),
		ChainID:     Domain.ChainID,
		Escrow:      Domain.VerifyingContract.Hex(),
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/4001"},
		Shards:      []sdk.ShardStatus{{Country: "DE", Peers: 0, Synced: true}},
		Orders:      b.Book.Count(),
		OwnOrders:   len(own),
		Uptime:      time.Since(b.started).Round(time.Second).String(),
		Started:     b.started.UTC(),
	}
}

func (b *Backend) Maker() common.Address { return crypto.PubkeyToAddress(b.Key.PublicKey) }

func (b *Backend) CreateOffer(ctx context.Context, p sdk.OfferParams) (*orderbook.Order, error) {
	o, err := p.Order(time.Now())
	if err != nil {
		return nil, err
	}
	return b.sign(o)
}

func (b *Backend) CreateRequest(ctx context.Context, p sdk.RequestParams) (*orderbook.Order, error) {
	o, err := p.Order(time.Now())
	if err != nil {
		return nil, err
	}
	return b.sign(o)
}

func (b *Backend) sign(o *orderbook.Order) (*orderbook.Order, error) {
	b.mu.Lock()
	b.nonce++
	o.Nonce = b.nonce
	b.mu.Unlock()
	o.ChainID, o.VerifyingContract = Domain.ChainID, Domain.VerifyingContract
	if err := o.Sign(b.Key); err != nil {
		return nil, err
	}
	return o, b.add(o)
}

func (b *Backend) Import(ctx context.Context, o *orderbook.Order) error { return b.add(o) }

func (b *Backend) add(o *orderbook.Order) error {
	enc, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("%w: %v", orderbook.ErrMalformed, err)
	}
	if err := orderbook.Validate(o, len(enc), time.Now(), b.Params, b.Book, b.Balances); err != nil {
		return err
	}
	res, err := b.Book.Add(o)
	if err != nil {
		return err
	}
	if res.Superseded != nil {
		b.Publish("order.removed", sdk.OrderEvent{Order: res.Superseded, Reason: "superseded"})
	}
	b.Publish("order.added", sdk.OrderEvent{Order: o})
	return nil
}

func (b *Backend) Cancel(ctx context.Context, id common.Hash) (*orderbook.Cancel, error) {
	o, err := b.Book.Get(id)
	if err != nil {
		return nil, err
	}
	if o.Maker != b.Maker() {
		return nil, fmt.Errorf("%w: order %s is %s's, not this node's", orderbook.ErrWrongSigner, id.Hex(), o.Maker.Hex())
	}
	c := &orderbook.Cancel{ChainID: Domain.ChainID, VerifyingContract: Domain.VerifyingContract, OrderID: id, Created: uint64(time.Now().Unix())}
	if err := c.Sign(b.Key); err != nil {
		return nil, err
	}
	if err := orderbook.ValidateCancel(c, time.Now(), b.Params); err != nil {
		return nil, err
	}
	if _, err := b.Book.Cancel(c); err != nil {
		return nil, err
	}
	b.Publish("order.removed", sdk.OrderEvent{Order: o, Reason: "cancelled"})
	return c, nil
}

// Orders filters on kind and maker itself: Book.List filters kind only
// within a country.
func (b *Backend) Orders(ctx context.Context, q orderbook.Query) ([]*orderbook.Order, error) {
	all, err := b.Book.List(q)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, o := range all {
		if (q.Kind == 0 || o.Kind == q.Kind) && (q.Maker == (common.Address{}) || o.Maker == q.Maker) {
			out = append(out, o)
		}
	}
	return out, nil
}

func (b *Backend) Order(ctx context.Context, id common.Hash) (*orderbook.Order, error) {
	return b.Book.Get(id)
}

// Subscribe hands out a channel of 64 events; a subscriber that falls
// behind gets a last "error" event and is dropped, as the node does.
func (b *Backend) Subscribe() (<-chan sdk.Event, func()) { return b.SubscribeFrom("") }

// SubscribeFrom is Subscribe that first replays the events after
// lastEventID ("t-<n>": the backend keeps them all), or a stream.reset
// event for an id it never gave.
func (b *Backend) SubscribeFrom(lastEventID string) (<-chan sdk.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	var replay []sdk.Event
	if lastEventID != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(lastEventID, "t-"))
		if !strings.HasPrefix(lastEventID, "t-") || err != nil || n < 0 || n > len(b.log) {
			replay = []sdk.Event{{Type: "stream.reset", Time: time.Now().UTC(), Data: json.RawMessage(`{"error":"unknown event id"}`)}}
		} else {
			replay = append(replay, b.log[n:]...)
		}
	}
	ch := make(chan sdk.Event, 64+len(replay))
	for _, ev := range replay {
		ch <- ev
	}
	b.subs[id] = ch
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if c, ok := b.subs[id]; ok {
			delete(b.subs, id)
			close(c)
		}
	}
}

// Subscribers is the number of open subscriptions.
func (b *Backend) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Publish sends an event to every subscriber.
func (b *Backend) Publish(typ string, data any) {
	raw, _ := json.Marshal(data)
	b.mu.Lock()
	defer b.mu.Unlock()
	ev := sdk.Event{ID: "t-" + strconv.Itoa(len(b.log)+1), Type: typ, Time: time.Now().UTC(), Data: raw}
	b.log = append(b.log, ev)
	for id, ch := range b.subs {
		if len(ch) >= cap(ch)-1 {
			b.endLocked(id)
			continue
		}
		ch <- ev
	}
}

// DropSubscribers ends every subscription as Publish ends a slow one: a
// last "error" event, then the channel closes. A test makes a client fall
// behind with it, whatever the speed of the machine.
func (b *Backend) DropSubscribers() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.subs {
		b.endLocked(id)
	}
}

// endLocked sends subscription id its last event, an error, and closes it.
func (b *Backend) endLocked(id int) {
	ch := b.subs[id]
	ch <- sdk.Event{Type: "error", Time: time.Now().UTC(), Data: json.RawMessage(`{"error":"subscriber too slow"}`)}
	close(ch)
	delete(b.subs, id)
}

// Offer returns a valid unsigned offer in DE under Domain, created now.
func Offer() *orderbook.Order {
	now := uint64(time.Now().Unix())
	return &orderbook.Order{
		Kind: orderbook.KindOffer, ChainID: Domain.ChainID, VerifyingContract: Domain.VerifyingContract,
		Nonce: uint64(time.Now().UnixNano()), Created: now, Expires: now + 3600,
		Location: orderbook.Location{Country: "DE"}, IPType: orderbook.IPResidential, IPs: 2,
		Protocols: orderbook.ProtoTCP, PricePerHour: big.NewInt(1000), PricePerGB: big.NewInt(50),
		MinDuration: 60, MaxDuration: 86400, Bandwidth: 100,
	}
}

// Request returns a valid unsigned request in DE under Domain, created now.
func Request() *orderbook.Order {
	now := uint64(time.Now().Unix())
	return &orderbook.Order{
		Kind: orderbook.KindRequest, ChainID: Domain.ChainID, VerifyingContract: Domain.VerifyingContract,
		Nonce: uint64(time.Now().UnixNano()), Created: now, Expires: now + 3600,
		Location: orderbook.Location{Country: "DE"}, IPType: orderbook.IPAny, IPs: 1,
		Protocols: orderbook.ProtoTCP, PricePerHour: big.NewInt(2000), PricePerGB: big.NewInt(100),
		Duration: 3600, Bandwidth: 10,
	}
}

// Signed signs o with a fresh key (an order made elsewhere) and returns it.
func Signed(t testing.TB, o *orderbook.Order) *orderbook.Order {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Sign(key); err != nil {
		t.Fatal(err)
	}
	return o
}

// OfferParams are valid params of an offer in DE.
func OfferParams() sdk.OfferParams {
	return sdk.OfferParams{
		Country: "DE", IPType: "residential", IPs: 2, PricePerHour: "1000", PricePerGB: "50",
		MinDuration: 60, MaxDuration: 86400, Bandwidth: 100,
	}
}

// RequestParams are valid params of a request in DE.
func RequestParams() sdk.RequestParams {
	return sdk.RequestParams{
		Country: "DE", IPType: "any", IPs: 1, Duration: 3600, MaxPricePerHour: "2000", MaxPricePerGB: "100",
	}
}

// Wallet implements api.Backend: the test backend has no chain.
func (b *Backend) Wallet(context.Context) (sdk.Wallet, error) { return sdk.Wallet{}, api.ErrNoChain }

// Deposit implements api.Backend: the test backend has no chain.
func (b *Backend) Deposit(context.Context, *big.Int) (sdk.TxResult, error) {
	return sdk.TxResult{}, api.ErrNoChain
}

// Send implements api.Backend: the test backend has no chain.
func (b *Backend) Send(context.Context, common.Address, *big.Int, bool) (sdk.TxResult, error) {
	return sdk.TxResult{}, api.ErrNoChain
}

// RequestDetail implements api.Backend over the book, with the
// reputations set by SetReputation.
func (b *Backend) RequestDetail(ctx context.Context, id common.Hash) (sdk.RequestDetail, error) {
	return api.ExplainRequest(b.Book, b.Maker(), id, time.Now(), func(a common.Address) int64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.rep[a].Score
	})
}

// Withdraw implements api.Backend: the test backend has no chain.
func (b *Backend) Withdraw(context.Context, *big.Int) (sdk.TxResult, error) {
	return sdk.TxResult{}, api.ErrNoChain
}

// PutDeal adds d to the backend's deals, or replaces the deal with its id,
// and publishes a deal.updated event (the deal without its history) as the
// node does. The store is a test
// double for HTTP-level tests: no state machine behind it.
func (b *Backend) PutDeal(d sdk.Deal) {
	d = cloneDeal(d)
	b.mu.Lock()
	i := slices.IndexFunc(b.deals, func(x sdk.Deal) bool { return x.ID == d.ID })
	if i >= 0 {
		b.deals[i] = d
	} else {
		b.deals = append(b.deals, d)
	}
	b.mu.Unlock()
	d.History = nil // as the node's events
	b.Publish("deal.updated", d)
}

// Deals implements api.Backend: the deals put, newest (last put) first,
// without their history.
func (b *Backend) Deals(context.Context) ([]sdk.Deal, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]sdk.Deal, 0, len(b.deals))
	for i := len(b.deals) - 1; i >= 0; i-- {
		d := cloneDeal(b.deals[i])
		d.History = nil
		out = append(out, d)
	}
	return out, nil
}

// Deal implements api.Backend.
func (b *Backend) Deal(_ context.Context, id common.Hash) (sdk.Deal, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.dealIndex(id)
	if i < 0 {
		return sdk.Deal{}, fmt.Errorf("%w: %s", agreement.ErrUnknownDeal, id.Hex())
	}
	return cloneDeal(b.deals[i]), nil
}

// CloseDeal implements api.Backend: a deal in a terminal status is over
// (agreement.ErrDealOver); one already completed cannot be closed again
// (agreement.ErrUnexpected); any other becomes completed, with a history
// line, and a deal.updated event is published. The node answers more
// finely (the agreement machine decides); this is enough for status codes.
func (b *Backend) CloseDeal(_ context.Context, id common.Hash) (sdk.Deal, error) {
	b.mu.Lock()
	i := b.dealIndex(id)
	if i < 0 {
		b.mu.Unlock()
		return sdk.Deal{}, fmt.Errorf("%w: %s", agreement.ErrUnknownDeal, id.Hex())
	}
	d := &b.deals[i]
	switch d.Status {
	case "rejected", "settled", "refunded", "cancelled", "expired":
		b.mu.Unlock()
		return sdk.Deal{}, fmt.Errorf("close deal %s: %w (%s)", id.Hex(), agreement.ErrDealOver, d.Status)
	case "completed":
		b.mu.Unlock()
		return sdk.Deal{}, fmt.Errorf("close deal %s: %w: already completed", id.Hex(), agreement.ErrUnexpected)
	}
	from := d.Status
	d.Status = "completed"
	d.Reason = "closed"
	d.History = append(d.History, sdk.DealEntry{
		At: time.Now().UTC(), Event: "close", From: from, To: "completed", Status: "completed", Reason: "closed",
	})
	out := cloneDeal(*d)
	b.mu.Unlock()
	ev := out
	ev.History = nil // as the node's events
	b.Publish("deal.updated", ev)
	return out, nil
}

// dealIndex finds a deal by id; b.mu is held.
func (b *Backend) dealIndex(id common.Hash) int {
	return slices.IndexFunc(b.deals, func(d sdk.Deal) bool { return common.HexToHash(d.ID) == id })
}

// cloneDeal copies what the caller could otherwise share: the voucher and
// the history.
func cloneDeal(d sdk.Deal) sdk.Deal {
	if d.Voucher != nil {
		v := *d.Voucher
		d.Voucher = &v
	}
	d.History = slices.Clone(d.History)
	return d
}

// ActiveDeal returns a deal in status active, of this backend's maker as the
// requester, with a voucher and a history of three lines; id is its id.
func (b *Backend) ActiveDeal(id common.Hash) sdk.Deal {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return sdk.Deal{
		ID: id.Hex(), Role: "requester", Status: "active",
		ProviderStatus: "active", RequesterStatus: "active",
		OfferID: common.Hash{0xaa}.Hex(), RequestID: common.Hash{0xbb}.Hex(),
		Provider:  common.Address{0xcc}.Hex(),
		Requester: b.Maker().Hex(),
		IPs:       2, PricePerHour: "1000", PricePerGB: "50", MaxAmount: "200000",
		Start: start, Deadline: start.Add(2 * time.Hour),
		Paid: "2500", Bytes: 1 << 20,
		Voucher: &sdk.Voucher{Amount: "2500", Bytes: 1 << 20, ConnLogHash: common.Hash{0xdd}.Hex(), Signature: "0x" + strings.Repeat("ee", 65)},
		History: []sdk.DealEntry{
			{At: start, Event: "propose", From: "none", To: "proposed", Status: "proposed"},
			{At: start.Add(time.Second), Event: "accept", From: "proposed", To: "accepted", Status: "accepted"},
			{At: start.Add(5 * time.Second), Event: "chain.opened", From: "accepted", To: "active", Status: "active"},
		},
	}
}

// SetPeers sets what Peers answers.
func (b *Backend) SetPeers(peers []sdk.Peer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peers = peers
}

// Peers implements api.Backend.
func (b *Backend) Peers(context.Context) []sdk.Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.peers)
}

// Ping implements api.Backend: a peer set with SetPeers answers at once
// over its first connection (relayed ones only without direct); any other
// ID is unreachable, and "self" stands for an argument that is not a peer.
func (b *Backend) Ping(_ context.Context, id string, direct bool) (sdk.PingResult, error) {
	if id == "self" {
		return sdk.PingResult{}, fmt.Errorf("%w: that is this node", api.ErrBadPeer)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.peers {
		if p.PeerID != id || len(p.Conns) == 0 {
			continue
		}
		for _, c := range p.Conns {
			if !direct || !c.Relayed {
				return sdk.PingResult{PeerID: id, RTT: "1ms", RTTMillis: 1, Conn: c}, nil
			}
		}
	}
	return sdk.PingResult{}, fmt.Errorf("%w: %s", api.ErrUnreachable, id)
}

// SetReputation sets the record Reputation answers for a provider.
func (b *Backend) SetReputation(provider common.Address, r sdk.Reputation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rep == nil {
		b.rep = map[common.Address]sdk.Reputation{}
	}
	b.rep[provider] = r
}

// Reputation implements api.Backend.
func (b *Backend) Reputation(_ context.Context, providers []common.Address) map[string]sdk.Reputation {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]sdk.Reputation{}
	for _, p := range providers {
		if r, ok := b.rep[p]; ok {
			out[p.Hex()] = r
		}
	}
	return out
}

// SetHealth sets what Health answers (default: live and ready, with the
// three checks passing).
func (b *Backend) SetHealth(h sdk.Health) {
	b.mu.Lock()
	b.health = &h
	b.mu.Unlock()
}

func (b *Backend) Health(context.Context) sdk.Health {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.health != nil {
		return *b.health
	}
	return sdk.Health{Live: true, Ready: true, Checks: []sdk.HealthCheck{
		{Name: "database", OK: true}, {Name: "chain", OK: true}, {Name: "shards", OK: true}}}
}

// LogLevel and SetLogLevel keep a level, info at first.
func (b *Backend) LogLevel(context.Context) (sdk.LogLevel, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return sdk.LogLevel{Level: api.LevelName(b.level)}, nil
}

func (b *Backend) SetLogLevel(_ context.Context, l slog.Level) (sdk.LogLevel, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.level = l
	return sdk.LogLevel{Level: api.LevelName(l)}, nil
}
