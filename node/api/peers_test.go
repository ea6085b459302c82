package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/sdk"
)

func TestPeersAndPing(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	if status, body := c.do("GET", "/v1/peers", ""); status != 200 || strings.TrimSpace(string(body)) != `{"peers":[]}` {
		t.Fatalf("no peers: %d %s", status, body)
	}
	relayed := sdk.Conn{Addr: "/ip4/1.2.3.4/tcp/4001/p2p/QmRelay/p2p-circuit", Direction: "outbound", Relayed: true}
	direct := sdk.Conn{Addr: "/ip4/5.6.7.8/udp/4001/quic-v1", Direction: "inbound"}
	b.SetPeers([]sdk.Peer{{PeerID: "onlyrelay", Conns: []sdk.Conn{relayed}}, {PeerID: "both", Conns: []sdk.Conn{relayed, direct}}})

	status, body := c.do("GET", "/v1/peers", "")
	var list struct {
		Peers []sdk.Peer `json:"peers"`
	}
	if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list.Peers) != 2 || !list.Peers[0].Conns[0].Relayed {
		t.Fatalf("peers: %d %s %v", status, body, err)
	}

	for _, tc := range []struct {
		name, path, body string
		status           int
		code, addr       string
	}{
		{"no body takes the relay", "/v1/peers/onlyrelay/ping", "", 200, "", relayed.Addr},
		{"empty object", "/v1/peers/onlyrelay/ping", "{}", 200, "", relayed.Addr},
		{"direct skips the relay", "/v1/peers/both/ping", `{"direct":true}`, 200, "", direct.Addr},
		{"direct and only a relay", "/v1/peers/onlyrelay/ping", `{"direct":true}`, 502, "unreachable", ""},
		{"unknown peer", "/v1/peers/nobody/ping", "", 502, "unreachable", ""},
		{"not a peer", "/v1/peers/self/ping", "", 400, "bad_peer", ""},
		{"unknown field", "/v1/peers/both/ping", `{"fast":true}`, 400, "malformed", ""},
		{"not an object", "/v1/peers/both/ping", `[true]`, 400, "malformed", ""},
		{"wrong type", "/v1/peers/both/ping", `{"direct":"yes"}`, 400, "malformed", ""},
		{"trailing data", "/v1/peers/both/ping", `{} {}`, 400, "malformed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do("POST", tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.code != "" {
				if e := decodeError(t, body); e.Code != tc.code || e.Error == "" {
					t.Fatalf("error %+v, want code %s", e, tc.code)
				}
				return
			}
			var res sdk.PingResult
			if err := json.Unmarshal(body, &res); err != nil || res.Conn.Addr != tc.addr {
				t.Fatalf("ping answer %s: %v, want over %s", body, err, tc.addr)
			}
		})
	}
}

func TestBookShowsReputation(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	if status, body := c.do("POST", "/v1/offers", mustJSON(t, apitest.OfferParams())); status != 201 {
		t.Fatalf("offer: %d %s", status, body)
	}
	// No record yet: no reputation field at all.
	if status, body := c.do("GET", "/v1/orders", ""); status != 200 || strings.Contains(string(body), "reputation") {
		t.Fatalf("book without records: %d %s", status, body)
	}
	rec := sdk.Reputation{Completed: 3, Failed: 1, GeoChecks: 3, GeoMismatches: 1, Score: -3}
	b.SetReputation(b.Maker(), rec)
	for path, wantRep := range map[string]bool{"/v1/orders": true, "/v1/orders?kind=request": false, "/v1/offers": false} {
		status, body := c.do("GET", path, "")
		var list struct {
			Reputation map[string]sdk.Reputation `json:"reputation"`
		}
		if status != 200 || json.Unmarshal(body, &list) != nil {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		if got, ok := list.Reputation[b.Maker().Hex()]; ok != wantRep || (ok && got != rec) {
			t.Fatalf("GET %s: reputation %v, want it shown: %v", path, list.Reputation, wantRep)
		}
	}
}
