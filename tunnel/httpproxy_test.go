package tunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func TestHTTPProxyCurl(t *testing.T) {
	srv := newWhoami(t, false)
	tlsSrv := newWhoami(t, true)
	router := &directRouter{}
	proxy := "http://" + serve(t, NewHTTPProxy(router).Serve)

	// Plain http:// forwarding, hop-by-hop fields stripped.
	out, err := curl(t, "--proxy", proxy, "--proxy-user", "country-FR-session-z9:x",
		"-H", "X-Keep: 1", "-H", "Connection: X-Drop", "-H", "X-Drop: 1",
		"http://localhost:"+srv.port()+"/plain")
	if err != nil {
		t.Fatal(err)
	}
	if out != "you are 127.0.0.1, asked for /plain" {
		t.Fatalf("plain: %q", out)
	}
	h := <-srv.headers
	for _, f := range []string{"Proxy-Authorization", "Proxy-Connection", "X-Drop"} {
		if h.Get(f) != "" {
			t.Errorf("upstream got hop-by-hop %s: %q", f, h.Get(f))
		}
	}
	if h.Get("X-Keep") != "1" {
		t.Errorf("upstream lost X-Keep: %v", h)
	}

	// CONNECT to a plain server (curl -p) and to a TLS one.
	out, err = curl(t, "-p", "--proxy", proxy, "http://localhost:"+srv.port()+"/tunnelled")
	if err != nil || out != "you are 127.0.0.1, asked for /tunnelled" {
		t.Fatalf("CONNECT: %q %v", out, err)
	}
	<-srv.headers
	out, err = curl(t, "-k", "--proxy", proxy, "--proxy-user", "country-DE:", "https://localhost:"+tlsSrv.port()+"/tls")
	if err != nil || out != "you are 127.0.0.1, asked for /tls" {
		t.Fatalf("CONNECT TLS: %q %v", out, err)
	}

	// A body, with Expect: 100-continue.
	body := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(body, bytes.Repeat([]byte("x"), 200_000), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = curl(t, "--proxy", proxy, "-H", "Expect: 100-continue", "--data-binary", "@"+body,
		"http://localhost:"+srv.port()+"/post")
	if err != nil || out != "you are 127.0.0.1, asked for /post, posted 200000 bytes" {
		t.Fatalf("POST: %q %v", out, err)
	}

	// A username that is not a route: 407.
	out, err = curl(t, "--proxy", proxy, "--proxy-user", "city-Berlin:x", "-o", "/dev/null", "-w", "%{http_code}",
		"http://localhost:"+srv.port()+"/")
	if err != nil || out != "407" {
		t.Fatalf("bad username: %q %v", out, err)
	}
	want := []Route{{Country: "FR", Session: "z9"}, {}, {Country: "DE"}, {}}
	if got := router.seen(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("routes %+v, want %+v", got, want)
	}
}

func TestHTTPProxyCurlThroughTunnel(t *testing.T) {
	srv := newWhoami(t, false)
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, loopbackPolicy(t), m)
	proxy := "http://" + serve(t, NewHTTPProxy(pr.router()).Serve)
	for _, args := range [][]string{
		{"--proxy", proxy, "http://localhost:" + srv.port() + "/plain"},
		{"-p", "--proxy", proxy, "http://localhost:" + srv.port() + "/connect"},
	} {
		out, err := curl(t, args...)
		if err != nil || !strings.HasPrefix(out, "you are 127.0.0.1") {
			t.Fatalf("%v: %q %v", args, out, err)
		}
	}
	await(t, "streams served", func() bool { return len(pr.results()) == 2 })
	if n := len(m.Log().Drain()); n != 2 {
		t.Fatalf("%d log entries", n)
	}
}

// TestHTTPProxyKeepAlive sends several requests on one client connection:
// requests to the same target reuse one upstream connection, a new target
// gets a new one, and Connection: close ends it.
func TestHTTPProxyKeepAlive(t *testing.T) {
	a, b := newWhoami(t, false), newWhoami(t, false)
	router := &directRouter{}
	proxy := serve(t, NewHTTPProxy(router).Serve)
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	get := func(srv *whoami, path string, close bool) string {
		t.Helper()
		u := "http://127.0.0.1:" + srv.port() + path
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Close = close
		if err := req.WriteProxy(c); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	for i, step := range []struct {
		srv  *whoami
		path string
	}{{a, "/1"}, {a, "/2"}, {b, "/3"}, {b, "/4"}} {
		if got := get(step.srv, step.path, false); !strings.HasSuffix(got, step.path) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	if got := get(a, "/5", true); !strings.HasSuffix(got, "/5") {
		t.Fatalf("last request: %q", got)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after Connection: close: %v", err)
	}
	if n := len(router.seen()); n != 3 {
		t.Fatalf("%d upstream connections, want 3 (a, b, a again)", n)
	}
}

func TestHTTPProxyErrors(t *testing.T) {
	proxy := serve(t, NewHTTPProxy(&directRouter{}, WithPassword("pw")).Serve)
	send := func(raw string) *http.Response {
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
		_ = resp.Body.Close()
		return resp
	}
	auth := "Proxy-Authorization: Basic " + basic("country-DE", "pw") + "\r\n"
	for _, tt := range []struct {
		name, raw string
		code      int
	}{
		{"no credentials", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 407},
		{"wrong password", "GET http://example.com/ HTTP/1.1\r\nProxy-Authorization: Basic " + basic("", "no") + "\r\n\r\n", 407},
		{"not basic", "GET http://example.com/ HTTP/1.1\r\nProxy-Authorization: Bearer x\r\n\r\n", 407},
		{"bad base64", "GET http://example.com/ HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n", 407},
		{"bad route", "GET http://example.com/ HTTP/1.1\r\nProxy-Authorization: Basic " + basic("country-1", "pw") + "\r\n\r\n", 407},
		{"origin form", "GET / HTTP/1.1\r\nHost: example.com\r\n" + auth + "\r\n", 400},
		{"https absolute", "GET https://example.com/ HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"ftp", "GET ftp://example.com/ HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"CONNECT no port", "CONNECT example.com HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"CONNECT bad host", "CONNECT exa_mple!.com:443 HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"garbage", "HELLO\r\n\r\n", 400},
		{"header too large", "GET http://example.com/ HTTP/1.1\r\nX: " + strings.Repeat("a", MaxHTTPHeaderSize) + "\r\n\r\n", 431},
	} {
		resp := send(tt.raw)
		if resp.StatusCode != tt.code {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.code)
		}
		if tt.code == 407 && resp.Header.Get("Proxy-Authenticate") == "" {
			t.Errorf("%s: 407 without Proxy-Authenticate", tt.name)
		}
		if !resp.Close {
			t.Errorf("%s: error response without Connection: close", tt.name)
		}
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// FuzzHTTPProxyRequest: whatever a client sends, reading and validating
// the request never panics, the header read is bounded, and an accepted
// request has a valid target and route.
func FuzzHTTPProxyRequest(f *testing.F) {
	f.Add([]byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
	f.Add([]byte("GET http://example.com/a?b HTTP/1.1\r\nProxy-Authorization: Basic " + basic("country-DE-session-x", "") + "\r\n\r\n"))
	f.Add([]byte("GET http://[::1]:8080/ HTTP/1.0\r\nConnection: keep-alive, X\r\n\r\n"))
	f.Add([]byte("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("GET http://h/ HTTP/9.9\r\n\r\n"))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	f.Add([]byte("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("GET http://h/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lr := &io.LimitedReader{R: bytes.NewReader(b), N: MaxHTTPHeaderSize}
		rec := &headRecorder{r: lr}
		req, err := readRequestHead(bufio.NewReaderSize(rec, 4096), rec)
		if err != nil {
			return
		}
		if req.ProtoMajor != 1 || req.ProtoMinor > 1 {
			t.Fatalf("accepted %s", req.Proto)
		}
		if len(req.Header["Content-Length"]) > 0 && len(req.TransferEncoding) > 0 {
			t.Fatalf("accepted Content-Length with Transfer-Encoding")
		}
		if user, _, ok, err := proxyCredentials(req.Header); ok && err == nil {
			if route, err := ParseRoute(user); err == nil {
				if again, err := ParseRoute(route.String()); err != nil || again != route {
					t.Fatalf("route %+v does not round-trip", route)
				}
			}
		}
		pr, err := parseProxyRequest(req)
		if err != nil {
			return
		}
		host, _, err := splitTarget(pr.target)
		if err != nil {
			t.Fatalf("accepted target %q: %v", pr.target, err)
		}
		if err := checkWireHost(host); err != nil {
			t.Fatalf("accepted host %q the tunnel header cannot carry: %v", host, err)
		}
		stripHopByHop(req.Header)
		for _, f := range hopByHop {
			if req.Header.Get(f) != "" {
				t.Fatalf("%s survived stripping", f)
			}
		}
	})
}

// TestHTTPProxyRetriesStaleUpstream: a server that closes every connection
// after one response, without saying so. The proxy's reused upstream is
// then dead; an idempotent request is retried on a fresh one.
func TestHTTPProxyRetriesStaleUpstream(t *testing.T) {
	srv := listenRecording(t, "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.URL.Path), req.URL.Path)
	})
	router := &directRouter{}
	proxy := serve(t, NewHTTPProxy(router).Serve)
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/one", "/two", "/three"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.addr()+path, nil)
		if err := req.WriteProxy(c); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != path {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	if n := len(srv.accepted()); n != 3 {
		t.Fatalf("server saw %d connections, want 3", n)
	}
}
