package tunnel

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The front door. A proxy that anyone who can reach it may use spends its
// owner's escrow (and, with auto-buy, buys deals), and on a shared host
// every local user can reach 127.0.0.1. So the proxies ask for a
// credential by default: the password names the credential (several, each
// with its own spending cap, serve a fleet), the username names the route.
// Browsers and Playwright send proxy credentials only when challenged, so
// the HTTP proxy answers every request without them with 407 and
// Proxy-Authenticate: Basic. Failed attempts are rate-limited per source
// address; passwords are compared in constant time.

// ErrRouteRefused: the credential may not use the route now, or no offer
// could ever serve it (the message says which). Answered 403 by the HTTP
// proxy and as an authentication failure by SOCKS5.
var ErrRouteRefused = errors.New("tunnel: route refused")

// Authenticator tells which credential a proxy password belongs to. It is
// called once per SOCKS5 connection and once per HTTP request, from many
// goroutines at once, and must not block for long.
type Authenticator interface {
	// Authenticate returns the name of the credential whose password is
	// pass, or an error: wrapping ErrProxyAuth for a password that is no
	// credential's (it counts against the source's failed attempts), or
	// ErrRouteRefused for a credential that may not be used now (a spent
	// cap).
	Authenticate(pass string) (credential string, err error)
}

// Passwords is an [Authenticator] over a fixed set of named passwords. A
// password is compared with every entry, in constant time and without an
// early exit, so that timing says nothing about how much of it was right
// or which entry it matched.
type Passwords struct {
	names   []string
	digests [][sha256.Size]byte
}

// NewPasswords returns the set; names with an empty password are left out.
func NewPasswords(byName map[string]string) *Passwords {
	p := &Passwords{}
	for name := range byName {
		if byName[name] != "" {
			p.names = append(p.names, name)
		}
	}
	sort.Strings(p.names)
	for _, name := range p.names {
		p.digests = append(p.digests, sha256.Sum256([]byte(byName[name])))
	}
	return p
}

// Lookup returns the name whose password is pass.
func (p *Passwords) Lookup(pass string) (string, bool) {
	d := sha256.Sum256([]byte(pass))
	found, idx := 0, 0
	for i := range p.digests {
		eq := subtle.ConstantTimeCompare(d[:], p.digests[i][:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found == 0 || pass == "" {
		return "", false
	}
	return p.names[idx], true
}

// Authenticate implements [Authenticator].
func (p *Passwords) Authenticate(pass string) (string, error) {
	if name, ok := p.Lookup(pass); ok {
		return name, nil
	}
	return "", fmt.Errorf("%w: wrong password", ErrProxyAuth)
}

// Failed-attempt limits: a source gets DefaultAuthBurst wrong passwords at
// once, then one more every DefaultAuthRefill. With passwords of 128
// random bits that leaves guessing hopeless, while a client with a stale
// password recovers within a minute once it has the new one.
const (
	DefaultAuthBurst  = 20
	DefaultAuthRefill = 3 * time.Second
	maxLimitedSources = 4096
)

// AuthLimiter rate-limits failed proxy authentications per source address
// (IPv6 per /64, what one host usually has). While a source is over its
// limit, every attempt from it is refused before its password is looked
// at, right or wrong. Safe for concurrent use; share one between the SOCKS5
// and HTTP front-ends so both count together.
type AuthLimiter struct {
	mu      sync.Mutex
	burst   int
	refill  time.Duration
	sources map[netip.Prefix]*rate.Limiter
}

// NewAuthLimiter allows burst failures per source, refilled one per refill.
func NewAuthLimiter(burst int, refill time.Duration) *AuthLimiter {
	if burst < 1 {
		burst = 1
	}
	if refill <= 0 {
		refill = DefaultAuthRefill
	}
	return &AuthLimiter{burst: burst, refill: refill, sources: map[netip.Prefix]*rate.Limiter{}}
}

func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// Blocked reports whether src has used up its failed attempts.
func (l *AuthLimiter) Blocked(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.sources[sourceKey(src)]
	return ok && lim.Tokens() < 1
}

// Failed counts a failed attempt from src and reports whether src is now
// blocked.
func (l *AuthLimiter) Failed(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := sourceKey(src)
	lim, ok := l.sources[k]
	if !ok {
		if len(l.sources) >= maxLimitedSources {
			l.sweep()
		}
		lim = rate.NewLimiter(rate.Every(l.refill), l.burst)
		l.sources[k] = lim
	}
	lim.Allow()
	return lim.Tokens() < 1
}

// sweep forgets sources back at a full bucket; if that frees nothing (a
// flood from many addresses), it forgets them all rather than grow.
func (l *AuthLimiter) sweep() {
	for k, lim := range l.sources {
		if lim.Tokens() >= float64(l.burst) {
			delete(l.sources, k)
		}
	}
	if len(l.sources) >= maxLimitedSources {
		clear(l.sources)
	}
}

// RouteChecker is implemented by a [Router] that can tell, right after
// authentication and before a target is asked for, that a route cannot be
// served: no offer matches it, or the credential is over its cap. The
// front-ends then answer the refusal as such (HTTP 403 with the message,
// SOCKS5 an authentication failure) rather than as a failed connection.
// Return an error wrapping ErrRouteRefused to refuse; nil when the route
// may be served (or the checker cannot tell). It must not block for long.
type RouteChecker interface {
	CheckRoute(ctx context.Context, r Route) error
}

type credentialKey struct{}

// CredentialOf returns the name of the credential that authenticated the
// connection a Router is asked to route ("" when the proxy runs without
// authentication).
func CredentialOf(ctx context.Context) string {
	s, _ := ctx.Value(credentialKey{}).(string)
	return s
}

// WithCredential returns ctx carrying a credential name, as the front-ends
// hand it to the Router (tests of a Router use it too).
func WithCredential(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, credentialKey{}, name)
}

// sourceAddr is the client's address, for the failed-attempt limit.
func sourceAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// authResult is what a front-end learned from a client's credentials.
type authResult struct {
	credential string
	route      Route
}

// errAuthBlocked: the source is over its failed-attempt limit.
var errAuthBlocked = fmt.Errorf("%w: too many failed attempts from this address; wait and retry", ErrProxyAuth)

// authenticate checks a client's username and password under cfg, the
// same for both front-ends. With no authenticator the password is ignored
// and the username only selects the route.
func (c *proxyConfig) authenticate(ctx context.Context, router Router, src netip.Addr, user, pass string) (authResult, error) {
	var name string
	if c.auth != nil {
		if c.limiter.Blocked(src) {
			return authResult{}, errAuthBlocked
		}
		var err error
		if name, err = c.auth.Authenticate(pass); err != nil {
			if errors.Is(err, ErrProxyAuth) && c.limiter.Failed(src) {
				c.logger.Warn("proxy logins from this address are refused for a while: too many wrong passwords", "source", src.String())
			}
			return authResult{}, err
		}
	}
	r, err := ParseRoute(user)
	if err != nil {
		return authResult{}, fmt.Errorf("%w: %w", ErrProxyAuth, err)
	}
	if rc, ok := router.(RouteChecker); ok {
		if err := rc.CheckRoute(WithCredential(ctx, name), r); err != nil {
			return authResult{}, err
		}
	}
	return authResult{credential: name, route: r}, nil
}
