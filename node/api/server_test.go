package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
	"github.com/ipsx/ipsx/sdk"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type client struct {
	t     *testing.T
	ts    *httptest.Server
	token string
}

func newClient(t *testing.T, b *apitest.Backend, opts ...api.Option) *client {
	ts, token := b.Server(t, opts...)
	return &client{t: t, ts: ts, token: token}
}

// do sends a request and returns the status and body.
func (c *client) do(method, path, body string, hdr ...string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.ts.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.ts.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodeError(t *testing.T, b []byte) sdk.Error {
	t.Helper()
	var e sdk.Error
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" || e.Error == "" {
		t.Fatalf("body is not an sdk.Error: %q (%v)", b, err)
	}
	return e
}

func decodeOrder(t *testing.T, b []byte) (*orderbook.Order, string) {
	t.Helper()
	o, err := orderbook.DecodeOrder(b)
	if err != nil {
		t.Fatalf("decode order %s: %v", b, err)
	}
	var withID struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &withID)
	return o, withID.ID
}

func TestAuth(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"missing", "", 401},
		{"wrong token", "Bearer nope", 401},
		{"token prefix", "Bearer " + c.token[:10], 401},
		{"basic scheme", "Basic " + c.token, 401},
		{"right", "Bearer " + c.token, 200},
		{"lower-case scheme", "bearer " + c.token, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/status", "/v1/offers", "/v1/openapi.json", "/v1/nosuch"} {
				status, body := c.do("GET", path, "", "Authorization", tc.auth)
				want := tc.want
				if path == "/v1/nosuch" && want == 200 {
					want = 404
				}
				if status != want {
					t.Fatalf("GET %s: status %d, want %d: %s", path, status, want, body)
				}
				if status == 401 {
					if e := decodeError(t, body); e.Code != "unauthorized" {
						t.Fatalf("code %q", e.Code)
					}
				}
			}
		})
	}
	if status, _ := c.do("GET", "/v1/status", ""); status != 200 {
		t.Fatal(status)
	}
	// An empty token locks the API rather than matching an empty header.
	ts := httptest.NewServer(api.New(b, "").Handler())
	t.Cleanup(ts.Close)
	c2 := &client{t: t, ts: ts, token: ""}
	if status, _ := c2.do("GET", "/v1/status", ""); status != 401 {
		t.Fatalf("empty token: status %d", status)
	}
}

func TestRoutingErrors(t *testing.T) {
	c := newClient(t, apitest.NewBackend(t))
	status, body := c.do("PUT", "/v1/offers", "{}")
	if status != 405 || decodeError(t, body).Code != "method_not_allowed" {
		t.Fatalf("PUT /v1/offers: %d %s", status, body)
	}
	status, body = c.do("GET", "/nosuch", "")
	if status != 404 || decodeError(t, body).Code != "not_found" {
		t.Fatalf("GET /nosuch: %d %s", status, body)
	}
	// No /metrics without WithMetrics.
	if status, _ := c.do("GET", "/metrics", ""); status != 404 {
		t.Fatalf("metrics: %d", status)
	}
}

func TestCreateOffer(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	status, body := c.do("POST", "/v1/offers", mustJSON(t, apitest.OfferParams()))
	if status != 201 {
		t.Fatalf("status %d: %s", status, body)
	}
	o, id := decodeOrder(t, body)
	if id != o.ID().Hex() {
		t.Fatalf("id %s, digest %s", id, o.ID().Hex())
	}
	signer, err := o.Signer()
	if err != nil || signer != b.Maker() || o.Maker != b.Maker() {
		t.Fatalf("signer %s maker %s node %s: %v", signer, o.Maker, b.Maker(), err)
	}
	if err := orderbook.Validate(o, len(body), time.Now(), b.Params, nil, nil); err != nil {
		t.Fatalf("returned order does not validate: %v", err)
	}
	if o.Kind != orderbook.KindOffer || o.Location.Country != "DE" || o.IPs != 2 || o.PricePerHour.Cmp(big.NewInt(1000)) != 0 || o.Protocols != orderbook.ProtoTCP {
		t.Fatalf("order %+v", o)
	}

	// It is in the own list, the book and by id; a request is not in the offers.
	if status, body := c.do("POST", "/v1/requests", mustJSON(t, apitest.RequestParams())); status != 201 {
		t.Fatalf("request: %d %s", status, body)
	}
	for _, path := range []string{"/v1/offers", "/v1/orders?country=DE&kind=offer", "/v1/orders?maker=" + b.Maker().Hex() + "&kind=offer"} {
		status, body := c.do("GET", path, "")
		var list struct {
			Orders []*orderbook.Order `json:"orders"`
		}
		if status != 200 || json.Unmarshal(body, &list) != nil {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		if len(list.Orders) != 1 || list.Orders[0].ID() != o.ID() {
			t.Fatalf("GET %s: %s", path, body)
		}
	}
	status, body = c.do("GET", "/v1/requests", "")
	if status != 200 || strings.Count(string(body), `"kind":"request"`) != 1 || strings.Contains(string(body), `"kind":"offer"`) {
		t.Fatalf("requests: %d %s", status, body)
	}
	status, body = c.do("GET", "/v1/orders?country=FR", "")
	if status != 200 || strings.TrimSpace(string(body)) != `{"orders":[]}` {
		t.Fatalf("empty shard: %d %s", status, body)
	}
	status, body = c.do("GET", "/v1/orders/"+o.ID().Hex(), "")
	if got, _ := decodeOrder(t, body); status != 200 || got.ID() != o.ID() {
		t.Fatalf("by id: %d %s", status, body)
	}
	var st sdk.Status
	status, body = c.do("GET", "/v1/status", "")
	if status != 200 || json.Unmarshal(body, &st) != nil || st.OwnOrders != 2 || st.Address != b.Maker().Hex() {
		t.Fatalf("status: %d %s", status, body)
	}
}

func TestBadInput(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	offer := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(mustJSON(t, apitest.OfferParams())), &m)
		f(m)
		return mustJSON(t, m)
	}
	request := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(mustJSON(t, apitest.RequestParams())), &m)
		f(m)
		return mustJSON(t, m)
	}
	good := offer(func(map[string]any) {})
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, mention            string
	}{
		{"unknown field", "POST", "/v1/offers", offer(func(m map[string]any) { m["colour"] = "red" }), nil, 400, "malformed", `"colour"`},
		{"trailing data", "POST", "/v1/offers", good + `{}`, nil, 400, "malformed", "trailing"},
		{"trailing brace", "POST", "/v1/offers", good + `}`, nil, 400, "malformed", "trailing"},
		{"not json", "POST", "/v1/offers", `country=DE`, nil, 400, "malformed", "JSON object"},
		{"syntax error", "POST", "/v1/offers", `{"country":}`, nil, 400, "malformed", "not valid JSON"},
		{"truncated", "POST", "/v1/offers", `{"country":"DE"`, nil, 400, "malformed", "JSON"},
		{"array body", "POST", "/v1/offers", `[1]`, nil, 400, "malformed", "JSON object"},
		{"empty body", "POST", "/v1/offers", ``, []string{"Content-Type", "application/json"}, 400, "malformed", "empty"},
		{"wrong content type", "POST", "/v1/offers", good, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"too large", "POST", "/v1/offers", `{"region":"` + strings.Repeat("x", api.MaxBodySize) + `"}`, nil, 413, "too_large", "bytes"},
		{"ips as string", "POST", "/v1/offers", offer(func(m map[string]any) { m["ips"] = "2" }), nil, 400, "malformed", `"ips"`},
		{"ips negative", "POST", "/v1/offers", offer(func(m map[string]any) { m["ips"] = -1 }), nil, 400, "malformed", `"ips"`},
		{"ips zero", "POST", "/v1/offers", offer(func(m map[string]any) { m["ips"] = 0 }), nil, 400, "out_of_range", "ips"},
		{"ips too many", "POST", "/v1/offers", offer(func(m map[string]any) { m["ips"] = 1 << 20 }), nil, 400, "out_of_range", "ips"},
		{"ips overflow", "POST", "/v1/offers", offer(func(m map[string]any) { m["ips"] = 1 << 40 }), nil, 400, "malformed", `"ips"`},
		{"unknown country", "POST", "/v1/offers", offer(func(m map[string]any) { m["country"] = "XX" }), nil, 400, "unknown_country", "country"},
		{"lower-case country", "POST", "/v1/offers", offer(func(m map[string]any) { m["country"] = "de" }), nil, 400, "unknown_country", "country"},
		{"missing country", "POST", "/v1/offers", offer(func(m map[string]any) { delete(m, "country") }), nil, 400, "unknown_country", "country is required"},
		{"bad ipType", "POST", "/v1/offers", offer(func(m map[string]any) { m["ipType"] = "satellite" }), nil, 400, "malformed", "ipType"},
		{"offer ipType any", "POST", "/v1/offers", offer(func(m map[string]any) { m["ipType"] = "any" }), nil, 400, "out_of_range", "ipType"},
		{"bad protocol", "POST", "/v1/offers", offer(func(m map[string]any) { m["protocols"] = []string{"icmp"} }), nil, 400, "malformed", "protocol"},
		{"udp only", "POST", "/v1/offers", offer(func(m map[string]any) { m["protocols"] = []string{"udp"} }), nil, 400, "out_of_range", "tcp is required"},
		{"price not decimal", "POST", "/v1/offers", offer(func(m map[string]any) { m["pricePerHour"] = "0x10" }), nil, 400, "malformed", "pricePerHour"},
		{"price as number", "POST", "/v1/offers", offer(func(m map[string]any) { m["pricePerHour"] = 10 }), nil, 400, "malformed", `"pricePerHour"`},
		{"price negative", "POST", "/v1/offers", offer(func(m map[string]any) { m["pricePerGB"] = "-5" }), nil, 400, "out_of_range", "pricePerGB"},
		{"price missing", "POST", "/v1/offers", offer(func(m map[string]any) { delete(m, "pricePerGB") }), nil, 400, "malformed", "pricePerGB is required"},
		{"price over uint256", "POST", "/v1/offers", offer(func(m map[string]any) { m["pricePerHour"] = "1" + strings.Repeat("0", 80) }), nil, 400, "out_of_range", "pricePerHour"},
		{"both prices zero", "POST", "/v1/offers", offer(func(m map[string]any) { m["pricePerHour"], m["pricePerGB"] = "0", "0" }), nil, 400, "out_of_range", "both zero"},
		{"duration range inverted", "POST", "/v1/offers", offer(func(m map[string]any) { m["minDuration"], m["maxDuration"] = 600, 60 }), nil, 400, "out_of_range", "duration"},
		{"duration below 5 s", "POST", "/v1/offers", offer(func(m map[string]any) { m["minDuration"] = 1 }), nil, 400, "out_of_range", "duration"},
		{"zero bandwidth", "POST", "/v1/offers", offer(func(m map[string]any) { m["bandwidth"] = 0 }), nil, 400, "out_of_range", "bandwidth"},
		{"region too long", "POST", "/v1/offers", offer(func(m map[string]any) { m["region"] = strings.Repeat("r", 65) }), nil, 400, "out_of_range", "region"},
		{"city control char", "POST", "/v1/offers", offer(func(m map[string]any) { m["city"] = "Ber\x01lin" }), nil, 400, "malformed", "city"},
		{"ttl too long", "POST", "/v1/offers", offer(func(m map[string]any) { m["ttl"] = 1 << 30 }), nil, 400, "out_of_range", "ttl"},
		{"request duration zero", "POST", "/v1/requests", request(func(m map[string]any) { m["duration"] = 0 }), nil, 400, "out_of_range", "duration"},
		{"request offer field", "POST", "/v1/requests", request(func(m map[string]any) { m["pricePerHour"] = "1" }), nil, 400, "malformed", `"pricePerHour"`},
		{"request bad max price", "POST", "/v1/requests", request(func(m map[string]any) { m["maxPricePerHour"] = "lots" }), nil, 400, "malformed", "maxPricePerHour"},
		{"bad id", "GET", "/v1/orders/0x1234", "", nil, 400, "malformed", "id"},
		{"bad id hex", "GET", "/v1/orders/0x" + strings.Repeat("zz", 32), "", nil, 400, "malformed", "id"},
		{"bad id delete", "DELETE", "/v1/orders/import", "", nil, 400, "malformed", "id"},
		{"unknown order", "GET", "/v1/orders/" + common.Hash{1}.Hex(), "", nil, 404, "not_found", "not found"},
		{"cancel unknown", "DELETE", "/v1/orders/" + common.Hash{1}.Hex(), "", nil, 404, "not_found", "not found"},
		{"book bad country", "GET", "/v1/orders?country=ZZ", "", nil, 400, "unknown_country", "country"},
		{"book bad kind", "GET", "/v1/orders?country=DE&kind=bid", "", nil, 400, "malformed", "kind"},
		{"book bad maker", "GET", "/v1/orders?maker=bob", "", nil, 400, "malformed", "maker"},
		{"book typo", "GET", "/v1/orders?contry=DE", "", nil, 400, "malformed", `"contry"`},
		{"book repeated", "GET", "/v1/orders?country=DE&country=FR", "", nil, 400, "malformed", `"country"`},
		{"own list query", "GET", "/v1/offers?country=DE", "", nil, 400, "malformed", `"country"`},
		{"import garbage", "POST", "/v1/orders/import", `{"kind":"offer"}`, nil, 400, "malformed", "ipType"},
		{"import unknown field", "POST", "/v1/orders/import", `{"kind":"offer","x":1}`, nil, 400, "malformed", `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do(tc.method, tc.path, tc.body, tc.hdr...)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			e := decodeError(t, body)
			if e.Code != tc.code || !strings.Contains(e.Error, tc.mention) {
				t.Fatalf("got code %q error %q; want code %q mentioning %q", e.Code, e.Error, tc.code, tc.mention)
			}
		})
	}
	// Nothing reached the book.
	if n := b.Book.Count(); n != 0 {
		t.Fatalf("%d orders in the book after bad input", n)
	}
}

// TestImport imports orders signed elsewhere, good and bad.
func TestImport(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	foreign := apitest.Signed(t, apitest.Offer())
	status, body := c.do("POST", "/v1/orders/import", mustJSON(t, foreign))
	if status != 201 {
		t.Fatalf("import: %d %s", status, body)
	}
	if got, id := decodeOrder(t, body); got.ID() != foreign.ID() || id != foreign.ID().Hex() {
		t.Fatalf("import answered %s", body)
	}
	status, body = c.do("GET", "/v1/orders?country=DE&maker="+foreign.Maker.Hex(), "")
	if status != 200 || !strings.Contains(string(body), foreign.ID().Hex()) {
		t.Fatalf("book: %d %s", status, body)
	}
	// Not the node's own.
	if status, body := c.do("GET", "/v1/offers", ""); status != 200 || strings.Contains(string(body), foreign.ID().Hex()) {
		t.Fatalf("own offers: %d %s", status, body)
	}

	tampered := apitest.Signed(t, apitest.Offer())
	tampered.IPs++ // the signature no longer covers it
	otherSigner := apitest.Signed(t, apitest.Offer())
	otherSigner.Maker = b.Maker()
	badSig := apitest.Signed(t, apitest.Offer())
	badSig.Signature[64] = 9
	wrongChain := apitest.Offer()
	wrongChain.ChainID = 1
	wrongChain = apitest.Signed(t, wrongChain)
	expired := apitest.Offer()
	expired.Created, expired.Expires = expired.Created-7200, expired.Created-3600
	expired = apitest.Signed(t, expired)
	future := apitest.Offer()
	future.Created += 3600
	future.Expires += 3600
	future = apitest.Signed(t, future)
	request := apitest.Signed(t, apitest.Request())
	poor := apitest.Signed(t, apitest.Request())
	withBadID := strings.Replace(mustJSON(t, apitest.Signed(t, apitest.Offer())), `"id":"0x`, `"id":"0x00`, 1)
	withBadID = withBadID[:strings.Index(withBadID, `"id":"`)+6+66] + withBadID[strings.Index(withBadID, `"id":"`)+6+68:]

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"duplicate", mustJSON(t, foreign), 409, "duplicate"},
		{"tampered", mustJSON(t, tampered), 422, "wrong_signer"},
		{"signer is not maker", mustJSON(t, otherSigner), 422, "wrong_signer"},
		{"bad recovery id", mustJSON(t, badSig), 422, "bad_signature"},
		{"wrong chain", mustJSON(t, wrongChain), 422, "wrong_domain"},
		{"expired", mustJSON(t, expired), 422, "expired"},
		{"future", mustJSON(t, future), 422, "future"},
		{"id not digest", withBadID, 400, "malformed"},
		{"request ok", mustJSON(t, request), 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do("POST", "/v1/orders/import", tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.code != "" {
				if e := decodeError(t, body); e.Code != tc.code {
					t.Fatalf("code %q, want %q (%s)", e.Code, tc.code, e.Error)
				}
			}
		})
	}

	// With an escrow view, a request its maker cannot pay for is 402.
	b.Balances = zeroBalances{}
	status, body = c.do("POST", "/v1/orders/import", mustJSON(t, poor))
	if status != 402 || decodeError(t, body).Code != "insufficient_balance" {
		t.Fatalf("poor: %d %s", status, body)
	}
	status, body = c.do("POST", "/v1/requests", mustJSON(t, apitest.RequestParams()))
	if status != 402 {
		t.Fatalf("poor create: %d %s", status, body)
	}
}

type zeroBalances struct{}

func (zeroBalances) Free(common.Address) (*big.Int, bool) { return new(big.Int), true }

func TestCancel(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	_, body := c.do("POST", "/v1/offers", mustJSON(t, apitest.OfferParams()))
	o, _ := decodeOrder(t, body)
	status, body := c.do("DELETE", "/v1/orders/"+o.ID().Hex(), "")
	if status != 200 {
		t.Fatalf("cancel: %d %s", status, body)
	}
	var cancel orderbook.Cancel
	if err := json.Unmarshal(body, &cancel); err != nil {
		t.Fatal(err)
	}
	if err := orderbook.ValidateCancel(&cancel, time.Now(), b.Params); err != nil || cancel.OrderID != o.ID() || cancel.Maker != b.Maker() {
		t.Fatalf("cancel %s: %v", body, err)
	}
	if status, _ := c.do("GET", "/v1/orders/"+o.ID().Hex(), ""); status != 404 {
		t.Fatalf("after cancel: %d", status)
	}
	// The order cannot come back.
	status, body = c.do("POST", "/v1/orders/import", mustJSON(t, o))
	if status != 409 || decodeError(t, body).Code != "cancelled" {
		t.Fatalf("re-import: %d %s", status, body)
	}
	// Nobody cancels another maker's order.
	foreign := apitest.Signed(t, apitest.Offer())
	if status, _ := c.do("POST", "/v1/orders/import", mustJSON(t, foreign)); status != 201 {
		t.Fatal(status)
	}
	status, body = c.do("DELETE", "/v1/orders/"+foreign.ID().Hex(), "")
	if status != 422 || decodeError(t, body).Code != "wrong_signer" {
		t.Fatalf("cancel foreign: %d %s", status, body)
	}
}

// sseReader reads events from an open stream.
type sseReader struct {
	sc *bufio.Scanner
	id string // the id: line of the last event read
}

func (r *sseReader) next(t *testing.T) (typ string, ev sdk.Event) {
	t.Helper()
	r.id = ""
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			r.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		case line == "" && typ != "":
			return typ, ev
		}
	}
	t.Fatalf("stream ended: %v", r.sc.Err())
	return
}

func openEvents(t *testing.T, c *client, lastEventID ...string) (*sseReader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", c.ts.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	for _, id := range lastEventID {
		req.Header.Set("Last-Event-ID", id)
	}
	resp, err := c.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseReader{sc: bufio.NewScanner(resp.Body)}, resp
}

func TestEvents(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b, api.WithKeepAlive(20*time.Millisecond))
	sse, _ := openEvents(t, c)
	// The subscription exists once the headers are in.
	if n := b.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers", n)
	}
	_, body := c.do("POST", "/v1/offers", mustJSON(t, apitest.OfferParams()))
	o, _ := decodeOrder(t, body)
	typ, ev := sse.next(t)
	if typ != "order.added" || ev.Type != "order.added" || ev.Time.IsZero() {
		t.Fatalf("event %q %+v", typ, ev)
	}
	var oe sdk.OrderEvent
	if err := json.Unmarshal(ev.Data, &oe); err != nil || oe.Order == nil || oe.Order.ID() != o.ID() {
		t.Fatalf("order event %s: %v", ev.Data, err)
	}
	c.do("DELETE", "/v1/orders/"+o.ID().Hex(), "")
	typ, ev = sse.next(t)
	if err := json.Unmarshal(ev.Data, &oe); typ != "order.removed" || err != nil || oe.Reason != "cancelled" {
		t.Fatalf("event %q %s", typ, ev.Data)
	}
	// Keep-alive comments flow while idle.
	deadline := time.Now().Add(5 * time.Second)
	for sse.sc.Scan() && sse.sc.Text() != ": keep-alive" {
		if time.Now().After(deadline) {
			t.Fatal("no keep-alive")
		}
	}
}

// TestEventsResume: each event carries its id on an id: line; a stream
// opened with Last-Event-ID gets the events after it first, then live
// ones; an id the backend does not know gets stream.reset; a huge one is
// refused.
func TestEventsResume(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	sse, _ := openEvents(t, c)
	for i := 0; i < 5; i++ {
		b.Publish("order.added", map[string]int{"i": i})
	}
	var ids []string
	for i := 0; i < 5; i++ {
		_, ev := sse.next(t)
		if sse.id == "" || sse.id != ev.ID {
			t.Fatalf("event %d: id line %q, event id %q", i, sse.id, ev.ID)
		}
		ids = append(ids, sse.id)
	}
	resumed, _ := openEvents(t, c, ids[1])
	b.Publish("order.added", map[string]int{"i": 5})
	for i := 2; i < 6; i++ {
		_, ev := resumed.next(t)
		var got struct{ I int }
		if json.Unmarshal(ev.Data, &got) != nil || got.I != i {
			t.Fatalf("resumed event %d: %s", i, ev.Data)
		}
	}
	reset, _ := openEvents(t, c, "nosuch")
	if typ, _ := reset.next(t); typ != "stream.reset" {
		t.Fatalf("unknown id: first event %q", typ)
	}
	if status, body := c.do("GET", "/v1/events", "", "Last-Event-ID", strings.Repeat("x", 200)); status != 400 {
		t.Fatalf("huge Last-Event-ID: %d %s", status, body)
	}
}

func TestEventsEndWhenSubscriptionCloses(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	sse, _ := openEvents(t, c)
	for i := 0; i < 200; i++ { // overflow the subscriber's buffer before it is read
		b.Publish("order.added", map[string]int{"i": i})
	}
	for {
		typ, _ := sse.next(t)
		if typ == "error" {
			break
		}
	}
	if sse.sc.Scan() {
		t.Fatalf("stream goes on after the error event: %q", sse.sc.Text())
	}
}

func TestOpenAPI(t *testing.T) {
	b := apitest.NewBackend(t)
	srv := api.New(b, "tok", api.WithMetrics(prometheus.NewRegistry()))
	c := newClient(t, b)
	status, body := c.do("GET", "/v1/openapi.json", "")
	if status != 200 {
		t.Fatal(status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	routes := srv.Routes()
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt, " ")
		raw, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("route %s is not in openapi.json", rt)
			continue
		}
		var op map[string]any
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s: %v", rt, err)
		}
		if _, ok := op["responses"]; !ok {
			t.Errorf("%s has no responses", rt)
		}
	}
	// And nothing in the document that is not served.
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt] = true
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			if !served[strings.ToUpper(m)+" "+path] {
				t.Errorf("openapi.json describes %s %s, which is not served", m, path)
			}
		}
	}
	// Every $ref resolves.
	var whole map[string]any
	_ = json.Unmarshal(body, &whole)
	for _, ref := range refs(whole) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var cur any = whole
		for _, p := range parts {
			m, _ := cur.(map[string]any)
			cur = m[p]
		}
		if cur == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	b := apitest.NewBackend(t)
	reg := prometheus.NewRegistry()
	ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: "ipsx_test_total", Help: "test"})
	reg.MustRegister(ctr)
	ctr.Add(3)
	c := newClient(t, b, api.WithMetrics(reg))
	status, body := c.do("GET", "/metrics", "", "Authorization", "")
	if status != 200 || !strings.Contains(string(body), "ipsx_test_total 3") {
		t.Fatalf("metrics: %d %s", status, body)
	}
	c2 := newClient(t, b, api.WithMetrics(reg), api.WithMetricsAuth())
	if status, _ := c2.do("GET", "/metrics", "", "Authorization", ""); status != 401 {
		t.Fatalf("metrics with auth, no token: %d", status)
	}
	if status, _ := c2.do("GET", "/metrics", ""); status != 200 {
		t.Fatalf("metrics with auth and token: %d", status)
	}
}

type panicky struct{ *apitest.Backend }

func (panicky) Status(context.Context) sdk.Status { panic("boom") }

type failing struct{ *apitest.Backend }

func (failing) Order(context.Context, common.Hash) (*orderbook.Order, error) {
	return nil, io.ErrClosedPipe // not an orderbook error: a 500
}

func TestInternalErrors(t *testing.T) {
	b := apitest.NewBackend(t)
	ts := httptest.NewServer(api.New(panicky{b}, "tok").Handler())
	t.Cleanup(ts.Close)
	c := &client{t: t, ts: ts, token: "tok"}
	status, body := c.do("GET", "/v1/status", "")
	if status != 500 || decodeError(t, body).Code != "internal" {
		t.Fatalf("panic: %d %s", status, body)
	}
	ts2 := httptest.NewServer(api.New(failing{b}, "tok").Handler())
	t.Cleanup(ts2.Close)
	c2 := &client{t: t, ts: ts2, token: "tok"}
	status, body = c2.do("GET", "/v1/orders/"+common.Hash{1}.Hex(), "")
	e := decodeError(t, body)
	if status != 500 || e.Code != "internal" || strings.Contains(e.Error, "closed pipe") {
		t.Fatalf("internal: %d %s", status, body)
	}
}

// TestServe runs the real server on a loopback listener and checks that
// cancelling its context ends it, open event streams included.
func TestServe(t *testing.T) {
	b := apitest.NewBackend(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(b, "tok")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+ln.Addr().String()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("stream ended with %v", err)
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

// TestStatusOf: every orderbook sentinel, wrapped as the backend would,
// maps to its own code and a 4xx.
func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{orderbook.ErrMalformed, 400, "malformed"},
		{orderbook.ErrOutOfRange, 400, "out_of_range"},
		{orderbook.ErrUnknownCountry, 400, "unknown_country"},
		{orderbook.ErrTooLarge, 413, "too_large"},
		{orderbook.ErrBadSignature, 422, "bad_signature"},
		{orderbook.ErrWrongSigner, 422, "wrong_signer"},
		{orderbook.ErrWrongDomain, 422, "wrong_domain"},
		{orderbook.ErrBadDigest, 422, "bad_digest"},
		{orderbook.ErrExpired, 422, "expired"},
		{orderbook.ErrFuture, 422, "future"},
		{orderbook.ErrStale, 422, "stale"},
		{orderbook.ErrDuplicate, 409, "duplicate"},
		{orderbook.ErrCancelled, 409, "cancelled"},
		{orderbook.ErrSuperseded, 409, "superseded"},
		{orderbook.ErrNotFound, 404, "not_found"},
		{orderbook.ErrInsufficient, 402, "insufficient_balance"},
		{context.DeadlineExceeded, 503, "unavailable"},
		{io.EOF, 500, "internal"},
	} {
		status, code := api.StatusOf(fmt.Errorf("create offer: %w: detail", tc.err))
		if status != tc.status || code != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}

// TestBadOrders runs the shared table of bad orders (the same the gossip
// validator and order sync refuse) through POST /v1/orders/import: each
// gets the 4xx of its error, with a code and a message.
func TestBadOrders(t *testing.T) {
	b := apitest.NewBackend(t)
	other, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	fx := orderbooktest.BadOrders(apitest.Domain, "DE", b.Key, other, time.Now())
	for _, o := range fx.Seed {
		if _, err := b.Book.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range fx.Cancels {
		if _, err := b.Book.Cancel(c); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, b)
	n := 0
	for _, tc := range fx.Cases {
		if tc.IsCancel {
			continue
		}
		n++
		t.Run(tc.Name, func(t *testing.T) {
			status, body := c.do("POST", "/v1/orders/import", string(tc.Msg))
			wantStatus, wantCode := api.StatusOf(tc.Err)
			if status != wantStatus || status < 400 || status >= 500 {
				t.Fatalf("status %d, want %d (%v): %s", status, wantStatus, tc.Err, body)
			}
			// The code names tc.Err or a refinement of it (a flipped
			// signature byte usually recovers to another signer:
			// wrong_signer, a kind of bad_signature).
			if e := decodeError(t, body); !errors.Is(&sdk.APIError{Code: e.Code}, tc.Err) {
				t.Fatalf("code %q, want %q: %s", e.Code, wantCode, e.Error)
			}
		})
	}
	if n < 15 {
		t.Fatalf("only %d bad orders", n)
	}
}

// TestEventStreamOutlivesTimeouts: a stream stays open past the server's
// read and write timeouts, which bound ordinary requests.
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	b := apitest.NewBackend(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(b, "tok", api.WithTimeouts(100*time.Millisecond, 100*time.Millisecond), api.WithKeepAlive(20*time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+ln.Addr().String()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond { // five times both timeouts
		if !sc.Scan() {
			t.Fatalf("stream ended after %s: %v", time.Since(start), sc.Err())
		}
	}
	b.Publish("order.added", map[string]int{"late": 1})
	sse := &sseReader{sc: sc}
	if typ, _ := sse.next(t); typ != "order.added" {
		t.Fatalf("event %q", typ)
	}
}
