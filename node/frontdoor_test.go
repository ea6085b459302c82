package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"

	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/testnet"
	"github.com/ipsx/ipsx/tunnel"
	"github.com/ipsx/ipsx/tunnel/tunneltest"
)

// TestProxyCredentials: init makes a proxy password in the data dir (mode
// 0600); credentials are added with a cap, rotated and removed; bad
// names, caps and files are refused with the reason.
func TestProxyCredentials(t *testing.T) {
	dir := t.TempDir()
	if _, err := node.Init(dir, "pw", node.Config{Scrypt: node.ScryptLight}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "proxy-credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	pw, err := node.ProxyPassword(dir)
	if err != nil || len(pw) != 32 {
		t.Fatalf("proxy password %q %v", pw, err)
	}
	if again, _ := node.ProxyPassword(dir); again != pw {
		t.Fatal("the password changed on reading")
	}
	rot, err := node.RotateCredential(dir, node.DefaultCredential)
	if err != nil || rot.Password == pw || len(rot.Password) != 32 {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	fleet, err := node.AddCredential(dir, "fleet1", "5000")
	if err != nil || fleet.Cap != "5000" || fleet.Password == rot.Password {
		t.Fatalf("add: %+v %v", fleet, err)
	}
	for _, tt := range []struct{ name, limit, want string }{
		{"fleet1", "", "fleet1 exists"},
		{"bad name", "", `name "bad name"`},
		{"", "", `name ""`},
		{"x", "-1", `cap "-1" is not a token amount`},
		{"y", "1.5", `cap "1.5" is not a token amount`},
	} {
		if _, err := node.AddCredential(dir, tt.name, tt.limit); !errors.Is(err, node.ErrCredential) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("AddCredential(%q, %q): %v, want %q", tt.name, tt.limit, err, tt.want)
		}
	}
	if err := node.RemoveCredential(dir, node.DefaultCredential); err == nil {
		t.Error("the default credential was removed")
	}
	if err := node.RemoveCredential(dir, "nope"); !errors.Is(err, node.ErrCredential) {
		t.Errorf("remove unknown: %v", err)
	}
	if err := node.RemoveCredential(dir, "fleet1"); err != nil {
		t.Fatal(err)
	}
	cs, err := node.LoadCredentials(dir)
	if err != nil || len(cs) != 1 || cs[0].Name != node.DefaultCredential || cs[0].Password != rot.Password {
		t.Fatalf("credentials %+v %v", cs, err)
	}
	// A hand-edited file with a short password or a duplicate is refused.
	for _, bad := range []string{
		`{"credentials":[{"name":"default","password":"short"}]}`,
		`{"credentials":[{"name":"a","password":"0123456789abcdef"},{"name":"a","password":"0123456789abcdeg"}]}`,
		`{"credentials":[{"name":"a","password":"0123456789abcdef"},{"name":"b","password":"0123456789abcdef"}]}`,
		`{"credentials":`,
	} {
		if err := os.WriteFile(filepath.Join(dir, "proxy-credentials.json"), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := node.LoadCredentials(dir); !errors.Is(err, node.ErrCredential) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestListenersStayLoopback: a node refuses an API or proxy address other
// than loopback unless told, and a public proxy without credentials even
// then.
func TestListenersStayLoopback(t *testing.T) {
	for _, tt := range []struct {
		cfg  node.Config
		want string // "" = accepted
	}{
		{node.Config{}, ""},
		{node.Config{SOCKS: "localhost:1080", HTTP: "[::1]:8080", API: "127.0.0.5:7480"}, ""},
		{node.Config{SOCKS: "off", HTTP: "off", NoProxyAuth: true}, ""},
		{node.Config{SOCKS: "0.0.0.0:1080"}, "--socks 0.0.0.0:1080"},
		{node.Config{HTTP: ":8080"}, "--http-proxy :8080"},
		{node.Config{API: "192.0.2.1:7480"}, "--api 192.0.2.1:7480"},
		{node.Config{HTTP: "[::]:8080"}, "--http-proxy [::]:8080"},
		{node.Config{SOCKS: "example.com:1080"}, "--socks example.com:1080"},
		{node.Config{SOCKS: "0.0.0.0:1080", AllowPublicListen: true}, ""},
		{node.Config{API: "0.0.0.0:7480", AllowPublicListen: true, NoProxyAuth: true}, ""},
		{node.Config{HTTP: "0.0.0.0:8080", AllowPublicListen: true, NoProxyAuth: true}, "--no-proxy-auth"},
		{node.Config{TunnelIdleTimeout: "soon"}, "--tunnel-idle-timeout"},
	} {
		tt.cfg.Scrypt = node.ScryptLight
		_, err := node.Init(t.TempDir(), "pw", tt.cfg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
}

// countingWhoami is whoami that also counts its requests.
func countingWhoami(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, host)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &n
}

// curlOut runs curl and returns what it printed and its error.
func curlOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "curl", append([]string{"-sS", "--max-time", "20"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestFrontDoor drives a requester's proxies with real clients: deals in
// DE (Berlin, AS3320, residential) and US (Los Angeles, datacenter); curl
// over socks5h, HTTP forwarding and CONNECT with Bright Data, Oxylabs and
// IPSX usernames; Python; headless Chromium; credentials with a cap and a
// rotation; the bad-input matrix; the provider's connection-log check.
func TestFrontDoor(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (make tools installs it)")
	}
	_, tn := startDealNet(t, 3, "DE", "US")
	ctx := awaitCtx(t)
	de, us, reqM := tn.Members[0], tn.Members[1], tn.Members[2]
	req := reqM.Node
	deOffer := dealOffer("DE", 1, 1_000_000_000_000)
	deOffer.Region, deOffer.City, deOffer.ASN = "BE", "Berlin", 3320
	usOffer := dealOffer("US", 1, 1_000_000_000_000)
	usOffer.City, usOffer.IPType = "Los Angeles", "datacenter"
	if _, err := de.Node.CreateOffer(ctx, deOffer); err != nil {
		t.Fatal(err)
	}
	if _, err := us.Node.CreateOffer(ctx, usOffer); err != nil {
		t.Fatal(err)
	}
	awaitOffers(t, ctx, req, 2)
	deals := map[string]string{}
	for _, cc := range []string{"DE", "US"} {
		r, err := req.CreateRequest(ctx, dealRequest(cc, 300))
		if err != nil {
			t.Fatal(err)
		}
		deals[cc] = awaitDeal(t, ctx, req, r.ID().Hex(), "active").ID
	}
	target, hits := countingWhoami(t)
	url := "http://" + target + "/"
	pw := req.ProxyPassword()
	socks, hp := req.SOCKSAddr().String(), "http://"+req.HTTPProxyAddr().String()

	t.Run("curl", func(t *testing.T) {
		// Without credentials: 407 with a Basic challenge, never a route.
		before := hits.Load()
		out, err := curlOut(t, "--proxy", hp, "-o", "/dev/null", "-D", "-", url)
		if err != nil || !strings.Contains(out, " 407 ") || !strings.Contains(out, `Proxy-Authenticate: Basic realm="ipsx"`) {
			t.Errorf("HTTP without credentials: %q %v", out, err)
		}
		if out, err := curlOut(t, "-p", "--proxy", hp, url); err == nil || !strings.Contains(out, "407") {
			t.Errorf("CONNECT without credentials: %q %v", out, err)
		}
		if out, err := curlOut(t, "--socks5-hostname", socks, url); err == nil {
			t.Errorf("SOCKS5 without credentials: %q", out)
		}
		if out, err := curlOut(t, "--socks5-hostname", socks, "--proxy-user", "country-DE:wrong", url); err == nil {
			t.Errorf("SOCKS5 with a wrong password: %q", out)
		}
		if n := hits.Load(); n != before {
			t.Errorf("the target saw %d requests without credentials", n-before)
		}
		ways := []func(user string) []string{
			func(user string) []string {
				return []string{"--socks5-hostname", socks, "--proxy-user", user + ":" + pw}
			},
			func(user string) []string { return []string{"--proxy", hp, "--proxy-user", user + ":" + pw} },
			func(user string) []string { return []string{"-p", "--proxy", hp, "--proxy-user", user + ":" + pw} },
		}
		for i, tt := range []struct{ user, want string }{
			{"country-DE", de.IP},
			{"brd-customer-hl_1234-zone-residential1-country-us-session-s1", us.IP},
			{"customer-acme-cc-DE-city-berlin-sessid-x7-sesstime-10", de.IP},
			{"user-country-us-city-los_angeles", us.IP},
			{"type-datacenter", us.IP},
			{"asn-AS3320", de.IP},
			{"country-de-state-be-type-residential", de.IP},
			{"brd-customer-hl_1234-zone-dc-country-us-city-losangeles", us.IP},
			{"user-bob-cc-de-session-abc", de.IP},
		} {
			args := append(ways[i%len(ways)](tt.user), url)
			if out, err := curlOut(t, args...); err != nil || out != tt.want {
				t.Errorf("%s (%s): %q %v, want %s", tt.user, args[0], out, err, tt.want)
			}
		}
		// A route nothing serves: 403 naming it; a bad username: 407 naming the key.
		out, err = curlOut(t, "--proxy", hp, "--proxy-user", "country-DE-city-paris:"+pw, url)
		if err != nil || !strings.Contains(out, "no active deal and no offer in DE matches country-DE-city-paris") {
			t.Errorf("city nobody offers: %q %v", out, err)
		}
		out, err = curlOut(t, "--proxy", hp, "--proxy-user", "country-DE-zip-10115:"+pw, "-w", "%{http_code}", url)
		if err != nil || !strings.Contains(out, `unknown key "zip"`) || !strings.HasSuffix(out, "407") {
			t.Errorf("unknown key: %q %v", out, err)
		}
		if out, err := curlOut(t, "--socks5-hostname", socks, "--proxy-user", "country-DE-city-paris:"+pw, url); err == nil {
			t.Errorf("SOCKS5 city nobody offers: %q", out)
		}
	})

	// The provider's check of the vouchers' connection-log hash, while the
	// connections so far were one at a time.
	t.Run("connection log", func(t *testing.T) {
		id := common.HexToHash(deals["DE"])
		if err := testnet.Await(ctx, func() error {
			d, err := de.Node.Deal(ctx, id)
			if err != nil {
				return err
			}
			if d.Voucher == nil || d.Voucher.ConnLogHash == (common.Hash{}).Hex() {
				return fmt.Errorf("no voucher over connections yet: %+v", d.Voucher)
			}
			if h := common.HexToHash(d.Voucher.ConnLogHash); !de.Node.ConnLogMatches(id, h) {
				return fmt.Errorf("the provider's log never had the voucher's head %s", h.Hex())
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if de.Node.ConnLogMatches(id, common.HexToHash("0x1234")) {
			t.Error("a made-up connection-log hash matches")
		}
	})

	t.Run("python", func(t *testing.T) {
		py, err := exec.LookPath("python3")
		if err != nil {
			t.Skip("python3 is not installed")
		}
		const script = `
import sys, urllib.request, urllib.error
proxy, url = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
try:
    print(opener.open(url, timeout=20).read().decode(), end="")
except urllib.error.HTTPError as e:
    print(e.code, end="")
`
		hostport := strings.TrimPrefix(hp, "http://")
		for _, tt := range []struct{ proxy, want string }{
			{"http://country-DE:" + pw + "@" + hostport, de.IP},
			{"http://customer-u-cc-US-sessid-py1:" + pw + "@" + hostport, us.IP},
			{"http://" + hostport, "407"},
		} {
			out, err := exec.CommandContext(ctx, py, "-c", script, tt.proxy, url).CombinedOutput()
			if err != nil || string(out) != tt.want {
				t.Errorf("urllib via %s: %q %v, want %s", tt.proxy, out, err, tt.want)
			}
		}
		const reqScript = `
import sys, requests
r = requests.get(sys.argv[2], proxies={"http": sys.argv[1]}, timeout=20)
print(r.status_code if r.status_code != 200 else r.text, end="")
`
		if exec.CommandContext(ctx, py, "-c", "import requests").Run() != nil {
			t.Log("python requests not installed: urllib only")
			return
		}
		out, err := exec.CommandContext(ctx, py, "-c", reqScript, "http://country-US:"+pw+"@"+hostport, url).CombinedOutput()
		if err != nil || string(out) != us.IP {
			t.Errorf("requests: %q %v, want %s", out, err, us.IP)
		}
	})

	t.Run("chromium", func(t *testing.T) {
		browserLoads(t, ctx, hp, url, "country-US", pw, us.IP, hits)
	})

	t.Run("status", func(t *testing.T) {
		st := req.Status(ctx)
		names := map[string]bool{}
		for _, l := range st.Listeners {
			names[l.Name] = true
			if l.Public || !node.IsLoopbackAddr(l.Addr) {
				t.Errorf("listener %+v", l)
			}
		}
		if !names["api"] || !names["socks"] || !names["http-proxy"] {
			t.Errorf("listeners %+v", st.Listeners)
		}
		if st.Proxy == nil || !st.Proxy.Auth || len(st.Proxy.Credentials) == 0 || st.Proxy.Credentials[0].Name != "default" {
			t.Errorf("proxy status %+v", st.Proxy)
		}
	})

	t.Run("credentials", func(t *testing.T) {
		// A fleet credential with a cap of 1 base unit: its first
		// connection is served, and what it moved spends the cap.
		fleet, err := node.AddCredential(reqM.Datadir, "fleet1", "1")
		if err != nil {
			t.Fatal(err)
		}
		// A new credential works at once: the node looks at the file on a
		// password it does not know.
		if out, err := curlOut(t, "--proxy", hp, "--proxy-user", "country-DE:"+fleet.Password, url); err != nil || out != de.IP {
			t.Fatalf("fleet credential: %q %v", out, err)
		}
		out, err := curlOut(t, "--proxy", hp, "--proxy-user", "country-DE:"+fleet.Password, "-w", " %{http_code}", url)
		if err != nil || !strings.HasSuffix(out, " 403") || !strings.Contains(out, "credential fleet1 has spent") {
			t.Errorf("over its cap: %q %v", out, err)
		}
		var spent string
		for _, c := range req.Status(ctx).Proxy.Credentials {
			if c.Name == "fleet1" {
				spent = c.Spent
			}
		}
		if spent == "" || spent == "0" {
			t.Errorf("fleet1 spent %q", spent)
		}
		// Rotating the default password: the old one stops working within
		// a second or so, the new one works.
		rot, err := node.RotateCredential(reqM.Datadir, node.DefaultCredential)
		if err != nil {
			t.Fatal(err)
		}
		if err := testnet.Await(ctx, func() error {
			out, _ := curlOut(t, "--proxy", hp, "--proxy-user", "country-DE:"+pw, "-o", "/dev/null", "-w", "%{http_code}", url)
			if out != "407" {
				return fmt.Errorf("old password: %s", out)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if out, err := curlOut(t, "--proxy", hp, "--proxy-user", "country-DE:"+rot.Password, url); err != nil || out != de.IP {
			t.Errorf("new password: %q %v", out, err)
		}
		pw = rot.Password
	})

	t.Run("bad input", func(t *testing.T) {
		tunneltest.Run(t, socks, strings.TrimPrefix(hp, "http://"), tunnel.DefaultHandshakeTimeout, tunneltest.Matrix(pw))
		for _, args := range [][]string{
			{"--socks5-hostname", socks, "--proxy-user", "country-DE:" + pw, url},
			{"--proxy", hp, "--proxy-user", "country-US:" + pw, url},
		} {
			if out, err := curlOut(t, args...); err != nil || (out != de.IP && out != us.IP) {
				t.Errorf("after the matrix %v: %q %v", args[:2], out, err)
			}
		}
	})
}

// browserLoads drives headless Chromium through the HTTP proxy: with user
// and pw it answers the proxy's 407 challenge (Chromium sends proxy
// credentials only when challenged) and the page must come from wantIP;
// without, the challenge goes unanswered and the target is not reached.
func browserLoads(t *testing.T, ctx context.Context, proxy, url, user, pw, wantIP string, hits *atomic.Int64) {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no chromium in PATH (make tools installs Debian's chromium)")
	}
	run := func(t *testing.T, withCreds bool) (body string, challenges int, navErr error) {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(bin),
			chromedp.NoSandbox, // as root, Chromium refuses to start sandboxed
			chromedp.ProxyServer(proxy),
			// Chromium sends loopback straight, proxy or not, unless told.
			chromedp.Flag("proxy-bypass-list", "<-loopback>"),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("no-pings", true),
			chromedp.Flag("dns-prefetch-disable", true),
			chromedp.UserDataDir(t.TempDir()),
		)
		actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
		defer cancel()
		bctx, cancel := chromedp.NewContext(actx)
		defer cancel()
		bctx, cancel = context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(bctx); err != nil {
			t.Skipf("chromium cannot start: %v", err)
		}
		lctx, lcancel := context.WithCancel(bctx)
		defer lcancel()
		paused := chromedp.Events(lctx, fetch.RequestPaused)
		authRequired := chromedp.Events(lctx, fetch.AuthRequired)
		var seen atomic.Int64
		var wg sync.WaitGroup
		defer wg.Wait()
		defer lcancel()
		wg.Go(func() {
			for ev, err := range paused {
				if err != nil {
					return
				}
				// Only the test's own page goes anywhere.
				if strings.HasPrefix(ev.Request.URL, url) {
					_, _ = chromedp.Call(bctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				} else {
					_, _ = chromedp.Call(bctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
				}
			}
		})
		wg.Go(func() {
			for ev, err := range authRequired {
				if err != nil {
					return
				}
				if ev.AuthChallenge != nil && ev.AuthChallenge.Source == fetch.AuthChallengeSourceProxy && strings.EqualFold(ev.AuthChallenge.Scheme, "basic") {
					seen.Add(1)
				}
				resp := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
				if withCreds && seen.Load() <= 3 {
					resp = &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: pw}
				}
				_, _ = chromedp.Call(bctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID, AuthChallengeResponse: resp})
			}
		})
		if _, err := chromedp.Call(bctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: new(true)}); err != nil {
			t.Fatalf("fetch.Enable: %v", err)
		}
		if navErr = chromedp.Do(bctx, chromedp.Navigate(url)); navErr == nil {
			body, navErr = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
		}
		return strings.TrimSpace(body), int(seen.Load()), navErr
	}

	body, challenges, err := run(t, true)
	if err != nil || body != wantIP {
		t.Errorf("chromium with %s: page %q (%v), want it from %s", user, body, err, wantIP)
	}
	if challenges == 0 {
		t.Error("chromium was never challenged by the proxy: it must get a 407 with Proxy-Authenticate: Basic")
	}
	before := hits.Load()
	body, challenges, err = run(t, false)
	if challenges == 0 {
		t.Errorf("chromium without credentials was not challenged (page %q, %v)", body, err)
	}
	if body == wantIP || hits.Load() != before {
		t.Errorf("chromium without credentials reached the target (page %q): it must get 407, not the default route", body)
	}
	t.Logf("chromium without credentials: page %q, %v", body, err)
}
