package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/sdk"
)

// TestHealth: /healthz needs no token, answers 200 when ready and 503
// when not, with the checks, and nothing more.
func TestHealth(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	status, body := c.do("GET", "/healthz", "", "Authorization", "")
	var h sdk.Health
	if err := json.Unmarshal(body, &h); status != 200 || err != nil || h.Status != "ok" || !h.Live || !h.Ready || len(h.Checks) != 3 {
		t.Fatalf("ready: %d %s", status, body)
	}
	b.SetHealth(sdk.Health{Live: true, Checks: []sdk.HealthCheck{{Name: "shards", Detail: "1 of 1 not synced: [DE]"}}})
	status, body = c.do("GET", "/healthz", "", "Authorization", "")
	if err := json.Unmarshal(body, &h); status != 503 || err != nil || h.Status != "unavailable" || h.Ready || !h.Live {
		t.Fatalf("not ready: %d %s", status, body)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	for k := range raw {
		if k != "status" && k != "live" && k != "ready" && k != "checks" {
			t.Errorf("/healthz tells %q", k)
		}
	}
	if status, _ := c.do("GET", "/healthz?verbose=1", ""); status != 400 {
		t.Errorf("unknown parameter: %d", status)
	}
	if status, _ := c.do("POST", "/healthz", ""); status != 405 {
		t.Errorf("POST /healthz: %d", status)
	}
}

// TestLogLevel: read and change the level; a bad level or body is a 400
// naming it; the token is needed.
func TestLogLevel(t *testing.T) {
	b := apitest.NewBackend(t)
	c := newClient(t, b)
	if status, body := c.do("GET", "/v1/log/level", ""); status != 200 || !strings.Contains(string(body), `"info"`) {
		t.Fatalf("get: %d %s", status, body)
	}
	if status, body := c.do("PUT", "/v1/log/level", `{"level":"DEBUG"}`); status != 200 || !strings.Contains(string(body), `"debug"`) {
		t.Fatalf("put: %d %s", status, body)
	}
	if status, body := c.do("GET", "/v1/log/level", ""); status != 200 || !strings.Contains(string(body), `"debug"`) {
		t.Fatalf("get after put: %d %s", status, body)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"level":"loud"}`, `level "loud"`},
		{`{"lvl":"debug"}`, `unknown field "lvl"`},
		{``, "body is empty"},
	} {
		status, body := c.do("PUT", "/v1/log/level", bad.body)
		if status != 400 || !strings.Contains(decodeError(t, body).Error, bad.want) {
			t.Errorf("%q: %d %s, want 400 naming %s", bad.body, status, body, bad.want)
		}
	}
	if status, _ := c.do("PUT", "/v1/log/level", `{"level":"warn"}`, "Authorization", ""); status != 401 {
		t.Errorf("without a token: %d", status)
	}
}
