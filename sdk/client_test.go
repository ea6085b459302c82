package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T) (*sdk.Client, *apitest.Backend) {
	b := apitest.NewBackend(t)
	ts, token := b.Server(t)
	return sdk.NewClient(ts.URL, token, sdk.WithHTTPClient(ts.Client())), b
}

func TestClient(t *testing.T) {
	c, b := newClient(t)
	ctx := t.Context()

	st, err := c.Status(ctx)
	if err != nil || st.Address != b.Maker().Hex() || st.ChainID != apitest.Domain.ChainID {
		t.Fatalf("status %+v: %v", st, err)
	}
	offer, err := c.CreateOffer(ctx, apitest.OfferParams())
	if err != nil {
		t.Fatal(err)
	}
	if signer, err := offer.Signer(); err != nil || signer != b.Maker() || offer.Kind != orderbook.KindOffer {
		t.Fatalf("offer %+v signed by %s: %v", offer, signer, err)
	}
	req, err := c.CreateRequest(ctx, apitest.RequestParams())
	if err != nil || req.Kind != orderbook.KindRequest {
		t.Fatalf("request %+v: %v", req, err)
	}
	foreign := apitest.Signed(t, apitest.Offer())
	imported, err := c.ImportOrder(ctx, foreign)
	if err != nil || imported.ID() != foreign.ID() {
		t.Fatalf("import: %v", err)
	}

	ids := func(os []*orderbook.Order) []common.Hash {
		var out []common.Hash
		for _, o := range os {
			out = append(out, o.ID())
		}
		return out
	}
	for _, tc := range []struct {
		name string
		get  func() ([]*orderbook.Order, error)
		want int
	}{
		{"offers", func() ([]*orderbook.Order, error) { return c.Offers(ctx) }, 1},
		{"requests", func() ([]*orderbook.Order, error) { return c.Requests(ctx) }, 1},
		{"book", func() ([]*orderbook.Order, error) { return c.Book(ctx, "DE") }, 3},
		{"book offers", func() ([]*orderbook.Order, error) { return c.Book(ctx, "DE", orderbook.KindOffer) }, 2},
		{"book both kinds", func() ([]*orderbook.Order, error) {
			return c.Book(ctx, "DE", orderbook.KindOffer, orderbook.KindRequest)
		}, 3},
		{"book elsewhere", func() ([]*orderbook.Order, error) { return c.Book(ctx, "FR") }, 0},
	} {
		got, err := tc.get()
		if err != nil || len(got) != tc.want {
			t.Fatalf("%s: %v: %v", tc.name, ids(got), err)
		}
	}

	got, err := c.Order(ctx, offer.ID())
	if err != nil || got.ID() != offer.ID() {
		t.Fatalf("order: %v", err)
	}
	cancel, err := c.CancelOrder(ctx, offer.ID())
	if err != nil || cancel.OrderID != offer.ID() {
		t.Fatalf("cancel: %v", err)
	}
	_, err = c.Order(ctx, offer.ID())
	var ae *sdk.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Code != "not_found" || !errors.Is(err, orderbook.ErrNotFound) {
		t.Fatalf("order after cancel: %#v", err)
	}
}

func TestClientErrors(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	p := apitest.OfferParams()
	p.Country = "XX"
	_, err := c.CreateOffer(ctx, p)
	var ae *sdk.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Code != "unknown_country" || !strings.Contains(ae.Message, "country") {
		t.Fatalf("bad country: %v", err)
	}
	if !errors.Is(err, orderbook.ErrUnknownCountry) {
		t.Fatalf("errors.Is: %v", err)
	}
	expired := apitest.Offer()
	expired.Created, expired.Expires = 1000, 2000
	_, err = c.ImportOrder(ctx, apitest.Signed(t, expired))
	if !errors.Is(err, orderbook.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	_, err = c.ImportOrderJSON(ctx, []byte(`{"kind":"offer"`))
	if !errors.Is(err, orderbook.ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}

	// A wrong token.
	b := apitest.NewBackend(t)
	ts, _ := b.Server(t)
	bad := sdk.NewClient(ts.URL, "wrong", sdk.WithHTTPClient(ts.Client()))
	if _, err := bad.Status(ctx); !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Code != "unauthorized" {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := bad.Events(ctx); !errors.As(err, &ae) || ae.StatusCode != 401 {
		t.Fatalf("events, wrong token: %v", err)
	}

	// Not an API at all.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	t.Cleanup(plain.Close)
	pc := sdk.NewClient(strings.TrimPrefix(plain.URL, "http://"), "t", sdk.WithHTTPClient(plain.Client()))
	if _, err := pc.Status(ctx); !errors.As(err, &ae) || ae.StatusCode != 502 || ae.Code != "" || ae.Message != "bad gateway" {
		t.Fatalf("plain error: %v", err)
	}
	if _, err := sdk.NewClient("http://[::1", "t").Status(ctx); err == nil {
		t.Fatal("bad base URL accepted")
	}
}

func TestEvents(t *testing.T) {
	c, b := newClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := c.CreateOffer(ctx, apitest.OfferParams())
	if err != nil {
		t.Fatal(err)
	}
	ev := <-events
	var oe sdk.OrderEvent
	if ev.Type != "order.added" || json.Unmarshal(ev.Data, &oe) != nil || oe.Order.ID() != offer.ID() {
		t.Fatalf("event %+v", ev)
	}
	// Falling behind, the client is dropped by the node and resumes from
	// its last event id: every event arrives, once, in order.
	for i := 0; i < 100; i++ {
		if i == 50 {
			b.DropSubscribers() // fell behind, whatever the machine's speed
		}
		b.Publish("order.added", map[string]int{"i": i})
	}
	for i := 0; i < 100; i++ {
		ev := <-events
		var got struct{ I int }
		if ev.Type != "order.added" || json.Unmarshal(ev.Data, &got) != nil || got.I != i {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}

	// Without reconnecting, falling behind ends the stream with an error
	// event. (Publishing 100 events did not make a client fall behind
	// when the machine had a core to spare: the backend drops it.)
	once, err := c.Events(ctx, sdk.WithoutReconnect())
	if err != nil {
		t.Fatal(err)
	}
	b.DropSubscribers()
	last := sdk.Event{}
	for ev := range once {
		last = ev
	}
	if last.Type != "error" {
		t.Fatalf("last event %+v", last)
	}
}

// TestEventsReconnect: the connection drops (the node's server closes
// it); the client reconnects with Last-Event-ID and gets the events
// published meanwhile, none lost or repeated. Resuming from an id the
// node never gave starts with a stream.reset event.
func TestEventsReconnect(t *testing.T) {
	b := apitest.NewBackend(t)
	ts, token := b.Server(t)
	c := sdk.NewClient(ts.URL, token, sdk.WithHTTPClient(ts.Client()))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	events, err := c.Events(ctx, sdk.WithReconnectWait(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	next := func() sdk.Event {
		t.Helper()
		select {
		case ev := <-events:
			ids = append(ids, ev.ID)
			return ev
		case <-ctx.Done():
			t.Fatalf("no event after %v", ids)
		}
		return sdk.Event{}
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 3; i++ {
			b.Publish("order.added", map[string]int{"i": round*3 + i})
		}
		for i := 0; i < 3; i++ {
			var got struct{ I int }
			if ev := next(); json.Unmarshal(ev.Data, &got) != nil || got.I != round*3+i {
				t.Fatalf("round %d event %d: %+v (ids %v)", round, i, ev, ids)
			}
		}
		ts.CloseClientConnections()
		// Published while the client is away or reconnecting.
		b.Publish("order.added", map[string]int{"i": -1})
		if ev := next(); ev.Type != "order.added" || !strings.Contains(string(ev.Data), "-1") {
			t.Fatalf("event published while away: %+v", ev)
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("ids %v: empty or repeated", ids)
		}
		seen[id] = true
	}

	resumed, err := c.Events(ctx, sdk.ResumeAfter("t-9999"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-resumed; ev.Type != "stream.reset" {
		t.Fatalf("resuming from an unknown id: %+v", ev)
	}
	resumed, err = c.Events(ctx, sdk.ResumeAfter(ids[len(ids)-2]))
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-resumed; ev.ID != ids[len(ids)-1] {
		t.Fatalf("resuming after %s: %+v, want %s", ids[len(ids)-2], ev, ids[len(ids)-1])
	}
}

func TestEventsEndWithContext(t *testing.T) {
	c, b := newClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for ev := range events {
		t.Fatalf("event after cancel: %+v", ev)
	}
	// The server notices too.
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for b.Subscribers() != 0 {
		select {
		case <-deadline:
			t.Fatal("subscription still open")
		case <-tick.C:
		}
	}
}

// TestEventStreamParsing feeds streams that are not the node's.
func TestEventStreamParsing(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		want         []string // types
		lastErr      bool
	}{
		{"plain data", "data: {\"a\":1}\n\n", []string{"message"}, false},
		{"typed text", "event: ping\ndata: hello\n\n: comment\n\n", []string{"ping"}, false},
		{"multi-line data", "event: x\ndata: 1\ndata: 2\n\n", []string{"x"}, false},
		{"crlf", "event: x\r\ndata: {}\r\n\r\n", []string{"x"}, false},
		{"long line", "data: " + strings.Repeat("x", sdk.MaxEventLine+10) + "\n\n", nil, true},
		{"cut inside line", "event: x\ndata: {", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, tc.stream)
			}))
			t.Cleanup(ts.Close)
			c := sdk.NewClient(ts.URL, "t", sdk.WithHTTPClient(ts.Client()))
			events, err := c.Events(t.Context(), sdk.WithoutReconnect())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var last sdk.Event
			for ev := range events {
				got = append(got, ev.Type)
				last = ev
			}
			if tc.lastErr {
				if last.Type != "error" || !strings.Contains(string(last.Data), "bad event stream") {
					t.Fatalf("got %v, last %+v", got, last)
				}
				return
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHealthAndLogLevel: Health reads a 503 as not ready, not as an
// error; the log level round-trips; a bad level is an API error.
func TestHealthAndLogLevel(t *testing.T) {
	c, b := newClient(t)
	ctx := t.Context()
	h, err := c.Health(ctx)
	if err != nil || !h.Ready || h.Status != "ok" {
		t.Fatalf("health %+v: %v", h, err)
	}
	b.SetHealth(sdk.Health{Live: true})
	if h, err = c.Health(ctx); err != nil || h.Ready || h.Status != "unavailable" {
		t.Fatalf("not ready: %+v: %v", h, err)
	}
	if l, err := c.SetLogLevel(ctx, "debug"); err != nil || l.Level != "debug" {
		t.Fatalf("set: %+v %v", l, err)
	}
	if l, err := c.LogLevel(ctx); err != nil || l.Level != "debug" {
		t.Fatalf("get: %+v %v", l, err)
	}
	var ae *sdk.APIError
	if _, err := c.SetLogLevel(ctx, "chatty"); !errors.As(err, &ae) || ae.StatusCode != 400 {
		t.Fatalf("bad level: %v", err)
	}
}
