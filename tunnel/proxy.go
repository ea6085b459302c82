package tunnel

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Router opens the outbound side of a proxied connection. node implements
// it with deals and tunnel streams ([OpenStream]); tests dial directly.
//
// Route is called once per proxied connection (per CONNECT, per SOCKS
// request, per upstream connection of plain HTTP forwarding), concurrently
// from many goroutines. target is host:port exactly as the client asked,
// unresolved (socks5h semantics: the provider resolves it). ctx carries the
// front-end's connect timeout and is cancelled on shutdown; Route may block
// until a deal is active (auto-buy) but must give up when ctx is done.
// The returned conn is owned by the caller, who closes it; if it has
// CloseWrite, half-close is passed through. Errors are answered to the
// client by [StatusOf]: return ErrNoRoute, or pass an OpenStream error
// through unchanged. ctx also carries the name of the credential that
// authenticated the client ([CredentialOf]), for a Router that keeps
// accounts per credential.
type Router interface {
	Route(ctx context.Context, route Route, target string) (net.Conn, error)
}

// RouterFunc adapts a function to [Router].
type RouterFunc func(ctx context.Context, route Route, target string) (net.Conn, error)

// Route calls f.
func (f RouterFunc) Route(ctx context.Context, route Route, target string) (net.Conn, error) {
	return f(ctx, route, target)
}

// Front-end defaults.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultConnectTimeout   = 60 * time.Second
	DefaultIdleTimeout      = 2 * time.Minute
	// DefaultTunnelIdleTimeout closes an established tunnel (SOCKS5,
	// CONNECT, and the provider's end of a stream) in which no byte moved
	// either way for that long: a client that vanished without a FIN
	// would otherwise hold its stream, its flow slot and the provider's
	// socket for the rest of the deal.
	DefaultTunnelIdleTimeout = 5 * time.Minute
)

// ProxyOption configures a [SOCKSServer] or an [HTTPProxy].
type ProxyOption func(*proxyConfig)

type proxyConfig struct {
	auth             Authenticator // nil: no credentials asked
	limiter          *AuthLimiter
	handshakeTimeout time.Duration
	connectTimeout   time.Duration
	idleTimeout      time.Duration
	tunnelIdle       time.Duration
	udpIdle          time.Duration
	logger           *slog.Logger
	observer         Observer // nil: nobody is told
	name             string   // "socks" or "http", for the observer
}

func newProxyConfig(opts []ProxyOption) proxyConfig {
	c := proxyConfig{
		handshakeTimeout: DefaultHandshakeTimeout,
		connectTimeout:   DefaultConnectTimeout,
		idleTimeout:      DefaultIdleTimeout,
		tunnelIdle:       DefaultTunnelIdleTimeout,
		udpIdle:          DefaultUDPIdleTimeout,
		logger:           slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&c)
	}
	if c.auth != nil && c.limiter == nil {
		c.limiter = NewAuthLimiter(DefaultAuthBurst, DefaultAuthRefill)
	}
	c.logger = c.logger.With("component", "tunnel")
	return c
}

// WithAuth makes the proxy require a credential: SOCKS5 clients must use
// RFC 1929 username/password, HTTP clients Proxy-Authorization: Basic
// (asked for with 407). The password names the credential, the username
// the route. Without it credentials are optional and the password is
// ignored: only for a loopback listener on a single-user machine.
func WithAuth(a Authenticator) ProxyOption { return func(c *proxyConfig) { c.auth = a } }

// WithPassword is WithAuth with one credential, "default".
func WithPassword(p string) ProxyOption {
	return WithAuth(NewPasswords(map[string]string{"default": p}))
}

// WithAuthLimiter shares a failed-attempt limiter (default: one per
// front-end, DefaultAuthBurst and DefaultAuthRefill).
func WithAuthLimiter(l *AuthLimiter) ProxyOption { return func(c *proxyConfig) { c.limiter = l } }

// WithTunnelIdleTimeout sets how long an established tunnel may carry no
// byte either way before it is closed (default DefaultTunnelIdleTimeout;
// 0 or less: never).
func WithTunnelIdleTimeout(d time.Duration) ProxyOption {
	return func(c *proxyConfig) { c.tunnelIdle = d }
}

// WithHandshakeTimeout bounds reading the client's request.
func WithHandshakeTimeout(d time.Duration) ProxyOption {
	return func(c *proxyConfig) { c.handshakeTimeout = d }
}

// WithConnectTimeout bounds Router.Route (which may wait for auto-buy).
func WithConnectTimeout(d time.Duration) ProxyOption {
	return func(c *proxyConfig) { c.connectTimeout = d }
}

// WithIdleTimeout bounds how long an HTTP keep-alive connection may sit
// between requests.
func WithIdleTimeout(d time.Duration) ProxyOption { return func(c *proxyConfig) { c.idleTimeout = d } }

// WithLogger sets the logger (debug level: one line per refused request).
func WithLogger(l *slog.Logger) ProxyOption { return func(c *proxyConfig) { c.logger = l } }

func (c *proxyConfig) limiterRefill() time.Duration {
	if c.limiter == nil {
		return DefaultAuthRefill
	}
	return c.limiter.refill
}

// serveListener accepts until ctx is done or ln fails, runs handle for each
// connection in its own goroutine, and joins them all before returning.
// handle owns the connection. It returns nil when ctx ends it.
func serveListener(ctx context.Context, ln net.Listener, handle func(context.Context, net.Conn)) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	err := func() error {
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if isTemporaryAccept(err) {
					t := time.NewTimer(50 * time.Millisecond)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return nil
					}
					continue
				}
				return err
			}
			wg.Go(func() { handle(ctx, c) })
		}
	}()
	cancel()
	stop()
	_ = ln.Close()
	wg.Wait()
	return err
}

func isTemporaryAccept(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

// bufferedConn reads from r (which holds bytes already buffered from the
// conn) and writes to the conn.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *bufferedConn) CloseWrite() error          { return closeWrite(b.Conn) }
func (b *bufferedConn) Reset() error               { abort(b.Conn); return nil }
