package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/sdk"
)

// vpnBackend is the fake backend with a VPN that comes up once.
type vpnBackend struct {
	*apitest.Backend
	mu   sync.Mutex
	up   bool
	last sdk.VPNParams
}

func (b *vpnBackend) VPNStatus(context.Context) sdk.VPNStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := sdk.VPNStatus{State: "down", Flows: []sdk.VPNFlow{}}
	if b.up {
		st.State, st.Routes = "up", b.last.Routes
	}
	return st
}

func (b *vpnBackend) VPNUp(ctx context.Context, p sdk.VPNParams) (sdk.VPNStatus, error) {
	b.mu.Lock()
	switch {
	case b.up:
		b.mu.Unlock()
		return sdk.VPNStatus{}, api.ErrVPNBusy
	case p.Device == "no-tun":
		b.mu.Unlock()
		return sdk.VPNStatus{}, fmt.Errorf("%w: create TUN: operation not permitted", api.ErrVPNFailed)
	case len(p.Prefixes) == 0 && !p.DefaultRoute:
		b.mu.Unlock()
		return sdk.VPNStatus{}, fmt.Errorf("%w: nothing to route", api.ErrVPNParams)
	}
	b.up, b.last = true, p
	b.mu.Unlock()
	return b.VPNStatus(ctx), nil
}

func (b *vpnBackend) VPNDown(ctx context.Context) (sdk.VPNStatus, error) {
	b.mu.Lock()
	b.up = false
	b.mu.Unlock()
	return b.VPNStatus(ctx), nil
}

func TestVPNRoutes(t *testing.T) {
	// A backend without a VPN answers 501.
	plain := newClient(t, apitest.NewBackend(t))
	if status, body := plain.do("GET", "/v1/vpn", ""); status != 501 || decodeError(t, body).Code != "not_implemented" {
		t.Fatalf("no VPN: %d %s", status, body)
	}

	b := &vpnBackend{Backend: apitest.NewBackend(t)}
	const token = "test-token-0123456789abcdef0123456789abcdef"
	ts := httptest.NewServer(api.New(b, token).Handler())
	t.Cleanup(ts.Close)
	c := &client{t: t, ts: ts, token: token}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, state              string
	}{
		{"status down", "GET", "/v1/vpn", "", 200, "", "down"},
		{"nothing to route", "POST", "/v1/vpn/up", "{}", 400, "malformed", ""},
		{"unknown field", "POST", "/v1/vpn/up", `{"everything":true}`, 400, "malformed", ""},
		{"wrong type", "POST", "/v1/vpn/up", `{"routes":"country-DE"}`, 400, "malformed", ""},
		{"no TUN", "POST", "/v1/vpn/up", `{"defaultRoute":true,"device":"no-tun"}`, 502, "vpn_failed", ""},
		{"up", "POST", "/v1/vpn/up", `{"routes":["country-DE"],"defaultRoute":true,"dns":true,"killSwitch":true}`, 200, "", "up"},
		{"up twice", "POST", "/v1/vpn/up", `{"defaultRoute":true}`, 409, "vpn_busy", ""},
		{"status up", "GET", "/v1/vpn", "", 200, "", "up"},
		{"down with a body", "POST", "/v1/vpn/down", `{"x":1}`, 400, "malformed", ""},
		{"down", "POST", "/v1/vpn/down", "", 200, "", "down"},
		{"query", "GET", "/v1/vpn?all=1", "", 400, "malformed", ""},
	} {
		status, body := c.do(tc.method, tc.path, tc.body)
		if status != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, status, tc.status, body)
		}
		if tc.code != "" {
			if e := decodeError(t, body); e.Code != tc.code || e.Error == "" {
				t.Fatalf("%s: error %+v, want code %s", tc.name, e, tc.code)
			}
			continue
		}
		var st sdk.VPNStatus
		if err := json.Unmarshal(body, &st); err != nil || st.State != tc.state {
			t.Fatalf("%s: %s %v, want state %s", tc.name, body, err, tc.state)
		}
	}
	if !b.last.DNS || !b.last.KillSwitch || len(b.last.Routes) != 1 {
		t.Fatalf("params reached the backend as %+v", b.last)
	}
}
