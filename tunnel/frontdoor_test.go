package tunnel_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsx/ipsx/tunnel"
	"github.com/ipsx/ipsx/tunnel/tunneltest"
)

// recorder is a Router that dials directly and records, per connection,
// the route and the credential it was asked for.
type recorder struct {
	mu     sync.Mutex
	seen   []string
	refuse func(tunnel.Route) error
}

func (r *recorder) Route(ctx context.Context, rt tunnel.Route, target string) (net.Conn, error) {
	r.mu.Lock()
	r.seen = append(r.seen, tunnel.CredentialOf(ctx)+"/"+rt.String())
	r.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

func (r *recorder) CheckRoute(ctx context.Context, rt tunnel.Route) error {
	if r.refuse != nil {
		return r.refuse(rt)
	}
	return nil
}

func (r *recorder) routes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func listen(t *testing.T, addr string, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func target(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// send writes raw to the proxy and reads one response.
func send(t *testing.T, proxy, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	resp.Status = string(body)
	return resp
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return "Proxy-Authorization: " + r.Header.Get("Authorization") + "\r\n"
}

// TestHTTPProxyChallenges: with credentials required, every request
// without them gets 407 with Proxy-Authenticate: Basic (what makes browsers
// send theirs), never the default route; with them the password picks the
// credential and the username the route, both handed to the router.
func TestHTTPProxyChallenges(t *testing.T) {
	tgt := target(t)
	r := &recorder{}
	auth := tunnel.NewPasswords(map[string]string{"default": "pw-default", "fleet1": "pw-fleet1"})
	proxy := listen(t, "127.0.0.1:0", tunnel.NewHTTPProxy(r, tunnel.WithAuth(auth)).Serve)
	for _, raw := range []string{
		"GET http://" + tgt + "/ HTTP/1.1\r\nHost: " + tgt + "\r\n\r\n",
		"CONNECT " + tgt + " HTTP/1.1\r\nHost: " + tgt + "\r\n\r\n",
		"GET http://" + tgt + "/ HTTP/1.0\r\n\r\n",
	} {
		resp := send(t, proxy, raw)
		if resp.StatusCode != 407 || resp.Header.Get("Proxy-Authenticate") != `Basic realm="ipsx"` {
			t.Errorf("%q: %d %v", raw, resp.StatusCode, resp.Header)
		}
		if !strings.Contains(resp.Status, "proxy credentials required") {
			t.Errorf("407 body %q does not say what is missing", resp.Status)
		}
	}
	if got := r.routes(); len(got) != 0 {
		t.Fatalf("unauthenticated requests were routed: %v", got)
	}
	for _, tt := range []struct{ user, pass, want string }{
		{"country-DE", "pw-default", "default/country-DE"},
		{"brd-customer-x-zone-y-country-us-session-abc", "pw-fleet1", "fleet1/country-US-session-abc"},
	} {
		resp := send(t, proxy, "GET http://"+tgt+"/ HTTP/1.1\r\nHost: "+tgt+"\r\n"+basicAuth(tt.user, tt.pass)+"\r\n")
		if resp.StatusCode != 200 || resp.Status != "hello" {
			t.Fatalf("%s: %d %q", tt.user, resp.StatusCode, resp.Status)
		}
		if got := r.routes(); got[len(got)-1] != tt.want {
			t.Errorf("%s: routed as %s, want %s", tt.user, got[len(got)-1], tt.want)
		}
	}
	resp := send(t, proxy, "GET http://"+tgt+"/ HTTP/1.1\r\n"+basicAuth("country-DE-city-berlin-zip-1", "pw-default")+"\r\n")
	if resp.StatusCode != 407 || !strings.Contains(resp.Status, `unknown key "zip"`) {
		t.Errorf("bad username: %d %q", resp.StatusCode, resp.Status)
	}
}

// TestRouteRefused: a route the router's check refuses is a 403 naming the
// problem on HTTP and an authentication failure on SOCKS5.
func TestRouteRefused(t *testing.T) {
	tgt := target(t)
	r := &recorder{refuse: func(rt tunnel.Route) error {
		if rt.City != "" {
			return fmt.Errorf("%w: no offer in %s has city %s", tunnel.ErrRouteRefused, rt.Country, rt.City)
		}
		return nil
	}}
	opts := []tunnel.ProxyOption{tunnel.WithPassword("pw")}
	hp := listen(t, "127.0.0.1:0", tunnel.NewHTTPProxy(r, opts...).Serve)
	sp := listen(t, "127.0.0.1:0", tunnel.NewSOCKSServer(r, opts...).Serve)
	resp := send(t, hp, "CONNECT "+tgt+" HTTP/1.1\r\n"+basicAuth("country-DE-city-atlantis", "pw")+"\r\n")
	if resp.StatusCode != 403 || !strings.Contains(resp.Status, "no offer in DE has city atlantis") {
		t.Errorf("HTTP: %d %q", resp.StatusCode, resp.Status)
	}
	if st := socksAuthStatus(t, sp, "country-DE-city-atlantis", "pw"); st != 1 {
		t.Errorf("SOCKS5: auth status %d, want 1", st)
	}
	if st := socksAuthStatus(t, sp, "country-DE", "pw"); st != 0 {
		t.Errorf("SOCKS5 country-DE: auth status %d, want 0", st)
	}
	if got := r.routes(); len(got) != 0 {
		t.Errorf("refused routes reached the router: %v", got)
	}
}

func socksAuthStatus(t *testing.T, proxy, user, pass string) byte {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := append([]byte{5, 1, 2, 1, byte(len(user))}, user...)
	msg = append(append(msg, byte(len(pass))), pass...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatalf("socks auth reply: %v", err)
	}
	if b[0] != 5 || b[1] != 2 || b[2] != 1 {
		t.Fatalf("socks reply % x", b)
	}
	return b[3]
}

// TestFailedLoginsLimited: past its failed attempts a source is refused
// (429 on HTTP, auth failure on SOCKS5), even with the right password; the
// limiter is shared by both proxies, and another source is unaffected.
func TestFailedLoginsLimited(t *testing.T) {
	tgt := target(t)
	lim := tunnel.NewAuthLimiter(3, time.Hour)
	opts := []tunnel.ProxyOption{tunnel.WithPassword("right"), tunnel.WithAuthLimiter(lim)}
	hp := listen(t, "127.0.0.1:0", tunnel.NewHTTPProxy(&recorder{}, opts...).Serve)
	sp := listen(t, "127.0.0.1:0", tunnel.NewSOCKSServer(&recorder{}, opts...).Serve)
	get := func(pass string) *http.Response {
		return send(t, hp, "GET http://"+tgt+"/ HTTP/1.1\r\n"+basicAuth("", pass)+"\r\n")
	}
	if resp := get("right"); resp.StatusCode != 200 {
		t.Fatalf("right password: %d", resp.StatusCode)
	}
	for i := 0; i < 2; i++ {
		if resp := get("wrong"); resp.StatusCode != 407 {
			t.Fatalf("wrong password %d: %d", i, resp.StatusCode)
		}
	}
	if st := socksAuthStatus(t, sp, "", "wrong"); st != 1 {
		t.Fatalf("SOCKS wrong password: %d", st)
	}
	resp := get("right")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(resp.Status, "too many failed attempts") {
		t.Fatalf("right password after 3 failures: %d %v %q", resp.StatusCode, resp.Header, resp.Status)
	}
	if st := socksAuthStatus(t, sp, "", "right"); st != 1 {
		t.Fatalf("SOCKS right password while blocked: %d", st)
	}
	// No credentials is no attempt: a browser's first request does not count.
	if !lim.Blocked(netip.MustParseAddr("127.0.0.1")) || lim.Blocked(netip.MustParseAddr("127.0.0.2")) {
		t.Fatal("limiter state")
	}
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", hp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\n%s\r\n", tgt, basicAuth("", "right"))
	r2, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || r2.StatusCode != 200 {
		t.Fatalf("another source: %v %v", r2, err)
	}
	_ = r2.Body.Close()
	for i := 0; i < 50; i++ {
		lim.Failed(netip.MustParseAddr("2001:db8::1"))
	}
	if !lim.Blocked(netip.MustParseAddr("2001:db8::ffff")) || lim.Blocked(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Error("IPv6 sources are not limited per /64")
	}
}

func TestPasswordsLookup(t *testing.T) {
	p := tunnel.NewPasswords(map[string]string{"a": "one", "b": "two", "c": "", "d": "three"})
	for pass, want := range map[string]string{"one": "a", "two": "b", "three": "d"} {
		if got, ok := p.Lookup(pass); !ok || got != want {
			t.Errorf("Lookup(%q) = %q %v, want %q", pass, got, ok, want)
		}
	}
	for _, pass := range []string{"", "on", "one ", "ONE", "four"} {
		if got, ok := p.Lookup(pass); ok {
			t.Errorf("Lookup(%q) = %q", pass, got)
		}
	}
	if _, err := p.Authenticate("x"); !errors.Is(err, tunnel.ErrProxyAuth) {
		t.Errorf("wrong password: %v", err)
	}
}

// TestFrontDoorBadInput runs the bad-input matrix against both proxies,
// then checks they still serve.
func TestFrontDoorBadInput(t *testing.T) {
	tgt := target(t)
	r := &recorder{}
	opts := []tunnel.ProxyOption{tunnel.WithPassword("pw"), tunnel.WithHandshakeTimeout(time.Second),
		tunnel.WithAuthLimiter(tunnel.NewAuthLimiter(tunnel.DefaultAuthBurst, tunnel.DefaultAuthRefill))}
	hp := listen(t, "127.0.0.1:0", tunnel.NewHTTPProxy(r, opts...).Serve)
	sp := listen(t, "127.0.0.1:0", tunnel.NewSOCKSServer(r, opts...).Serve)
	tunneltest.Run(t, sp, hp, time.Second, tunneltest.Matrix("pw"))
	if got := r.routes(); len(got) != 0 {
		t.Errorf("bad input reached the router: %v", got)
	}
	resp := send(t, hp, "GET http://"+tgt+"/ HTTP/1.1\r\n"+basicAuth("country-DE", "pw")+"\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("HTTP proxy after the matrix: %d %q", resp.StatusCode, resp.Status)
	}
	if st := socksAuthStatus(t, sp, "country-DE", "pw"); st != 0 {
		t.Errorf("SOCKS5 after the matrix: %d", st)
	}
}

// TestTunnelIdleTimeout: an established tunnel with no byte either way is
// closed after the idle timeout; one with traffic more often lives on.
func TestTunnelIdleTimeout(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	const idle = 300 * time.Millisecond
	for _, fe := range []struct {
		name string
		dial func(t *testing.T, proxy string) net.Conn
		srv  func(tunnel.Router, ...tunnel.ProxyOption) func(context.Context, net.Listener) error
	}{
		{"socks", func(t *testing.T, proxy string) net.Conn {
			c, _ := net.Dial("tcp", proxy)
			ap := netip.MustParseAddrPort(echo.Addr().String())
			ip := ap.Addr().As4()
			_, _ = c.Write([]byte{5, 1, 0, 5, 1, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(ap.Port() >> 8), byte(ap.Port())})
			b := make([]byte, 12)
			if _, err := io.ReadFull(c, b); err != nil || b[3] != 0 {
				t.Fatalf("socks connect: % x %v", b, err)
			}
			return c
		}, func(r tunnel.Router, o ...tunnel.ProxyOption) func(context.Context, net.Listener) error {
			return tunnel.NewSOCKSServer(r, o...).Serve
		}},
		{"connect", func(t *testing.T, proxy string) net.Conn {
			c, _ := net.Dial("tcp", proxy)
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\n", echo.Addr())
			b := make([]byte, len("HTTP/1.1 200 Connection established\r\n\r\n"))
			if _, err := io.ReadFull(c, b); err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") {
				t.Fatalf("CONNECT: %q %v", b, err)
			}
			return c
		}, func(r tunnel.Router, o ...tunnel.ProxyOption) func(context.Context, net.Listener) error {
			return tunnel.NewHTTPProxy(r, o...).Serve
		}},
	} {
		t.Run(fe.name, func(t *testing.T) {
			proxy := listen(t, "127.0.0.1:0", fe.srv(&recorder{}, tunnel.WithTunnelIdleTimeout(idle)))
			busy, quiet := fe.dial(t, proxy), fe.dial(t, proxy)
			defer busy.Close()
			defer quiet.Close()
			start := time.Now()
			_ = quiet.SetReadDeadline(start.Add(10 * time.Second))
			done := make(chan error, 1)
			go func() { _, err := quiet.Read(make([]byte, 1)); done <- err }()
			// The busy one echoes a byte every idle/3, for 3 idle periods.
			for time.Since(start) < 3*idle {
				_ = busy.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := busy.Write([]byte{'x'}); err != nil {
					t.Fatalf("busy tunnel after %s: %v", time.Since(start), err)
				}
				if _, err := io.ReadFull(busy, make([]byte, 1)); err != nil {
					t.Fatalf("busy tunnel after %s: %v", time.Since(start), err)
				}
				tm := time.NewTimer(idle / 3)
				<-tm.C
			}
			select {
			case err := <-done:
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("idle tunnel still open after 10 s")
				}
				if el := time.Since(start); el < idle {
					t.Errorf("idle tunnel closed after %s, before the idle timeout", el)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("idle tunnel still open")
			}
		})
	}
}
