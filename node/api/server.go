package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ipsx/ipsx/orderbook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits and timeouts.
const (
	// MaxBodySize bounds every request body.
	MaxBodySize = 64 << 10
	// DefaultKeepAlive is the interval of the comment lines that keep an
	// idle event stream (and the proxies on its way) alive.
	DefaultKeepAlive = 15 * time.Second

	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second // event streams lift both and push the write deadline per event
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
)

// Option configures a Server.
type Option func(*config)

type config struct {
	log         *slog.Logger
	metrics     prometheus.Gatherer
	metricsAuth bool
	keepAlive   time.Duration
	maxOrder    int
	now         func() time.Time
	// Connection timeouts (tests shorten them).
	readTimeout, writeTimeout time.Duration
}

// WithLogger sets the logger (default: discard). The server adds
// component=api.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMetrics serves g on GET /metrics (default: no /metrics route).
func WithMetrics(g prometheus.Gatherer) Option { return func(c *config) { c.metrics = g } }

// WithMaxOrderSize bounds the body of POST /v1/orders/import, as gossip
// bounds a message (default orderbook.DefaultMaxSize); a larger order is
// 413 too_large. Set it to the node's orderbook.Params.MaxSize.
func WithMaxOrderSize(n int) Option { return func(c *config) { c.maxOrder = n } }

// WithMetricsAuth puts GET /metrics behind the bearer token as well.
func WithMetricsAuth() Option { return func(c *config) { c.metricsAuth = true } }

// Server serves the local API of one Backend. It is safe for concurrent use.
type Server struct {
	b        Backend
	token    string            // the bearer token (the dashboard's page carries it)
	tokenSum [sha256.Size]byte // digest of the token: compared in constant time whatever the length
	uiSess   [sha256.Size]byte // the dashboard's session cookie (ui.go)
	noTok    bool
	cfg      config
	log      *slog.Logger
	mux      *http.ServeMux
	rts      []route

	closing   chan struct{} // closed when Serve begins shutting down; ends event streams
	closeOnce sync.Once
}

type route struct {
	method, path string
	auth         bool
	h            http.HandlerFunc
}

// New returns a server for backend whose /v1 routes need token. An empty
// token locks every /v1 route (it would otherwise match an empty header).
// New starts nothing.
func New(backend Backend, token string, opts ...Option) *Server {
	cfg := config{keepAlive: DefaultKeepAlive, maxOrder: orderbook.DefaultMaxSize, now: time.Now,
		readTimeout: readTimeout, writeTimeout: writeTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	if cfg.keepAlive <= 0 {
		cfg.keepAlive = DefaultKeepAlive
	}
	s := &Server{
		b:        backend,
		token:    token,
		tokenSum: sha256.Sum256([]byte(token)),
		uiSess:   uiSession(token),
		noTok:    token == "",
		cfg:      cfg,
		log:      cfg.log.With("component", "api"),
		mux:      http.NewServeMux(),
		closing:  make(chan struct{}),
	}
	s.rts = []route{
		{"GET", "/v1/status", true, s.handleStatus},
		{"POST", "/v1/offers", true, handleCreate(s, backend.CreateOffer)},
		{"GET", "/v1/offers", true, s.handleOwn(kindOffer)},
		{"POST", "/v1/requests", true, handleCreate(s, backend.CreateRequest)},
		{"GET", "/v1/requests", true, s.handleOwn(kindRequest)},
		{"GET", "/v1/requests/{id}", true, s.handleRequestDetail},
		{"GET", "/v1/orders", true, s.handleBook},
		{"POST", "/v1/orders/import", true, s.handleImport},
		{"GET", "/v1/orders/{id}", true, s.handleOrder},
		{"DELETE", "/v1/orders/{id}", true, s.handleCancel},
		{"GET", "/v1/events", true, s.handleEvents},
		{"GET", "/v1/openapi.json", true, s.handleOpenAPI},
		{"GET", "/v1/wallet", true, s.handleWallet},
		{"POST", "/v1/wallet/deposit", true, s.handleWalletTx(backend.Deposit)},
		{"POST", "/v1/wallet/withdraw", true, s.handleWalletTx(backend.Withdraw)},
		{"POST", "/v1/wallet/send", true, s.handleSend},
		{"GET", "/v1/deals", true, s.handleDeals},
		{"GET", "/v1/deals/{id}", true, s.handleDeal},
		{"POST", "/v1/deals/{id}/close", true, s.handleCloseDeal},
		{"GET", "/v1/peers", true, s.handlePeers},
		{"POST", "/v1/peers/{peer}/ping", true, s.handlePing},
		{"GET", "/v1/log/level", true, s.handleLogLevel},
		{"PUT", "/v1/log/level", true, s.handleSetLogLevel},
		{"GET", "/healthz", false, s.handleHealth},
		{"GET", "/ui/", false, s.handleUI},
		{"GET", "/ui/{file}", false, s.handleUIFile},
		{"GET", "/ui/login", false, s.handleUILogin},
		{"POST", "/ui/login", false, s.handleUILoginPost},
		{"POST", "/ui/logout", false, s.handleUILogout},
		{"GET", "/v1/vpn", true, s.handleVPN},
		{"POST", "/v1/vpn/up", true, s.handleVPNUp},
		{"POST", "/v1/vpn/down", true, s.handleVPNDown},
	}
	if cfg.metrics != nil {
		mh := promhttp.HandlerFor(cfg.metrics, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		})
		s.rts = append(s.rts, route{"GET", "/metrics", cfg.metricsAuth, mh.ServeHTTP})
	}
	for _, rt := range s.rts {
		h := rt.h
		if rt.auth {
			h = s.requireToken(h)
		}
		s.mux.Handle(rt.method+" "+rt.path, h)
	}
	return s
}

// Routes lists the registered routes as "METHOD /path" patterns.
func (s *Server) Routes() []string {
	out := make([]string, len(s.rts))
	for i, rt := range s.rts {
		out[i] = rt.method + " " + rt.path
	}
	return out
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, ends the event streams, waits a few seconds for requests in
// flight, and closes what is left. It returns nil after a shutdown caused by
// ctx, and closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.cfg.readTimeout,
		WriteTimeout:      s.cfg.writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(jsonListener{ln}) }()
	s.log.Info("API listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		// Serve failed on its own (the listener broke).
		s.closeOnce.Do(func() { close(s.closing) })
		return err
	case <-ctx.Done():
	}
	s.closeOnce.Do(func() { close(s.closing) })
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		s.log.Warn("API shutdown timed out; closing connections", "err", err)
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// serveHTTP wraps the mux: panics become 500s, unknown routes and methods
// get JSON errors, and every request is logged at debug level.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(v)
			}
			s.log.Error("bug: panic in API handler", "method", r.Method, "path", r.URL.Path,
				"panic", v, "stack", string(debug.Stack()))
			if rec.status == 0 {
				writeError(rec, http.StatusInternalServerError, "internal", "internal error")
			}
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start))
	}()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// noRoute answers a request no pattern matched: 405 if the path exists with
// another method, else 404. Under /v1 the token is checked first, so an
// unauthenticated client learns nothing about the routes.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") && !s.authorized(r) {
		s.unauthorized(w)
		return
	}
	var allowed []string
	for _, m := range []string{"GET", "POST", "DELETE", "PUT", "PATCH"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			r.Method+" "+r.URL.Path+" is not allowed; use "+strings.Join(allowed, " or "))
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no route "+r.URL.Path+"; see GET /v1/openapi.json")
}

func (s *Server) requireToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			s.unauthorized(w)
			return
		}
		h(w, r)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.noTok {
		return false
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) == 1
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ipsx"`)
	writeError(w, http.StatusUnauthorized, "unauthorized",
		"missing or wrong bearer token: send \"Authorization: Bearer <token>\" with the token in <datadir>/api.token")
}

// recorder remembers the status for the log and the panic handler. Unwrap
// lets http.ResponseController reach the connection (Flush, deadlines).
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
