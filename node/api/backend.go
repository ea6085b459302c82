package api

import (
	"context"
	"errors"
	"log/slog"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// Backend is what the API serves. node.Node implements it. Methods may be
// called concurrently; returned values belong to the caller. Errors wrap
// orderbook's sentinels (ErrMalformed, ErrBadSignature, ErrExpired,
// ErrNotFound, ...) so the server can map them to status codes; anything
// else is a 500.
type Backend interface {
	Status(ctx context.Context) sdk.Status
	// CreateOffer and CreateRequest fill in, sign, validate, store and
	// publish an order of the node's own key.
	CreateOffer(ctx context.Context, p sdk.OfferParams) (*orderbook.Order, error)
	CreateRequest(ctx context.Context, p sdk.RequestParams) (*orderbook.Order, error)
	// Import validates, stores and publishes an order signed elsewhere.
	Import(ctx context.Context, o *orderbook.Order) error
	// Cancel signs and publishes a cancel of one of the node's own orders.
	Cancel(ctx context.Context, id common.Hash) (*orderbook.Cancel, error)
	// Orders lists the book (q.Country, q.Kind, q.Maker as filters).
	Orders(ctx context.Context, q orderbook.Query) ([]*orderbook.Order, error)
	// Order returns one order by id (orderbook.ErrNotFound if unknown).
	Order(ctx context.Context, id common.Hash) (*orderbook.Order, error)
	// Maker is the node's own address (its orders are q.Maker == Maker()).
	Maker() common.Address
	// SubscribeFrom returns a channel of events and a function to stop.
	// With a lastEventID (an Event.ID the client saw last), the events
	// after it that the backend still holds come first, with none lost
	// or repeated before the live ones; if it cannot tell that none are
	// lost, the first event is of type "stream.reset". The channel is
	// closed when the subscription ends (stop called, or the subscriber
	// fell too far behind: then a last event of type "error" explains).
	SubscribeFrom(lastEventID string) (<-chan sdk.Event, func())

	// Wallet reads the node key's token and escrow balances. Without a
	// chain it returns ErrNoChain.
	Wallet(ctx context.Context) (sdk.Wallet, error)
	// Deposit moves amount of the node's tokens into its escrow balance;
	// Withdraw moves free escrow balance back. Both wait for the receipt.
	Deposit(ctx context.Context, amount *big.Int) (sdk.TxResult, error)
	Withdraw(ctx context.Context, amount *big.Int) (sdk.TxResult, error)
	// Send transfers amount of the node's tokens (base units), or of its
	// ETH (wei) when eth is set, to an address, and waits for the receipt.
	Send(ctx context.Context, to common.Address, amount *big.Int, eth bool) (sdk.TxResult, error)

	// RequestDetail returns one of the node's own live requests with the
	// offers of its book that come closest to filling it, each with the
	// first reason it does not (orderbook.ErrNotFound if the node has no
	// such request).
	RequestDetail(ctx context.Context, id common.Hash) (sdk.RequestDetail, error)

	// Deals lists the node's deals, newest first, without their history.
	Deals(ctx context.Context) ([]sdk.Deal, error)
	// Deal returns one deal with its history (agreement.ErrUnknownDeal if
	// the node has none with that id).
	Deal(ctx context.Context, id common.Hash) (sdk.Deal, error)
	// CloseDeal ends a deal from this side (agreement.ErrUnexpected or
	// ErrDealOver when it cannot be closed now) and returns it.
	CloseDeal(ctx context.Context, id common.Hash) (sdk.Deal, error)

	// Reputation returns the node's local records of those providers it
	// has any for, by address.
	Reputation(ctx context.Context, providers []common.Address) map[string]sdk.Reputation

	// Health says whether the node is alive and ready, with each check.
	// It must answer quickly (bounded chain reads) and say nothing
	// confidential: the route needs no token.
	Health(ctx context.Context) sdk.Health
	// LogLevel and SetLogLevel read and change the node's log level at
	// runtime (ErrNoLogLevel if its logger cannot change).
	LogLevel(ctx context.Context) (sdk.LogLevel, error)
	SetLogLevel(ctx context.Context, l slog.Level) (sdk.LogLevel, error)

	// Peers lists the connected peers and their connections.
	Peers(ctx context.Context) []sdk.Peer
	// Ping times a round trip to a peer given by peer ID or maker
	// address (ErrBadPeer if it is neither, ErrUnreachable if no stream
	// opens); direct insists on a direct connection, hole-punching a
	// relayed one first.
	Ping(ctx context.Context, peer string, direct bool) (sdk.PingResult, error)
}

// ErrBadPeer is a peer argument that names no peer: neither a peer ID nor
// the address of a maker the node knows.
var ErrBadPeer = errors.New("bad peer")

// ErrUnreachable is a peer no stream could be opened to.
var ErrUnreachable = errors.New("peer unreachable")

// ErrNoChain is what a backend without a chain connection answers to
// wallet calls.
var ErrNoChain = errors.New("api: no chain configured (start the node with --chain-rpc)")
