package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/sdk"
)

func TestDeals(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)

	// No deals: an empty list, not null.
	status, body := c.do("GET", "/v1/deals", "")
	if status != 200 || strings.TrimSpace(string(body)) != `{"deals":[]}` {
		t.Fatalf("empty list: %d %s", status, body)
	}

	first := b.ActiveDeal(common.Hash{1})
	second := b.ActiveDeal(common.Hash{2})
	second.Status = "settled"
	b.PutDeal(first)
	b.PutDeal(second)

	status, body = c.do("GET", "/v1/deals", "")
	var list struct {
		Deals []sdk.Deal `json:"deals"`
	}
	if err := json.Unmarshal(body, &list); status != 200 || err != nil {
		t.Fatalf("list: %d %s: %v", status, body, err)
	}
	if len(list.Deals) != 2 || list.Deals[0].ID != second.ID || list.Deals[1].ID != first.ID {
		t.Fatalf("list is not newest first: %s", body)
	}
	if list.Deals[1].History != nil || list.Deals[1].Voucher == nil || list.Deals[1].Status != "active" {
		t.Fatalf("listed deal: %+v", list.Deals[1])
	}
	if status, body := c.do("GET", "/v1/deals?status=active", ""); status != 400 || decodeError(t, body).Code != "malformed" {
		t.Fatalf("unknown query parameter: %d %s", status, body)
	}

	status, body = c.do("GET", "/v1/deals/"+first.ID, "")
	var got sdk.Deal
	if err := json.Unmarshal(body, &got); status != 200 || err != nil {
		t.Fatalf("show: %d %s: %v", status, body, err)
	}
	if got.ID != first.ID || len(got.History) != 3 || got.Voucher.Amount != "2500" || !got.Start.Equal(first.Start) {
		t.Fatalf("show: %s", body)
	}
	// The wire form uses the contract's lower-case words and camelCase keys.
	for _, want := range []string{`"status":"active"`, `"providerStatus":"active"`, `"pricePerHour":"1000"`, `"connLogHash"`, `"history":[`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("show lacks %s: %s", want, body)
		}
	}
}

func TestDealErrors(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	active := b.ActiveDeal(common.Hash{1})
	b.PutDeal(active)
	over := b.ActiveDeal(common.Hash{2})
	over.Status = "refunded"
	b.PutDeal(over)
	unknown := common.Hash{3}.Hex()

	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, says               string
	}{
		{"show unknown", "GET", "/v1/deals/" + unknown, "", nil, 404, "not_found", "unknown deal"},
		{"show short id", "GET", "/v1/deals/0x12", "", nil, 400, "malformed", "not a deal id"},
		{"show id without 0x", "GET", "/v1/deals/" + strings.Repeat("ab", 33), "", nil, 400, "malformed", "path parameter id"},
		{"show id not hex", "GET", "/v1/deals/0x" + strings.Repeat("zz", 32), "", nil, 400, "malformed", "not a deal id"},
		{"close unknown", "POST", "/v1/deals/" + unknown + "/close", "", nil, 404, "not_found", "unknown deal"},
		{"close bad id", "POST", "/v1/deals/nope/close", "", nil, 400, "malformed", "not a deal id"},
		{"close over", "POST", "/v1/deals/" + over.ID + "/close", "", nil, 409, "deal_over", "refunded"},
		{"close with a field", "POST", "/v1/deals/" + active.ID + "/close", `{"force":true}`, nil, 400, "malformed", "force"},
		{"close with an array", "POST", "/v1/deals/" + active.ID + "/close", `[]`, nil, 400, "malformed", "empty JSON object"},
		{"close with trailing data", "POST", "/v1/deals/" + active.ID + "/close", `{} {}`, nil, 400, "malformed", "trailing"},
		{"close with bad JSON", "POST", "/v1/deals/" + active.ID + "/close", `{`, nil, 400, "malformed", "JSON"},
		{"close as text", "POST", "/v1/deals/" + active.ID + "/close", `{}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"close too large", "POST", "/v1/deals/" + active.ID + "/close", `{"x":"` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, "too_large", "larger"},
		{"delete a deal", "DELETE", "/v1/deals/" + active.ID, "", nil, 405, "method_not_allowed", "GET"},
		{"get close", "GET", "/v1/deals/" + active.ID + "/close", "", nil, 405, "method_not_allowed", "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do(tc.method, tc.path, tc.body, tc.hdr...)
			e := decodeError(t, body)
			if status != tc.status || e.Code != tc.code || !strings.Contains(e.Error, tc.says) {
				t.Fatalf("%s %s: %d %s, want %d %s mentioning %q", tc.method, tc.path, status, body, tc.status, tc.code, tc.says)
			}
		})
	}
	// None of the refused closes touched the active deal.
	if d, _ := b.Deal(t.Context(), common.HexToHash(active.ID)); d.Status != "active" {
		t.Fatalf("refused closes changed the deal: %+v", d)
	}
}

func TestCloseDeal(t *testing.T) {
	for _, body := range []string{"", "{}", " { }\n"} {
		t.Run("body "+strings.TrimSpace(body), func(t *testing.T) {
			b := apitest.NewBackend(t)
			c := newClient(t, b)
			d := b.ActiveDeal(common.Hash{7})
			b.PutDeal(d)
			sse, _ := openEvents(t, c)

			status, resp := c.do("POST", "/v1/deals/"+d.ID+"/close", body)
			var got sdk.Deal
			if err := json.Unmarshal(resp, &got); status != 200 || err != nil {
				t.Fatalf("close: %d %s: %v", status, resp, err)
			}
			last := got.History[len(got.History)-1]
			if got.ID != d.ID || got.Status != "completed" || last.From != "active" || last.To != "completed" {
				t.Fatalf("closed deal: %s", resp)
			}
			typ, ev := sse.next(t)
			var evDeal sdk.Deal
			if err := json.Unmarshal(ev.Data, &evDeal); typ != "deal.updated" || err != nil || evDeal.ID != d.ID || evDeal.Status != "completed" {
				t.Fatalf("event %q %s: %v", typ, ev.Data, err)
			}
			// Closing again is not possible now.
			status, resp = c.do("POST", "/v1/deals/"+d.ID+"/close", body)
			if e := decodeError(t, resp); status != 409 || e.Code != "not_now" {
				t.Fatalf("second close: %d %s", status, resp)
			}
		})
	}
}

// TestDealStatusOf: the agreement sentinels, wrapped as the node wraps
// them, get their own codes.
func TestDealStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{agreement.ErrUnknownDeal, 404, "not_found"},
		{agreement.ErrDealOver, 409, "deal_over"},
		{agreement.ErrUnexpected, 409, "not_now"},
	} {
		status, code := api.StatusOf(fmt.Errorf("close deal 0x01: %w: detail", tc.err))
		if status != tc.status || code != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}
