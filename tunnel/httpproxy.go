package tunnel

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxHTTPHeaderSize bounds a proxied request's header (request line and
// fields).
const MaxHTTPHeaderSize = 64 << 10

const responseHeaderTimeout = 2 * time.Minute

// Errors of the HTTP proxy's request parser.
var (
	ErrHTTPProxy = fmt.Errorf("%w: http proxy", ErrBadRequest)
	// ErrProxyAuth: credentials missing (when required), malformed, wrong,
	// or a username that is not a route. Answered 407.
	ErrProxyAuth = errors.New("tunnel: proxy authentication failed")
)

// proxyRequest is a parsed, validated proxy request.
type proxyRequest struct {
	req     *http.Request
	connect bool
	target  string // host:port
	route   Route
	// credential is the name of the credential that authenticated the
	// request ("" without authentication).
	credential string
}

// parseProxyRequest validates a request read by http.ReadRequest: CONNECT
// to host:port, or an absolute http:// URI. Credentials are checked
// before, by the handler ([proxyCredentials], proxyConfig.authenticate).
func parseProxyRequest(req *http.Request) (*proxyRequest, error) {
	pr := &proxyRequest{req: req}
	if req.Method == http.MethodConnect {
		pr.connect = true
		// Go parses "CONNECT host:port" into URL.Host; anything else in
		// the request target (a path, a scheme) is not authority-form.
		if req.URL == nil || req.URL.Host == "" || req.URL.Path != "" || req.URL.Scheme != "" || req.RequestURI != req.URL.Host {
			return nil, fmt.Errorf("%w: CONNECT target %q is not host:port", ErrHTTPProxy, req.RequestURI)
		}
		t, err := proxyTarget(req.URL.Host, "")
		if err != nil {
			return nil, err
		}
		pr.target = t
		return pr, nil
	}
	if req.URL == nil || !req.URL.IsAbs() {
		return nil, fmt.Errorf("%w: %q is not an absolute URI (not a proxy request)", ErrHTTPProxy, req.RequestURI)
	}
	if !strings.EqualFold(req.URL.Scheme, "http") {
		return nil, fmt.Errorf("%w: scheme %q (use CONNECT for https)", ErrHTTPProxy, req.URL.Scheme)
	}
	if req.URL.Host == "" {
		return nil, fmt.Errorf("%w: no host in %q", ErrHTTPProxy, req.RequestURI)
	}
	t, err := proxyTarget(req.URL.Host, "80")
	if err != nil {
		return nil, err
	}
	pr.target = t
	return pr, nil
}

// proxyTarget validates an authority (host[:port]) and returns host:port.
func proxyTarget(authority, defaultPort string) (string, error) {
	host, port := authority, defaultPort
	if h, p, err := net.SplitHostPort(authority); err == nil {
		host, port = h, p
	} else if defaultPort == "" || strings.HasPrefix(authority, "[") && !strings.HasSuffix(authority, "]") {
		return "", fmt.Errorf("%w: authority %q: %v", ErrHTTPProxy, authority, err)
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(authority, "["), "]")
	}
	h, err := canonicalHost(host)
	if err != nil {
		return "", fmt.Errorf("%w: authority %q: %v", ErrHTTPProxy, authority, err)
	}
	t := net.JoinHostPort(h, port)
	if _, _, err := splitTarget(t); err != nil {
		return "", fmt.Errorf("%w: authority %q: bad port", ErrHTTPProxy, authority)
	}
	return t, nil
}

// errNoCredentials: a request without Proxy-Authorization to a proxy that
// wants one. Browsers send none until challenged, so it is no failed
// attempt: the 407 is how they learn to send them.
var errNoCredentials = fmt.Errorf("%w: proxy credentials required: send Proxy-Authorization: Basic with the proxy password, and a route as the username (e.g. country-DE)", ErrProxyAuth)

// proxyCredentials reads Proxy-Authorization: Basic. ok is false when the
// request carries none.
func proxyCredentials(h http.Header) (user, pass string, ok bool, err error) {
	vals := h.Values("Proxy-Authorization")
	if len(vals) == 0 {
		return "", "", false, nil
	}
	if len(vals) > 1 {
		return "", "", true, fmt.Errorf("%w: several Proxy-Authorization fields", ErrProxyAuth)
	}
	scheme, cred, found := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !found || !strings.EqualFold(scheme, "basic") {
		return "", "", true, fmt.Errorf("%w: only Basic is supported", ErrProxyAuth)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", true, fmt.Errorf("%w: bad base64", ErrProxyAuth)
	}
	user, pass, found = strings.Cut(string(raw), ":")
	if !found {
		return "", "", true, fmt.Errorf("%w: no ':' in credentials", ErrProxyAuth)
	}
	return user, pass, true, nil
}

// hopByHop are the fields a proxy must not forward (RFC 9110 section 7.6.1),
// plus the proxy's own.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func stripHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, f := range hopByHop {
		h.Del(f)
	}
}

// HTTPProxy is the requester's HTTP proxy front-end: CONNECT tunnels, and
// absolute-URI forwarding of plain http:// requests with keep-alive on both
// sides. The Proxy-Authorization: Basic username selects the [Route], as
// the SOCKS5 username does.
type HTTPProxy struct {
	router Router
	cfg    proxyConfig
}

// NewHTTPProxy returns a proxy handing connections to r. It starts nothing.
func NewHTTPProxy(r Router, opts ...ProxyOption) *HTTPProxy {
	cfg := newProxyConfig(opts)
	cfg.name = "http"
	return &HTTPProxy{router: r, cfg: cfg}
}

// Serve accepts connections on ln until ctx is done or ln fails, and
// returns after every connection it accepted is closed. It closes ln.
func (p *HTTPProxy) Serve(ctx context.Context, ln net.Listener) error {
	return serveListener(ctx, ln, p.handle)
}

// upstream is the connection plain forwarding keeps open between requests
// of one client connection, reused while the route and target stay the
// same. Only the handler goroutine sets conn (under mu); shutdown closes it
// from another goroutine (under mu).
type upstream struct {
	mu     sync.Mutex
	dead   bool
	conn   net.Conn
	br     *bufio.Reader
	route  Route
	target string
	cred   string
}

func (u *upstream) set(conn net.Conn, route Route, target, cred string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dead {
		_ = conn.Close()
		return false
	}
	u.conn, u.br, u.route, u.target, u.cred = conn, bufio.NewReader(conn), route, target, cred
	return true
}

func (u *upstream) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil {
		_ = u.conn.Close()
		u.conn = nil
	}
}

// kill closes the connection for good (shutdown).
func (u *upstream) kill() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.dead = true
	if u.conn != nil {
		abort(u.conn)
	}
}

func (p *HTTPProxy) handle(ctx context.Context, c net.Conn) {
	lr := &io.LimitedReader{R: c, N: MaxHTTPHeaderSize}
	rec := &headRecorder{r: lr}
	br := bufio.NewReaderSize(rec, 4096)
	var up upstream
	defer up.close()
	stop := context.AfterFunc(ctx, func() { abort(c); up.kill() })
	defer stop()
	src := sourceAddr(c)

	for first := true; ; first = false {
		timeout := p.cfg.idleTimeout
		if first {
			timeout = p.cfg.handshakeTimeout
		}
		_ = c.SetDeadline(time.Now().Add(timeout))
		lr.N = MaxHTTPHeaderSize
		req, err := readRequestHead(br, rec)
		if err != nil {
			switch {
			case errors.Is(err, errVersion):
				p.fail(c, http.StatusHTTPVersionNotSupported, StatusBadRequest, err.Error())
			case errors.Is(err, errFraming):
				p.fail(c, http.StatusBadRequest, StatusBadRequest, err.Error())
			case lr.N <= 0:
				p.fail(c, http.StatusRequestHeaderFieldsTooLarge, StatusBadRequest, "request header too large")
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isTimeout(err), errors.Is(err, net.ErrClosed):
				// The client went away or idled out: nobody to answer,
				// no request to count.
				p.cfg.logger.Debug("http proxy request", "source", src.String(), "err", err)
				_ = c.Close()
				return
			default:
				p.fail(c, http.StatusBadRequest, StatusBadRequest, "malformed request")
			}
			p.cfg.observe(ResultBadRequest)
			p.cfg.logger.Debug("http proxy request", "source", src.String(), "err", err)
			_ = c.Close()
			return
		}
		// The body is bounded by its own framing, not by the header limit.
		lr.N = math.MaxInt64
		pr, code, err := p.admit(ctx, src, req)
		if err != nil {
			p.cfg.logger.Debug("http proxy request", "source", src.String(), "status", code, "err", err)
			st := StatusOf(err)
			if code == http.StatusProxyAuthRequired || code == http.StatusTooManyRequests {
				st = StatusUnauthorized
			}
			if r := ResultOf(err); code == http.StatusBadRequest || r == ResultOK || r == ResultError {
				p.cfg.observe(ResultBadRequest)
			} else {
				p.cfg.observe(r)
			}
			p.fail(c, code, st, err.Error())
			_ = c.Close()
			return
		}
		if pr.connect {
			p.connect(ctx, c, br, pr)
			return
		}
		if !p.forward(ctx, c, br, pr, &up) {
			return
		}
	}
}

// admit checks a request's credentials, then its form, and returns the
// status to refuse it with: 407 for missing or wrong credentials or a
// username that is no route (with Proxy-Authenticate, so browsers ask
// again), 429 for a source over its failed attempts, 403 for a route the
// credential may not use, 400 for a request that is not a proxy request.
func (p *HTTPProxy) admit(ctx context.Context, src netip.Addr, req *http.Request) (*proxyRequest, int, error) {
	user, pass, present, err := proxyCredentials(req.Header)
	if err == nil && !present && p.cfg.auth != nil {
		err = errNoCredentials
	}
	var auth authResult
	if err == nil {
		auth, err = p.cfg.authenticate(ctx, p.router, src, user, pass)
	}
	switch {
	case errors.Is(err, errAuthBlocked):
		return nil, http.StatusTooManyRequests, err
	case errors.Is(err, ErrRouteRefused):
		return nil, http.StatusForbidden, err
	case err != nil:
		return nil, http.StatusProxyAuthRequired, err
	}
	pr, err := parseProxyRequest(req)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	pr.route, pr.credential = auth.route, auth.credential
	return pr, 0, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connect serves CONNECT: route, answer 200, splice. Bytes the client sent
// after the request (a pipelined TLS ClientHello) are in br and go first.
func (p *HTTPProxy) connect(ctx context.Context, c net.Conn, br *bufio.Reader, pr *proxyRequest) {
	rctx, cancel := context.WithTimeout(WithCredential(ctx, pr.credential), p.cfg.connectTimeout)
	up, err := p.router.Route(rctx, pr.route, pr.target)
	cancel()
	p.cfg.observe(ResultOf(err))
	if err != nil {
		st := StatusOf(err)
		p.cfg.logger.Debug("http proxy connect", "route", pr.route.String(), "status", st.String(), "err", err)
		p.fail(c, st.HTTPStatus(), st, err.Error())
		_ = c.Close()
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(p.cfg.handshakeTimeout))
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		abort(c)
		abort(up)
		return
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		abort(c)
		abort(up)
		return
	}
	_, _, _ = splice(ctx, &bufferedConn{Conn: c, r: br}, up, nil, p.cfg.tunnelIdle)
}

// forward serves one plain http:// request and reports whether the client
// connection may carry another.
func (p *HTTPProxy) forward(ctx context.Context, c net.Conn, br *bufio.Reader, pr *proxyRequest, up *upstream) bool {
	req := pr.req
	if up.conn != nil && (up.route != pr.route || up.target != pr.target || up.cred != pr.credential) {
		up.close()
	}

	stripHopByHop(req.Header)
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // or Write adds Go's
	}
	req.URL.User = nil
	req.RequestURI = ""
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		// Request.Write sends the body right after the header, so answer
		// the client's expectation here rather than relay the server's
		// (the client would stall until its own timeout).
		req.Header.Del("Expect")
		if req.ContentLength != 0 {
			if _, err := io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				abort(c)
				return false
			}
		}
	}
	// Reading the client's body while writing upstream: no deadline, the
	// transfer may be long; shutdown aborts both.
	_ = c.SetDeadline(time.Time{})

	var resp *http.Response
	for attempt := 0; ; attempt++ {
		reused := up.conn != nil
		if !reused {
			rctx, cancel := context.WithTimeout(WithCredential(ctx, pr.credential), p.cfg.connectTimeout)
			conn, err := p.router.Route(rctx, pr.route, pr.target)
			cancel()
			if err != nil {
				p.cfg.observe(ResultOf(err))
				st := StatusOf(err)
				p.cfg.logger.Debug("http proxy forward", "route", pr.route.String(), "status", st.String(), "err", err)
				p.fail(c, st.HTTPStatus(), st, err.Error())
				_ = c.Close()
				return false
			}
			if !up.set(conn, pr.route, pr.target, pr.credential) {
				return false
			}
		}
		var relayed1xx bool
		var err error
		resp, relayed1xx, err = p.exchange(c, req, up)
		if err == nil {
			break
		}
		if errors.Is(err, errClientGone) {
			abort(c)
			return false
		}
		// A reused upstream the server closed while idle: retry a request
		// that is safe to repeat once on a fresh connection, as
		// net/http's Transport does.
		up.close()
		if reused && attempt == 0 && !relayed1xx && retryable(req) {
			continue
		}
		st := StatusGeneralFailure
		if isTimeout(err) {
			st = StatusTimeout
		}
		p.cfg.observe(ResultOf(&StatusError{Status: st}))
		p.fail(c, st.HTTPStatus(), st, err.Error())
		_ = c.Close()
		return false
	}
	_ = up.conn.SetReadDeadline(time.Time{})
	p.cfg.observe(ResultOK)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// Upgrade was stripped, so the server had no business switching.
		_ = resp.Body.Close()
		p.fail(c, http.StatusBadGateway, StatusGeneralFailure, "upstream switched protocols")
		_ = c.Close()
		return false
	}
	stripHopByHop(resp.Header)
	keep := !req.Close && !resp.Close
	resp.Close = !keep
	err := resp.Write(c)
	_ = resp.Body.Close()
	if err != nil {
		abort(c)
		up.close()
		return false
	}
	if !keep {
		_ = c.Close()
		return false
	}
	return true
}

var errClientGone = errors.New("tunnel: proxy client went away")

// exchange writes req upstream and reads the response header, relaying 1xx
// responses to the client.
func (p *HTTPProxy) exchange(c net.Conn, req *http.Request, up *upstream) (*http.Response, bool, error) {
	if err := req.Write(up.conn); err != nil {
		return nil, false, fmt.Errorf("forward request: %w", err)
	}
	_ = up.conn.SetReadDeadline(time.Now().Add(responseHeaderTimeout))
	relayed := false
	for {
		resp, err := http.ReadResponse(up.br, req)
		if err != nil {
			return nil, relayed, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, relayed, nil
		}
		// 1xx (100 Continue, 103 Early Hints) go through as they are.
		relayed = true
		if err := resp.Write(c); err != nil {
			return nil, relayed, errClientGone
		}
	}
}

func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// fail writes a short error response with Connection: close and a
// Proxy-Status field (RFC 9209).
func (p *HTTPProxy) fail(c net.Conn, code int, st Status, msg string) {
	_ = c.SetWriteDeadline(time.Now().Add(p.cfg.handshakeTimeout))
	body := msg + "\n"
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("Connection: close\r\n")
	switch code {
	case http.StatusProxyAuthRequired:
		b.WriteString("Proxy-Authenticate: Basic realm=\"ipsx\"\r\n")
	case http.StatusTooManyRequests:
		b.WriteString("Retry-After: " + strconv.Itoa(int(p.cfg.limiterRefill().Seconds())+1) + "\r\n")
	}
	b.WriteString("Proxy-Status: ipsx; error=" + proxyStatusError(st) + "\r\n")
	b.WriteString("\r\n")
	b.WriteString(body)
	_, _ = io.WriteString(c, b.String())
}

func proxyStatusError(st Status) string {
	switch st {
	case StatusNotAllowed:
		return "destination_ip_prohibited"
	case StatusDNSFailure:
		return "dns_error"
	case StatusRefused:
		return "connection_refused"
	case StatusTimeout:
		return "connection_timeout"
	case StatusNetUnreachable, StatusHostUnreachable:
		return "destination_ip_unroutable"
	case StatusUnauthorized, StatusDealInactive, StatusNotPaid, StatusNoRoute, StatusRouteRefused:
		return "http_request_denied"
	case StatusBadRequest:
		return "http_request_error"
	default:
		return "proxy_internal_error"
	}
}
