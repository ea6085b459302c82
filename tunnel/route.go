package tunnel

import (
	"fmt"
	"strings"
)

// ErrBadRoute is wrapped by ParseRoute's errors: the proxy username does
// not name a route. Front-ends answer it as an authentication failure
// (SOCKS5 RFC 1929 status 1, HTTP 407).
var ErrBadRoute = fmt.Errorf("%w: bad route in proxy username", ErrBadRequest)

// Route is what a proxy username asks for, the way commercial proxy
// networks spell it:
//
//	""                          any active deal, new one per connection
//	"country-DE"                a deal in Germany, rotating per connection
//	"country-DE-session-abc123" a deal in Germany, sticky for session abc123
//	"session-abc123"            any country, sticky
//
// Keys are case-insensitive, each at most once, in any order; the country is
// an ISO 3166-1 alpha-2 code (normalized to upper case), the session 1 to 64
// of [A-Za-z0-9_] (case kept).
type Route struct {
	Country string // "" = any
	Session string // "" = rotate per connection
}

// Sticky reports whether connections of the route keep one IP.
func (r Route) Sticky() bool { return r.Session != "" }

// String returns the canonical username.
func (r Route) String() string {
	var parts []string
	if r.Country != "" {
		parts = append(parts, "country", r.Country)
	}
	if r.Session != "" {
		parts = append(parts, "session", r.Session)
	}
	return strings.Join(parts, "-")
}

// ParseRoute parses a proxy username.
func ParseRoute(username string) (Route, error) {
	var r Route
	if username == "" {
		return r, nil
	}
	if len(username) > 128 {
		return Route{}, fmt.Errorf("%w: too long", ErrBadRoute)
	}
	parts := strings.Split(username, "-")
	if len(parts)%2 != 0 {
		return Route{}, fmt.Errorf("%w: %q: want key-value pairs like country-DE-session-abc", ErrBadRoute, username)
	}
	seen := map[string]bool{}
	for i := 0; i < len(parts); i += 2 {
		key, val := strings.ToLower(parts[i]), parts[i+1]
		if seen[key] {
			return Route{}, fmt.Errorf("%w: %q: %s given twice", ErrBadRoute, username, key)
		}
		seen[key] = true
		switch key {
		case "country":
			if len(val) != 2 || !isAlpha(val[0]) || !isAlpha(val[1]) {
				return Route{}, fmt.Errorf("%w: %q: country must be two letters (ISO 3166-1 alpha-2)", ErrBadRoute, username)
			}
			r.Country = strings.ToUpper(val)
		case "session":
			if val == "" || !validSession(val) {
				return Route{}, fmt.Errorf("%w: %q: session must be 1 to %d letters, digits or '_'", ErrBadRoute, username, maxSessionLen)
			}
			r.Session = val
		default:
			return Route{}, fmt.Errorf("%w: %q: unknown key %q (want country or session)", ErrBadRoute, username, parts[i])
		}
	}
	return r, nil
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
