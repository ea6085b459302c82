// Package sdk is the Go client of an IPSX node's local REST API, used by
// the ipsx CLI and by applications: status, creating and cancelling
// offers and requests, reading the order book, importing orders signed
// elsewhere, reading and closing deals, and following the node's event
// stream.
//
// It holds the API's wire types (OfferParams, RequestParams, Status,
// Event, ...) so the node and its clients share one definition. A Client
// is safe for concurrent use and starts a goroutine only for an event
// stream, which ends with the stream's context.
package sdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/orderbook"
)

// Limits of what the client reads.
const (
	// DefaultTimeout bounds each call except Events when its context has
	// no deadline.
	DefaultTimeout = 30 * time.Second
	// MaxEventLine bounds one line of the event stream.
	MaxEventLine = 1 << 20
	maxResponse  = 256 << 20 // a whole book
	maxErrorBody = 64 << 10
)

// ErrBadEventStream is reported when the event stream breaks protocol.
var ErrBadEventStream = errors.New("sdk: bad event stream")

// Client talks to one node.
type Client struct {
	base    *url.URL
	token   string
	hc      *http.Client
	timeout time.Duration
	agent   string
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: a client of its own with
// no overall timeout; calls are bounded by their context).
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each call (not Events) whose context has no deadline;
// 0 leaves them unbounded. Default DefaultTimeout.
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) ClientOption { return func(c *Client) { c.agent = ua } }

// NewClient returns a client of the API at baseURL, e.g.
// "http://127.0.0.1:7480" or just "127.0.0.1:7480", authenticating with
// token. A baseURL that does not parse makes every call fail with the
// reason.
func NewClient(baseURL, token string, opts ...ClientOption) *Client {
	c := &Client{token: token, timeout: DefaultTimeout, agent: "ipsx-sdk"}
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	if u, err := url.Parse(strings.TrimRight(baseURL, "/")); err == nil && u.Host != "" {
		c.base = u
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c
}

// APIError is an error answer of the API. errors.Is matches it against
// orderbook's sentinels by its code, so errors.Is(err, orderbook.ErrNotFound)
// holds for a 404 about an order.
type APIError struct {
	StatusCode int
	Code       string // e.g. "bad_signature", "not_found"; empty if the body was not an API error
	Message    string

	// deal is set on answers of the deal routes, where not_found means
	// agreement.ErrUnknownDeal rather than orderbook.ErrNotFound.
	deal bool
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("ipsx api: HTTP %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("ipsx api: %s (HTTP %d, %s)", e.Message, e.StatusCode, e.Code)
}

var codeErrors = map[string]error{
	"malformed":            orderbook.ErrMalformed,
	"out_of_range":         orderbook.ErrOutOfRange,
	"unknown_country":      orderbook.ErrUnknownCountry,
	"too_large":            orderbook.ErrTooLarge,
	"bad_signature":        orderbook.ErrBadSignature,
	"wrong_signer":         orderbook.ErrWrongSigner,
	"wrong_domain":         orderbook.ErrWrongDomain,
	"bad_digest":           orderbook.ErrBadDigest,
	"expired":              orderbook.ErrExpired,
	"future":               orderbook.ErrFuture,
	"stale":                orderbook.ErrStale,
	"duplicate":            orderbook.ErrDuplicate,
	"cancelled":            orderbook.ErrCancelled,
	"superseded":           orderbook.ErrSuperseded,
	"not_found":            orderbook.ErrNotFound,
	"insufficient_balance": orderbook.ErrInsufficient,
	"deal_over":            agreement.ErrDealOver,
	"not_now":              agreement.ErrUnexpected,
}

// Unwrap returns the orderbook or agreement sentinel of the error's code,
// if any: a 404 from a deal route is agreement.ErrUnknownDeal.
func (e *APIError) Unwrap() error {
	if e.deal && e.Code == "not_found" {
		return agreement.ErrUnknownDeal
	}
	return codeErrors[e.Code]
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.call(ctx, "GET", "/v1/status", nil, nil, &s)
}

// CreateOffer has the node sign and publish an offer, and returns it.
func (c *Client) CreateOffer(ctx context.Context, p OfferParams) (*orderbook.Order, error) {
	o := new(orderbook.Order)
	return o, c.call(ctx, "POST", "/v1/offers", nil, p, o)
}

// CreateRequest has the node sign and publish a request, and returns it.
func (c *Client) CreateRequest(ctx context.Context, p RequestParams) (*orderbook.Order, error) {
	o := new(orderbook.Order)
	return o, c.call(ctx, "POST", "/v1/requests", nil, p, o)
}

// Offers lists the node's own live offers.
func (c *Client) Offers(ctx context.Context) ([]*orderbook.Order, error) {
	return c.list(ctx, "/v1/offers", nil)
}

// Requests lists the node's own live requests.
func (c *Client) Requests(ctx context.Context) ([]*orderbook.Order, error) {
	return c.list(ctx, "/v1/requests", nil)
}

// Book lists the orders of a country's shard, of the given kind if one is
// given (offers or requests; none or both: all), cheapest first.
func (c *Client) Book(ctx context.Context, country string, kind ...orderbook.Kind) ([]*orderbook.Order, error) {
	q := url.Values{"country": {country}}
	var want orderbook.Kind
	for i, k := range kind {
		if i == 0 {
			want = k
		} else if k != want {
			want = 0
			break
		}
	}
	if want != 0 {
		q.Set("kind", want.String())
	}
	return c.list(ctx, "/v1/orders", q)
}

// Order returns one order by id.
func (c *Client) Order(ctx context.Context, id common.Hash) (*orderbook.Order, error) {
	o := new(orderbook.Order)
	return o, c.call(ctx, "GET", "/v1/orders/"+id.Hex(), nil, nil, o)
}

// CancelOrder has the node sign and publish a cancel of one of its orders.
func (c *Client) CancelOrder(ctx context.Context, id common.Hash) (*orderbook.Cancel, error) {
	cc := new(orderbook.Cancel)
	return cc, c.call(ctx, "DELETE", "/v1/orders/"+id.Hex(), nil, nil, cc)
}

// ImportOrder hands the node an order signed elsewhere; the node validates,
// stores and publishes it.
func (c *Client) ImportOrder(ctx context.Context, o *orderbook.Order) (*orderbook.Order, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode order: %w", err)
	}
	return c.ImportOrderJSON(ctx, b)
}

// ImportOrderJSON is ImportOrder for an order already in the wire form; the
// node reports what is wrong with it.
func (c *Client) ImportOrderJSON(ctx context.Context, wire []byte) (*orderbook.Order, error) {
	o := new(orderbook.Order)
	return o, c.call(ctx, "POST", "/v1/orders/import", nil, rawBody(wire), o)
}

func (c *Client) list(ctx context.Context, path string, q url.Values) ([]*orderbook.Order, error) {
	var body struct {
		Orders []*orderbook.Order `json:"orders"`
	}
	if err := c.call(ctx, "GET", path, q, nil, &body); err != nil {
		return nil, err
	}
	return body.Orders, nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	if c.base == nil {
		return nil, errors.New("sdk: no valid API address (want host:port or http://host:port)")
	}
	u := *c.base
	u.Path += path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	var rd io.Reader
	if raw, ok := body.(rawBody); ok {
		rd = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("sdk: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("sdk: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.agent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// call does one request and decodes a 2xx answer into out.
// rawBody is a request body sent as is.
type rawBody []byte

func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("sdk: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponse))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("sdk: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{StatusCode: resp.StatusCode}
	var body Error
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Code, e.Message = body.Code, body.Error
	} else {
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}

// EventsOption configures Events.
type EventsOption func(*eventsConfig)

type eventsConfig struct {
	last             string
	reconnect        bool
	minWait, maxWait time.Duration
}

// ResumeAfter starts the stream after the event with this id (an
// Event.ID seen before): the node first sends the events after it that it
// still holds, or a "stream.reset" event if it no longer holds them all.
func ResumeAfter(id string) EventsOption { return func(c *eventsConfig) { c.last = id } }

// WithoutReconnect ends the stream when the connection does, with a last
// "error" event, instead of reconnecting.
func WithoutReconnect() EventsOption { return func(c *eventsConfig) { c.reconnect = false } }

// WithReconnectWait sets the wait before a reconnection: min at first,
// doubling up to max (defaults 250 ms and 10 s).
func WithReconnectWait(min, max time.Duration) EventsOption {
	return func(c *eventsConfig) { c.minWait, c.maxWait = min, max }
}

// Events subscribes to the node's event stream. The channel delivers
// events until ctx ends, then closes. When Events returns, the
// subscription is in place: every event published afterwards is
// delivered.
//
// A stream that breaks (the node restarts, the connection drops, the node
// drops the subscriber for falling behind) is reconnected with the id of
// the last event delivered as Last-Event-ID, waiting a little longer
// after each failed attempt, so no event the node still holds is lost; if
// some may be, a "stream.reset" event says so (re-read state). Only a
// refusal (such as a wrong token) ends the stream, with a last Event of
// type "error" whose Data is {"error": "<why>"}. WithoutReconnect gives
// that last event at the first break instead.
func (c *Client) Events(ctx context.Context, opts ...EventsOption) (<-chan Event, error) {
	cfg := eventsConfig{reconnect: true, minWait: 250 * time.Millisecond, maxWait: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.minWait <= 0 || cfg.maxWait < cfg.minWait {
		return nil, errors.New("sdk: reconnect waits must be positive, min at most max")
	}
	body, err := c.openEvents(ctx, cfg.last)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event, 16)
	go func() {
		defer close(ch)
		last := cfg.last
		send := func(ev Event) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		fail := func(err error) {
			data, _ := json.Marshal(map[string]string{"error": err.Error()})
			send(Event{Type: "error", Time: time.Now().UTC(), Data: data})
		}
		wait := cfg.minWait
		for {
			err := readEvents(body, func(ev Event) bool {
				if ev.Type == "error" && ev.ID == "" && cfg.reconnect {
					return false // the node ends this stream (a slow subscriber): resume it
				}
				if ev.ID != "" {
					last = ev.ID
				}
				return send(ev)
			})
			_ = body.Close()
			if ctx.Err() != nil {
				return
			}
			if !cfg.reconnect {
				if err != nil {
					fail(err)
				}
				return
			}
			for {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				wait = min(2*wait, cfg.maxWait)
				body, err = c.openEvents(ctx, last)
				if err == nil {
					wait = cfg.minWait
					break
				}
				var ae *APIError
				if errors.As(err, &ae) && ae.StatusCode/100 == 4 && ae.StatusCode != http.StatusTooManyRequests {
					fail(err) // refused: retrying cannot help
					return
				}
				if ctx.Err() != nil {
					return
				}
			}
		}
	}()
	return ch, nil
}

// openEvents opens GET /v1/events, resuming after last if set.
func (c *Client) openEvents(ctx context.Context, last string) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, "GET", "/v1/events", nil, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sdk: GET /v1/events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp.Body, nil
}

// readEvents parses a text/event-stream and calls emit for each event
// until emit returns false or the stream ends. Lines longer than
// MaxEventLine are an error. An event whose data is an Event (as the node
// sends) is passed on as is; otherwise the data becomes the Event's Data.
func readEvents(r io.Reader, emit func(Event) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		id, typ string
		data    []byte
	)
	for {
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch {
		case len(line) == 0:
			if typ == "" && data == nil {
				continue
			}
			ev := Event{ID: id, Type: typ}
			var full Event
			if json.Unmarshal(data, &full) == nil && full.Type != "" {
				ev = full
			} else if json.Valid(data) {
				ev.Data = append(json.RawMessage(nil), data...)
			} else {
				ev.Data, _ = json.Marshal(string(data))
			}
			if ev.Type == "" {
				ev.Type = "message"
			}
			if ev.ID == "" {
				ev.ID = id
			}
			if !emit(ev) {
				return nil
			}
			id, typ, data = "", "", nil
		case line[0] == ':':
			// comment: keep-alive
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				typ = string(value)
			case "id":
				id = string(value)
			case "data":
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, value...)
				if len(data) > MaxEventLine {
					return fmt.Errorf("%w: event data over %d bytes", ErrBadEventStream, MaxEventLine)
				}
			}
		}
	}
}

// readLine reads one line without its ending (LF or CRLF), at most
// MaxEventLine bytes. A stream that ends inside a line is an error.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxEventLine+2 {
			return nil, fmt.Errorf("%w: line over %d bytes", ErrBadEventStream, MaxEventLine)
		}
		switch {
		case err == nil:
			line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, fmt.Errorf("%w: stream ends inside a line", ErrBadEventStream)
		default:
			return nil, err
		}
	}
}

// Wallet returns the node key's token and escrow balances.
func (c *Client) Wallet(ctx context.Context) (*Wallet, error) {
	var w Wallet
	return &w, c.call(ctx, "GET", "/v1/wallet", nil, nil, &w)
}

// Deposit moves amount (token base units, decimal) of the node's tokens
// into its escrow balance and waits for the receipt.
func (c *Client) Deposit(ctx context.Context, amount string) (*TxResult, error) {
	var r TxResult
	return &r, c.call(ctx, "POST", "/v1/wallet/deposit", nil, AmountParams{Amount: amount}, &r)
}

// Withdraw moves amount of free escrow balance back to the node's wallet.
func (c *Client) Withdraw(ctx context.Context, amount string) (*TxResult, error) {
	var r TxResult
	return &r, c.call(ctx, "POST", "/v1/wallet/withdraw", nil, AmountParams{Amount: amount}, &r)
}

// Send transfers tokens (Asset "token" or empty) or ETH (Asset "eth")
// from the node's key to p.To and waits for the receipt.
func (c *Client) Send(ctx context.Context, p SendParams) (*TxResult, error) {
	var r TxResult
	return &r, c.call(ctx, "POST", "/v1/wallet/send", nil, p, &r)
}

// RequestDetail returns one of the node's requests with its best
// candidate offers and, for each that cannot fill it, why not.
func (c *Client) RequestDetail(ctx context.Context, id common.Hash) (*RequestDetail, error) {
	var d RequestDetail
	return &d, c.call(ctx, "GET", "/v1/requests/"+id.Hex(), nil, nil, &d)
}

// Deals lists the node's deals, newest first, without their history.
func (c *Client) Deals(ctx context.Context) ([]Deal, error) {
	var body struct {
		Deals []Deal `json:"deals"`
	}
	if err := dealError(c.call(ctx, "GET", "/v1/deals", nil, nil, &body)); err != nil {
		return nil, err
	}
	return body.Deals, nil
}

// Deal returns one deal with its history. An unknown id is an error that
// matches agreement.ErrUnknownDeal.
func (c *Client) Deal(ctx context.Context, id common.Hash) (*Deal, error) {
	var d Deal
	return &d, dealError(c.call(ctx, "GET", "/v1/deals/"+id.Hex(), nil, nil, &d))
}

// CloseDeal ends a deal from this node's side and returns the deal after
// it. A deal that is over is an error matching agreement.ErrDealOver; one
// that cannot be closed in its state, agreement.ErrUnexpected.
func (c *Client) CloseDeal(ctx context.Context, id common.Hash) (*Deal, error) {
	var d Deal
	return &d, dealError(c.call(ctx, "POST", "/v1/deals/"+id.Hex()+"/close", nil, nil, &d))
}

// dealError marks an API error as the answer of a deal route.
func dealError(err error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		ae.deal = true
	}
	return err
}

// Peers lists the node's connected peers and how each is connected.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var body struct {
		Peers []Peer `json:"peers"`
	}
	err := c.call(ctx, "GET", "/v1/peers", nil, nil, &body)
	return body.Peers, err
}

// Ping opens a stream to a peer (peer ID or maker address) and times a
// round trip; direct insists on a direct connection (hole punching first).
func (c *Client) Ping(ctx context.Context, peer string, direct bool) (*PingResult, error) {
	var res PingResult
	return &res, c.call(ctx, "POST", "/v1/peers/"+url.PathEscape(peer)+"/ping", nil, PingParams{Direct: direct}, &res)
}

// Health reads GET /healthz (no token needed): a node that is alive but
// not ready answers 503 with its checks, which Health returns as a
// Health with Ready false, not as an error.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, "GET", "/healthz", nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sdk: GET /healthz: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, readError(resp)
	}
	var h Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&h); err != nil {
		return nil, fmt.Errorf("sdk: GET /healthz: decode answer: %w", err)
	}
	return &h, nil
}

// LogLevel returns the node's log level.
func (c *Client) LogLevel(ctx context.Context) (*LogLevel, error) {
	var l LogLevel
	return &l, c.call(ctx, "GET", "/v1/log/level", nil, nil, &l)
}

// SetLogLevel changes the node's log level at runtime (debug, info, warn,
// error) and returns it.
func (c *Client) SetLogLevel(ctx context.Context, level string) (*LogLevel, error) {
	var l LogLevel
	return &l, c.call(ctx, "PUT", "/v1/log/level", nil, LogLevel{Level: level}, &l)
}
