package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthCommand: ipsx health (the image's HEALTHCHECK) exits 0 on a
// 200 and fails, with the answer, on anything else or no answer.
func TestHealthCommand(t *testing.T) {
	code := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"status":"unavailable","checks":[{"name":"shards","ok":false}]}`))
	}))
	defer srv.Close()
	c := newCLI(t)
	api := strings.TrimPrefix(srv.URL, "http://")
	if _, _, err := c.run("health", "--api", api); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "shards") {
		t.Fatalf("health of an unready node: %v, want the 503 and its checks", err)
	}
	code = http.StatusOK
	if out := c.ok("health", "--api", api); out != "ok\n" {
		t.Fatalf("health: %q", out)
	}
	if _, _, err := c.run("health", "--url", srv.URL+"/other"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("health --url of a missing page: %v", err)
	}
	srv.Close()
	if _, _, err := c.run("health", "--api", api); err == nil {
		t.Fatal("health with no node: no error")
	}
}

// TestComposeNodeRefusesBadConfig: compose-node names a bad role, a
// provider's bad country, a missing faucet and a bad deposit before it
// does anything.
func TestComposeNodeRefusesBadConfig(t *testing.T) {
	c := newCLI(t)
	c.env["IPSX_PASSWORD"] = "pw"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--faucet", "http://x", "--role", "miner"}, `--role "miner": want bootstrap, provider or requester`},
		{[]string{"--faucet", "http://x", "--role", "provider", "--country", "Germany"}, `--country "Germany"`},
		{[]string{"--faucet", "http://x", "--role", "provider"}, `--country ""`},
		{[]string{"--role", "requester"}, "--faucet is required"},
		{[]string{"--faucet", "http://x", "--role", "requester", "--deposit", "lots"}, "--deposit"},
	} {
		_, _, err := c.run(append([]string{"compose-node", "--datadir", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("compose-node %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
