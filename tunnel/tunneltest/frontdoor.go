// Package tunneltest holds checks of the requester's front door (the
// SOCKS5 and HTTP proxies) that run the same against the tunnel package's
// servers and against a whole node: a matrix of bad input a proxy on a
// reachable address must survive. It speaks raw bytes, so it depends on
// nothing of IPSX.
package tunneltest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Case is one bad input: bytes written to a fresh connection, after which
// the proxy must answer and close, or close, within its handshake timeout.
type Case struct {
	Name  string
	Proxy string // "socks" or "http"
	Input []byte
	// HalfClose closes the client's write side after Input (a client that
	// stops mid-handshake with a FIN rather than going quiet).
	HalfClose bool
	// Want is the HTTP status the proxy must answer (0: any status but a
	// 5xx other than 505, or none); for SOCKS, the exact bytes it answers
	// before closing (nil: anything).
	Want      int
	WantSOCKS []byte
}

func basic(user, pass string) string {
	return "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n"
}

func socksAuth(user, pass string) []byte {
	b := []byte{5, 1, 2, 1, byte(len(user))}
	b = append(b, user...)
	b = append(b, byte(len(pass)))
	return append(b, pass...)
}

// Matrix is the bad-input matrix for proxies that require password
// (garbage, truncated handshakes, huge usernames, wrong versions, request
// smuggling, HTTP versions the proxy does not speak). It uses a wrong
// password twice, well within the failed-attempt limit.
func Matrix(password string) []Case {
	huge := strings.Repeat("a", 255)
	ok := basic("country-DE", password)
	h := func(name, raw string, want int) Case {
		return Case{Name: name, Proxy: "http", Input: []byte(raw), Want: want}
	}
	cases := []Case{
		// SOCKS5.
		{Name: "socks: HTTP request", Proxy: "socks", Input: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), WantSOCKS: []byte{}},
		{Name: "socks: garbage", Proxy: "socks", Input: []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0}, WantSOCKS: []byte{}},
		{Name: "socks: nothing, FIN", Proxy: "socks", HalfClose: true, WantSOCKS: []byte{}},
		{Name: "socks: nothing, silence", Proxy: "socks", WantSOCKS: []byte{}},
		{Name: "socks: truncated greeting", Proxy: "socks", Input: []byte{5}, WantSOCKS: []byte{}},
		{Name: "socks: greeting short of its methods", Proxy: "socks", Input: []byte{5, 3, 2}, WantSOCKS: []byte{}},
		{Name: "socks: greeting short of its methods, FIN", Proxy: "socks", Input: []byte{5, 3, 2}, HalfClose: true, WantSOCKS: []byte{}},
		{Name: "socks: version 4", Proxy: "socks", Input: []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, WantSOCKS: []byte{}},
		{Name: "socks: version 6", Proxy: "socks", Input: []byte{6, 1, 2}, WantSOCKS: []byte{}},
		{Name: "socks: no methods", Proxy: "socks", Input: []byte{5, 0}, WantSOCKS: []byte{}},
		{Name: "socks: no-auth only", Proxy: "socks", Input: []byte{5, 1, 0}, WantSOCKS: []byte{5, 0xff}},
		{Name: "socks: auth version 2", Proxy: "socks", Input: []byte{5, 1, 2, 2, 1, 'a', 1, 'b'}, WantSOCKS: []byte{5, 2}},
		{Name: "socks: truncated auth", Proxy: "socks", Input: []byte{5, 1, 2, 1, 10, 'a', 'b', 'c'}, WantSOCKS: []byte{5, 2}},
		{Name: "socks: wrong password", Proxy: "socks", Input: socksAuth("country-DE", "not-"+password), WantSOCKS: []byte{5, 2, 1, 1}},
		{Name: "socks: huge username", Proxy: "socks", Input: socksAuth(huge, password), WantSOCKS: []byte{5, 2, 1, 1}},
		{Name: "socks: username of bad keys", Proxy: "socks", Input: socksAuth("country-DE-zip-1-dns-remote", password), WantSOCKS: []byte{5, 2, 1, 1}},
		{Name: "socks: request version 4", Proxy: "socks", Input: append(socksAuth("", password), 4, 1, 0, 1, 127, 0, 0, 1, 0, 80), WantSOCKS: []byte{5, 2, 1, 0}},
		{Name: "socks: truncated request", Proxy: "socks", Input: append(socksAuth("", password), 5, 1, 0, 3, 20, 'x'), WantSOCKS: []byte{5, 2, 1, 0}},
		{Name: "socks: domain of length 0", Proxy: "socks", Input: append(socksAuth("", password), 5, 1, 0, 3, 0, 0, 80),
			WantSOCKS: []byte{5, 2, 1, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0}},
		{Name: "socks: BIND", Proxy: "socks", Input: append(socksAuth("", password), 5, 2, 0, 1, 127, 0, 0, 1, 0, 80),
			WantSOCKS: []byte{5, 2, 1, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0}},
		{Name: "socks: address type 9", Proxy: "socks", Input: append(socksAuth("", password), 5, 1, 0, 9, 1, 2, 3, 4, 0, 80),
			WantSOCKS: []byte{5, 2, 1, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0}},

		// HTTP.
		h("http: binary garbage", "\x00\x01\x02\x03\r\n\r\n", 400),
		h("http: not HTTP", "HELLO\r\n\r\n", 400),
		{Name: "http: nothing, FIN", Proxy: "http", HalfClose: true},
		{Name: "http: nothing, silence", Proxy: "http"},
		{Name: "http: truncated head", Proxy: "http", Input: []byte("GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: exa")},
		{Name: "http: truncated head, FIN", Proxy: "http", Input: []byte("GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: exa"), HalfClose: true},
		h("http: HTTP/9.9", "GET http://127.0.0.1:9/ HTTP/9.9\r\nHost: 127.0.0.1:9\r\n\r\n", 505),
		h("http: HTTP/2.0", "GET http://127.0.0.1:9/ HTTP/2.0\r\n\r\n", 505),
		h("http: HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
		h("http: HTTP/1.2", "GET http://127.0.0.1:9/ HTTP/1.2\r\n"+ok+"\r\n", 505),
		h("http: HTTP/0.9 style", "GET /\r\n\r\n", 400),
		h("http: no credentials", "GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n", 407),
		h("http: CONNECT without credentials", "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n", 407),
		h("http: wrong password", "GET http://127.0.0.1:9/ HTTP/1.1\r\n"+basic("country-DE", "not-"+password)+"\r\n", 407),
		h("http: huge username", "GET http://127.0.0.1:9/ HTTP/1.1\r\n"+basic(strings.Repeat("country-DE-", 4000), password)+"\r\n", 407),
		h("http: bad base64", "GET http://127.0.0.1:9/ HTTP/1.1\r\nProxy-Authorization: Basic ***\r\n\r\n", 407),
		h("http: header too large", "GET http://127.0.0.1:9/ HTTP/1.1\r\nX: "+strings.Repeat("a", 70<<10)+"\r\n\r\n", 431),
		h("http: URL too large", "GET http://127.0.0.1:9/"+strings.Repeat("a", 100<<10)+" HTTP/1.1\r\n\r\n", 431),
		h("smuggling: Content-Length and Transfer-Encoding", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
		h("smuggling: Transfer-Encoding and Content-Length", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400),
		h("smuggling: duplicate equal Content-Length", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
		h("smuggling: duplicate differing Content-Length", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400),
		h("smuggling: Content-Length list", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Content-Length: 1, 2\r\n\r\nxx", 400),
		h("smuggling: obs-fold", "GET http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", 400),
		h("smuggling: obs-fold with a tab", "GET http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"X-A: 1\r\n\tmore\r\n\r\n", 400),
		h("smuggling: Transfer-Encoding gzip", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Transfer-Encoding: gzip\r\n\r\n", 400),
		h("smuggling: Transfer-Encoding chunked twice", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
		h("smuggling: space before colon", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Content-Length : 3\r\n\r\nabc", 400),
		h("smuggling: negative Content-Length", "POST http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"Content-Length: -1\r\n\r\n", 400),
		h("http: origin form", "GET / HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"+ok+"\r\n", 400),
		h("http: CONNECT without a port", "CONNECT 127.0.0.1 HTTP/1.1\r\n"+ok+"\r\n", 400),
		h("http: ftp scheme", "GET ftp://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"\r\n", 400),
		h("http: NUL in a field name", "GET http://127.0.0.1:9/ HTTP/1.1\r\n"+ok+"X\x00Y: 1\r\n\r\n", 400),
	}
	return cases
}

// Run sends every case to its proxy at once, and fails t for each that
// hangs past handshake (plus slack for a loaded machine), answers a 5xx
// other than 505, or answers other than the case wants.
func Run(t *testing.T, socks, httpProxy string, handshake time.Duration, cases []Case) {
	t.Helper()
	deadline := handshake + 5*time.Second
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, c := range cases {
		addr := socks
		if c.Proxy == "http" {
			addr = httpProxy
		}
		wg.Go(func() { errs[i] = runCase(addr, c, deadline) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", cases[i].Name, err)
		}
	}
}

func runCase(addr string, c Case, deadline time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetDeadline(start.Add(deadline))
	// Write while reading: the proxy may answer and close before it has
	// read a large input.
	go func() {
		_, _ = conn.Write(c.Input)
		if c.HalfClose {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	got, err := io.ReadAll(conn)
	if err != nil && !isReset(err) {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return fmt.Errorf("no answer and no close within %s (got %q)", deadline, trim(got))
		}
		return fmt.Errorf("read after %s: %v (got %q)", time.Since(start).Round(time.Millisecond), err, trim(got))
	}
	if c.Proxy == "socks" {
		if c.WantSOCKS != nil && !bytes.Equal(got, c.WantSOCKS) {
			return fmt.Errorf("answered % x, want % x", got, c.WantSOCKS)
		}
		return nil
	}
	if len(got) == 0 {
		if c.Want != 0 {
			return fmt.Errorf("closed without an answer, want %d", c.Want)
		}
		return nil
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(got)).ReadLine()
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return fmt.Errorf("answer is not HTTP/1.x: %q", trim(got))
	}
	code, _ := strconv.Atoi(f[1])
	switch {
	case code >= 500 && code != 505:
		return fmt.Errorf("answered %d: %q", code, trim(got))
	case c.Want != 0 && code != c.Want:
		return fmt.Errorf("answered %d, want %d: %q", code, c.Want, trim(got))
	case code == 407 && !bytes.Contains(got, []byte("Proxy-Authenticate: Basic")):
		return fmt.Errorf("407 without Proxy-Authenticate: Basic: %q", trim(got))
	}
	return nil
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func trim(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
