package api_test

import (
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// TestRequestDetail: GET /v1/requests/{id} lists the offers of the book
// that can fill one of the node's requests first, then the others with
// the first reason each does not, and refuses ids that are not the
// node's requests. Prices given in tok units are accepted.
func TestRequestDetail(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	status, body := c.do("POST", "/v1/requests", mustJSON(t, sdk.RequestParams{
		Country: "DE", IPType: "any", IPs: 1, Duration: 3600, MaxPricePerHour: "0.000000000000002tok", MaxPricePerGB: "0",
	}))
	if status != http.StatusCreated {
		t.Fatalf("create request: %d %s", status, body)
	}
	req, err := orderbook.DecodeOrder(body)
	if err != nil {
		t.Fatal(err)
	}
	free := apitest.Offer()
	free.PricePerGB = big.NewInt(0)
	paid := apitest.Offer() // 50 per GB, as the README's offer asked
	dear := apitest.Offer()
	dear.PricePerHour, dear.PricePerGB = big.NewInt(1_000_000), big.NewInt(0)
	for _, o := range []*orderbook.Order{paid, dear, free} {
		if err := b.Import(t.Context(), apitest.Signed(t, o)); err != nil {
			t.Fatal(err)
		}
	}
	b.SetReputation(dear.Maker, sdk.Reputation{Completed: 3, Score: 3})

	status, body = c.do("GET", "/v1/requests/"+req.ID().Hex(), "")
	if status != http.StatusOK {
		t.Fatalf("detail: %d %s", status, body)
	}
	var d sdk.RequestDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Request.ID() != req.ID() || !d.Matched || d.Offers != 3 || len(d.Candidates) != 3 {
		t.Fatalf("detail %+v", d)
	}
	want := []struct {
		id     common.Hash
		reason string
		detail string
	}{
		{free.ID(), "", ""},
		{paid.ID(), "price_per_gb", "asks 50 per GB, the request allows at most 0"},
		{dear.ID(), "price_per_hour", "asks 1000000 per IP-hour, the request allows at most 2000"},
	}
	for i, w := range want {
		got := d.Candidates[i]
		if got.Offer.ID() != w.id || got.Reason != w.reason || got.Detail != w.detail {
			t.Errorf("candidate %d: %s %q %q, want %s %q %q", i, got.Offer.ID().Hex()[:10], got.Reason, got.Detail, w.id.Hex()[:10], w.reason, w.detail)
		}
	}
	if d.Candidates[2].Score != 3 {
		t.Errorf("score of the dear offer's maker: %d", d.Candidates[2].Score)
	}

	for path, code := range map[string]int{
		"/v1/requests/" + free.ID().Hex():      http.StatusNotFound, // an offer, not the node's request
		"/v1/requests/" + common.Hash{1}.Hex(): http.StatusNotFound,
		"/v1/requests/0x12":                    http.StatusBadRequest,
	} {
		if status, body := c.do("GET", path, ""); status != code {
			t.Errorf("GET %s: %d %s, want %d", path, status, body, code)
		}
	}
}

// TestSendValidation: POST /v1/wallet/send checks its body before the
// backend is asked; the test backend has no chain.
func TestSendValidation(t *testing.T) {
	c := newClient(t, apitest.NewBackend(t))
	to := common.HexToAddress("0x1234").Hex()
	for body, code := range map[string]int{
		`{"to":"` + to + `","amount":"1tok"}`:                http.StatusServiceUnavailable,
		`{"to":"` + to + `","amount":"5","asset":"eth"}`:     http.StatusServiceUnavailable,
		`{"to":"nobody","amount":"1"}`:                       http.StatusBadRequest,
		`{"to":"` + to + `","amount":"0"}`:                   http.StatusBadRequest,
		`{"to":"` + to + `","amount":"1","asset":"bitcoin"}`: http.StatusBadRequest,
		`{"to":"` + to + `","amount":"1.5"}`:                 http.StatusBadRequest,
	} {
		status, resp := c.do("POST", "/v1/wallet/send", body)
		if status != code || (code == http.StatusServiceUnavailable && !strings.Contains(string(resp), "no_chain")) {
			t.Errorf("send %s: %d %s, want %d", body, status, resp, code)
		}
	}
}
