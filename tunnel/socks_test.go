package tunnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curl runs curl with a clean environment and returns its stdout.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (apt-get install -y curl); skipping the curl test")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-sS", "--max-time", "20"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("curl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// whoami is a target web server that answers with the address it saw the
// request come from, and records each request's header.
type whoami struct {
	*httptest.Server
	headers chan http.Header
}

func newWhoami(t *testing.T, tls bool) *whoami {
	w := &whoami{headers: make(chan http.Header, 100)}
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case w.headers <- r.Header.Clone():
		default:
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(rw, "you are %s, asked for %s", host, r.URL.Path)
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(rw, ", posted %d bytes", n)
		}
	})
	if tls {
		w.Server = httptest.NewTLSServer(h)
	} else {
		w.Server = httptest.NewServer(h)
	}
	t.Cleanup(w.Close)
	return w
}

// port returns the server's port; the URL with localhost makes clients
// send a name, not an address, to the proxy.
func (w *whoami) port() string { return w.URL[strings.LastIndexByte(w.URL, ':')+1:] }

func TestSOCKSCurlDirect(t *testing.T) {
	srv := newWhoami(t, false)
	router := &directRouter{}
	proxy := serve(t, NewSOCKSServer(router).Serve)
	url := "http://localhost:" + srv.port() + "/page"

	out, err := curl(t, "--socks5-hostname", proxy, "--proxy-user", "country-DE-session-abc123:x", url)
	if err != nil {
		t.Fatal(err)
	}
	if out != "you are 127.0.0.1, asked for /page" {
		t.Fatalf("got %q", out)
	}
	out, err = curl(t, "--socks5-hostname", proxy, url)
	if err != nil || !strings.HasPrefix(out, "you are") {
		t.Fatalf("no auth: %q %v", out, err)
	}
	if _, err := curl(t, "--socks5-hostname", proxy, "--proxy-user", "country-DEU:x", url); err == nil {
		t.Fatal("malformed username accepted")
	}
	got := router.seen()
	if len(got) != 2 || got[0] != (Route{Country: "DE", Session: "abc123"}) || got[1] != (Route{}) {
		t.Fatalf("routes %+v", got)
	}
}

// TestSOCKSCurlThroughTunnel is the whole requester→provider path: curl →
// SOCKS5 → OpenStream → (TCP standing in for libp2p) → ServeStream →
// policy → target, which sees the provider's egress address.
func TestSOCKSCurlThroughTunnel(t *testing.T) {
	srv := newWhoami(t, false)
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, loopbackPolicy(t), m)
	proxy := serve(t, NewSOCKSServer(pr.router()).Serve)
	out, err := curl(t, "--socks5-hostname", proxy, "--proxy-user", "country-DE:", "http://localhost:"+srv.port()+"/x")
	if err != nil {
		t.Fatal(err)
	}
	if out != "you are 127.0.0.1, asked for /x" {
		t.Fatalf("got %q", out)
	}
	await(t, "stream served", func() bool { return len(pr.results()) == 1 })
	if st := m.Stats(); st.Up == 0 || st.Down == 0 {
		t.Fatalf("nothing metered: %+v", st)
	}
	if e := m.Log().Drain(); len(e) != 1 || e[0].Target != "localhost:"+srv.port() {
		t.Fatalf("log %+v", e)
	}
}

// socksDial speaks SOCKS5 by hand and returns the reply code.
func socksDial(t *testing.T, proxy string, methods []byte, user, pass string, atyp byte, host string, port uint16, cmd byte) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(append([]byte{5, byte(len(methods))}, methods...)); err != nil {
		t.Fatal(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		t.Fatal(err)
	}
	if sel[1] == 0xff {
		return c, 0xff
	}
	if sel[1] == 2 {
		req := append([]byte{1, byte(len(user))}, user...)
		req = append(append(req, byte(len(pass))), pass...)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		var st [2]byte
		if _, err := io.ReadFull(c, st[:]); err != nil {
			t.Fatal(err)
		}
		if st[1] != 0 {
			return c, 0xfe // auth failed
		}
	}
	req := []byte{5, cmd, 0, atyp}
	switch atyp {
	case socksAtypIPv4, socksAtypIPv6:
		req = append(req, netip.MustParseAddr(host).AsSlice()...)
	case socksAtypDomain:
		req = append(append(req, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var rep [10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return c, rep[1]
}

func TestSOCKSProtocol(t *testing.T) {
	e4 := listenRecording(t, "127.0.0.1:0", echo)
	e6 := listenRecording(t, "[::1]:0", echo)
	router := &directRouter{}
	open := serve(t, NewSOCKSServer(router).Serve)
	locked := serve(t, NewSOCKSServer(router, WithPassword("s3cret")).Serve)
	none, pw := []byte{socksAuthNone}, []byte{socksAuthNone, socksAuthPassword}

	check := func(name string, c net.Conn, rep, want byte) {
		t.Helper()
		if rep != want {
			t.Errorf("%s: reply %#x, want %#x", name, rep, want)
			return
		}
		if want != 0 {
			return
		}
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
			t.Errorf("%s: echo %q %v", name, got, err)
		}
	}
	c, rep := socksDial(t, open, none, "", "", socksAtypIPv4, "127.0.0.1", e4.port(), socksCmdConnect)
	check("no auth, IPv4", c, rep, 0)
	c, rep = socksDial(t, open, pw, "session-s1", "", socksAtypIPv6, "::1", e6.port(), socksCmdConnect)
	check("user/pass, IPv6", c, rep, 0)
	c, rep = socksDial(t, open, none, "", "", socksAtypDomain, "localhost", e4.port(), socksCmdConnect)
	check("domain", c, rep, 0)
	c, rep = socksDial(t, open, none, "", "", socksAtypIPv4, "127.0.0.1", e4.port(), 2)
	check("BIND", c, rep, socksCmdNotSupported)
	c, rep = socksDial(t, open, none, "", "", socksAtypIPv4, "127.0.0.1", e4.port(), 3)
	check("UDP ASSOCIATE", c, rep, socksCmdNotSupported)
	c, rep = socksDial(t, open, none, "", "", 9, "", e4.port(), socksCmdConnect)
	check("address type 9", c, rep, socksAddrTypeNotSupport)
	c, rep = socksDial(t, open, none, "", "", socksAtypDomain, "bad host", 80, socksCmdConnect)
	check("bad domain", c, rep, socksHostUnreachable)
	c, rep = socksDial(t, open, pw, "country-XYZ", "", socksAtypIPv4, "127.0.0.1", e4.port(), socksCmdConnect)
	check("bad route", c, rep, 0xfe)
	c, rep = socksDial(t, locked, none, "", "", socksAtypIPv4, "127.0.0.1", e4.port(), socksCmdConnect)
	check("password required, no auth offered", c, rep, 0xff)
	c, rep = socksDial(t, locked, pw, "", "wrong", socksAtypIPv4, "127.0.0.1", e4.port(), socksCmdConnect)
	check("wrong password", c, rep, 0xfe)
	c, rep = socksDial(t, locked, pw, "country-de", "s3cret", socksAtypIPv4, "127.0.0.1", e4.port(), socksCmdConnect)
	check("right password", c, rep, 0)

	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	cport := netip.MustParseAddrPort(closed.Addr().String()).Port()
	_ = closed.Close()
	c, rep = socksDial(t, open, none, "", "", socksAtypIPv4, "127.0.0.1", cport, socksCmdConnect)
	check("connection refused", c, rep, socksConnRefused)

	want := []Route{{}, {Session: "s1"}, {}, {Country: "DE"}, {}}
	if got := router.seen(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("routes %+v, want %+v", got, want)
	}
}

// TestExitPolicyThroughProxies runs the acceptance targets end to end:
// through the SOCKS5 and HTTP front-ends, the tunnel protocol and the exit
// with the default policy. Each is refused with "not allowed by ruleset"
// (SOCKS 0x02) or 403, and the loopback listeners accept nothing.
func TestExitPolicyThroughProxies(t *testing.T) {
	l4 := listenRecording(t, "127.0.0.1:0", nil)
	l4b := listenRecording(t, "127.0.0.2:0", nil)
	l6 := listenRecording(t, "[::1]:0", nil)
	p, reached := guarded(t, PolicyConfig{OwnAddrs: []netip.Addr{netip.MustParseAddr("1.2.3.4")}})
	pr := startProvider(t, p, NewMeter(testDeal, MeterConfig{}))
	socks := serve(t, NewSOCKSServer(pr.router()).Serve)
	hp := serve(t, NewHTTPProxy(pr.router()).Serve)

	for _, row := range acceptanceRows(l4.port(), l4b.port(), l6.port()) {
		host, ps, _ := net.SplitHostPort(row.target)
		port, _ := strconv.Atoi(ps)
		if strings.Contains(host, "%") {
			continue // a zone cannot be written in a SOCKS or HTTP target
		}
		_, rep := socksDial(t, socks, []byte{0}, "", "", socksAtypDomain, host, uint16(port), socksCmdConnect)
		if rep != socksNotAllowed {
			t.Errorf("SOCKS5 %s (%s): reply %#x, want 0x02", row.name, row.target, rep)
		}
		code := httpConnect(t, hp, row.target)
		if code != http.StatusForbidden {
			t.Errorf("HTTP CONNECT %s (%s): %d, want 403", row.name, row.target, code)
		}
	}
	for _, l := range []*recordingListener{l4, l4b, l6} {
		marker, err := net.Dial("tcp", l.addr())
		if err != nil {
			t.Fatal(err)
		}
		want := marker.LocalAddr().String()
		await(t, "marker accepted", func() bool { return len(l.accepted()) > 0 })
		_ = marker.Close()
		if got := l.accepted(); len(got) != 1 || got[0] != want {
			t.Errorf("listener %s accepted %v, want only the marker %s", l.addr(), got, want)
		}
	}
	if got := reached(); len(got) != 0 {
		t.Errorf("policy let %v through to connect", got)
	}
}

func httpConnect(t *testing.T, proxy, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestSOCKSServeShutdownClosesConnections(t *testing.T) {
	e4 := listenRecording(t, "127.0.0.1:0", echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- NewSOCKSServer(&directRouter{}).Serve(ctx, ln) }()
	c, rep := socksDial(t, ln.Addr().String(), []byte{0}, "", "", socksAtypIPv4, "127.0.0.1", e4.port(), socksCmdConnect)
	if rep != 0 {
		t.Fatalf("reply %#x", rep)
	}
	idle, err := net.Dial("tcp", ln.Addr().String()) // stuck in the handshake
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// Both return once Serve has closed them (or the test deadline fails).
	_, _ = io.ReadAll(c)
	_ = idle.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(idle); isTimeout(err) {
		t.Fatal("handshaking connection left open after shutdown")
	}
}

// FuzzSOCKSRequest feeds a whole client handshake (greeting, RFC 1929
// auth, request) to the parsers: they never panic, never read past what a
// length byte allows, and what they accept is a valid target and route.
func FuzzSOCKSRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	auth := append([]byte{5, 1, 2, 1, 10}, "country-DE\x01x"...)
	f.Add(append(auth, 5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', 1, 187))
	f.Add([]byte{5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 2, 0, 2, 1, 0, 0, 5, 2, 0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		methods, err := readSOCKSGreeting(r)
		if err != nil {
			return
		}
		if bytes.IndexByte(methods, socksAuthPassword) >= 0 {
			user, _, err := readSOCKSUserPass(r)
			if err != nil {
				return
			}
			if len(user) > 255 {
				t.Fatalf("username of %d bytes", len(user))
			}
			if route, err := ParseRoute(user); err == nil {
				if again, err := ParseRoute(route.String()); err != nil || again != route {
					t.Fatalf("route %q does not round-trip", user)
				}
			}
		}
		cmd, target, err := readSOCKSRequest(r)
		if err != nil {
			return
		}
		if cmd == socksCmdUDPAssociate {
			// The client's own address, port 0 allowed.
			host, _, err := net.SplitHostPort(target)
			if err != nil || checkWireHost(host) != nil {
				t.Fatalf("accepted associate address %q: %v", target, err)
			}
			return
		}
		host, _, err := splitTarget(target)
		if err != nil {
			t.Fatalf("accepted target %q: %v", target, err)
		}
		if err := checkWireHost(host); err != nil {
			t.Fatalf("accepted host %q that the tunnel header cannot carry: %v", host, err)
		}
	})
}
