package tunnel

import (
	"context"
	"crypto/subtle"
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
// through unchanged.
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
)

// ProxyOption configures a [SOCKSServer] or an [HTTPProxy].
type ProxyOption func(*proxyConfig)

type proxyConfig struct {
	password         string
	handshakeTimeout time.Duration
	connectTimeout   time.Duration
	idleTimeout      time.Duration
	logger           *slog.Logger
}

func newProxyConfig(opts []ProxyOption) proxyConfig {
	c := proxyConfig{
		handshakeTimeout: DefaultHandshakeTimeout,
		connectTimeout:   DefaultConnectTimeout,
		idleTimeout:      DefaultIdleTimeout,
		logger:           slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&c)
	}
	c.logger = c.logger.With("component", "tunnel")
	return c
}

// WithPassword makes the proxy require this password with any username
// (SOCKS5 RFC 1929, or Proxy-Authorization: Basic). Without it the
// password is ignored and credentials are optional: the listener is on
// loopback and the username only selects the route.
func WithPassword(p string) ProxyOption { return func(c *proxyConfig) { c.password = p } }

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

func (c *proxyConfig) passwordOK(p string) bool {
	if c.password == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(p), []byte(c.password)) == 1
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
