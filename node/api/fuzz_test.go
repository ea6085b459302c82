package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/node/api/apitest"
)

// FuzzAPI sends random bodies and paths to the handler: no input gets a 5xx
// or a panic, and every error is an sdk.Error.
func FuzzAPI(f *testing.F) {
	params, _ := json.Marshal(apitest.OfferParams())
	req, _ := json.Marshal(apitest.RequestParams())
	order, _ := json.Marshal(apitest.Signed(f, apitest.Offer()))
	for _, s := range [][]byte{params, req, order, []byte(`{}`), []byte(`null`), []byte(`{"ips":1e99}`), []byte(`{"country":"DE","ipType":"any"}`)} {
		for i := range 4 {
			f.Add(uint8(i), "", s)
		}
	}
	f.Add(uint8(4), "0x00", []byte(nil))
	f.Add(uint8(5), "country=DE&kind=offer", []byte(nil))

	b := apitest.NewBackend(f)
	h := api.New(b, "tok").Handler()
	routes := []struct{ method, path string }{
		{"POST", "/v1/offers"}, {"POST", "/v1/requests"}, {"POST", "/v1/orders/import"}, {"POST", "/v1/offers"},
		{"GET", "/v1/orders/"}, {"GET", "/v1/orders?"}, {"DELETE", "/v1/orders/"},
	}
	f.Fuzz(func(t *testing.T, route uint8, suffix string, body []byte) {
		rt := routes[int(route)%len(routes)]
		target := rt.path
		if rt.method != "POST" {
			target += suffix
		}
		r, err := http.NewRequest(rt.method, "http://x"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		r.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, target, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var e struct{ Error, Code string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" || e.Error == "" {
				t.Fatalf("%d body is not an error object: %s", w.Code, w.Body)
			}
		}
	})
}
