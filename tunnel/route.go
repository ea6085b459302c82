package tunnel

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipsx/ipsx/orderbook"
)

// ErrBadRoute is wrapped by ParseRoute's errors: the proxy username does
// not name a route. Front-ends answer it as an authentication failure
// (SOCKS5 RFC 1929 status 1, HTTP 407), with the problem in the message.
var ErrBadRoute = fmt.Errorf("%w: bad route in proxy username", ErrBadRequest)

// Route is what a proxy username asks for. The grammar is the one crawler
// fleets already speak to commercial proxy networks, so that a fleet moves
// to IPSX by changing the proxy address and password only:
//
//	""                                    any deal, a new pick per connection
//	country-DE                            a deal in Germany, rotating
//	country-DE-session-abc123             sticky: one IP for session abc123
//	country-us-city-newyork-session-x-sesstime-30
//	brd-customer-ID-zone-Z-country-us-session-abc   (Bright Data)
//	customer-U-cc-DE-city-berlin-sessid-X-sesstime-10 (Oxylabs)
//	user-country-de-session-abc-sesstime-10
//
// The username is a list of key-value pairs joined by '-', keys
// case-insensitive, each at most once, in any order. Leading account
// prefixes are skipped, since they name the other network's account, not a
// route: "brd-customer-ID-zone-Z-" (and Bright Data's older "lum-…"),
// "customer-ID-", and "user-" (with or without an account name after it).
//
// Keys:
//
//	country, cc      ISO 3166-1 alpha-2 code (upper-cased)
//	region, state, st  the offer's region (IPSX offers carry ISO 3166-2
//	                 subdivision codes, e.g. "be", "ca"); Oxylabs' "us_" prefix
//	                 before a state is dropped; needs a country
//	city             the offer's city, needs a country; compared ignoring case
//	                 and anything but letters and digits ("los_angeles" is
//	                 "Los Angeles")
//	asn              the offer's autonomous system, "3320" or "AS3320"
//	type             residential, mobile or datacenter
//	session, sessid  sticky-session id, 1 to 64 of [A-Za-z0-9_], case kept
//	sesstime         the sticky session's lifetime in minutes (1 to 1440,
//	                 default 10; the deal's end cuts it shorter); needs a
//	                 session
//
// Region and city are kept lower-cased as given; matching folds them
// further (see [Route.Matches]).
type Route struct {
	Country string // "" = any
	Region  string // "" = any
	City    string // "" = any
	ASN     uint32 // 0 = any
	IPType  string // "", "residential", "mobile" or "datacenter"
	Session string // "" = rotate per connection
	// SessTime is the sticky session's lifetime in minutes as the username
	// gave it; 0 means the default ([DefaultSessionTime]).
	SessTime uint16
}

// Session lifetimes (sesstime).
const (
	DefaultSessionTime = 10 * time.Minute
	MaxSessionTime     = 24 * time.Hour
	// MaxUsernameLen bounds a proxy username: what RFC 1929 can carry.
	MaxUsernameLen = 255
	maxRouteText   = 64
)

// Sticky reports whether connections of the route keep one IP.
func (r Route) Sticky() bool { return r.Session != "" }

// SessionTTL is how long a sticky session keeps its deal (before the
// deal's own end).
func (r Route) SessionTTL() time.Duration {
	if r.SessTime == 0 {
		return DefaultSessionTime
	}
	return time.Duration(r.SessTime) * time.Minute
}

// Any reports whether the route leaves the choice of deal open.
func (r Route) Any() bool {
	return r.Country == "" && r.Region == "" && r.City == "" && r.ASN == 0 && r.IPType == ""
}

// String returns the canonical (IPSX) username.
func (r Route) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k, v)
		}
	}
	add("country", r.Country)
	add("region", r.Region)
	add("city", r.City)
	if r.ASN != 0 {
		add("asn", strconv.FormatUint(uint64(r.ASN), 10))
	}
	add("type", r.IPType)
	add("session", r.Session)
	if r.SessTime != 0 {
		add("sesstime", strconv.Itoa(int(r.SessTime)))
	}
	return strings.Join(parts, "-")
}

// Matches reports whether an offer at loc with IP type t can serve the
// route. Region and city compare folded (see [FoldPlace]).
func (r Route) Matches(loc orderbook.Location, t orderbook.IPType) bool {
	switch {
	case r.Country != "" && !strings.EqualFold(r.Country, loc.Country):
		return false
	case r.Region != "" && FoldPlace(r.Region) != FoldPlace(loc.Region):
		return false
	case r.City != "" && FoldPlace(r.City) != FoldPlace(loc.City):
		return false
	case r.ASN != 0 && r.ASN != loc.ASN:
		return false
	case r.IPType != "" && r.IPType != t.String():
		return false
	}
	return true
}

// FoldPlace is the form region and city names compare in: lower case,
// letters and digits only, so "Los Angeles", "los_angeles" and
// "LosAngeles" are one city.
func FoldPlace(s string) string {
	var b strings.Builder
	for _, c := range s {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			b.WriteRune(unicode.ToLower(c))
		}
	}
	return b.String()
}

// routeKeys maps every accepted key to its canonical name.
var routeKeys = map[string]string{
	"country": "country", "cc": "country",
	"region": "region", "state": "region", "st": "region",
	"city":    "city",
	"asn":     "asn",
	"type":    "type",
	"session": "session", "sessid": "session",
	"sesstime": "sesstime",
}

// ParseRoute parses a proxy username. Its errors wrap ErrBadRoute and name
// the problem.
func ParseRoute(username string) (Route, error) {
	var r Route
	if username == "" {
		return r, nil
	}
	bad := func(format string, args ...any) (Route, error) {
		return Route{}, fmt.Errorf("%w: %s: %s", ErrBadRoute, quoteShort(username), fmt.Sprintf(format, args...))
	}
	if len(username) > MaxUsernameLen {
		return bad("longer than %d bytes", MaxUsernameLen)
	}
	if !utf8.ValidString(username) {
		return bad("not UTF-8")
	}
	parts := strings.Split(username, "-")
	low := func(i int) string {
		if i < len(parts) {
			return strings.ToLower(parts[i])
		}
		return ""
	}
	switch {
	case (low(0) == "brd" || low(0) == "lum") && low(1) == "customer":
		if len(parts) < 5 || parts[2] == "" || low(3) != "zone" || parts[4] == "" {
			return bad("Bright Data form is brd-customer-ID-zone-ZONE-…")
		}
		parts = parts[5:]
	case low(0) == "customer":
		if len(parts) < 2 || parts[1] == "" {
			return bad("customer- needs an account name (customer-NAME-…)")
		}
		parts = parts[2:]
	case low(0) == "user":
		parts = parts[1:]
		if len(parts)%2 == 1 {
			parts = parts[1:] // user-NAME-…: the account name
		}
	}
	if len(parts)%2 != 0 {
		return bad("want key-value pairs like country-DE-session-abc")
	}
	seen := map[string]bool{}
	for i := 0; i < len(parts); i += 2 {
		rawKey, val := parts[i], parts[i+1]
		if rawKey == "" {
			return bad("empty key")
		}
		key, ok := routeKeys[strings.ToLower(rawKey)]
		if !ok {
			return bad("unknown key %q (want country, cc, region, state, city, asn, type, session, sessid or sesstime)", rawKey)
		}
		if seen[key] {
			return bad("%s given twice", key)
		}
		seen[key] = true
		if val == "" {
			return bad("%s has no value", key)
		}
		switch key {
		case "country":
			if len(val) != 2 || !isAlpha(val[0]) || !isAlpha(val[1]) {
				return bad("country %q is not two letters (ISO 3166-1 alpha-2)", val)
			}
			r.Country = strings.ToUpper(val)
		case "region", "city":
			v := strings.ToLower(val)
			if !validPlace(v) {
				return bad("%s %q: want 1 to %d letters, digits, '_' or '.'", key, val, maxRouteText)
			}
			if key == "region" {
				r.Region = v
			} else {
				r.City = v
			}
		case "asn":
			v := strings.TrimPrefix(strings.ToLower(val), "as")
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				return bad("asn %q is not a number from 1 to 4294967295", val)
			}
			r.ASN = uint32(n)
		case "type":
			t, err := orderbook.ParseIPType(strings.ToLower(val))
			if err != nil || t == orderbook.IPAny {
				return bad("type %q: want residential, mobile or datacenter", val)
			}
			r.IPType = t.String()
		case "session":
			if !validSession(val) {
				return bad("session %q: want 1 to %d letters, digits or '_'", val, maxSessionLen)
			}
			r.Session = val
		case "sesstime":
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil || n == 0 || time.Duration(n)*time.Minute > MaxSessionTime {
				return bad("sesstime %q: want minutes from 1 to %d", val, int(MaxSessionTime/time.Minute))
			}
			r.SessTime = uint16(n)
		}
	}
	if r.Country != "" && r.Region != "" {
		// Oxylabs writes a state as us_california.
		if p := strings.ToLower(r.Country) + "_"; strings.HasPrefix(r.Region, p) && len(r.Region) > len(p) {
			r.Region = r.Region[len(p):]
		}
	}
	switch {
	case (r.Region != "" || r.City != "") && r.Country == "":
		return bad("region and city need a country (country-XX)")
	case r.SessTime != 0 && r.Session == "":
		return bad("sesstime needs a session (session-ID)")
	}
	return r, nil
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func validPlace(s string) bool {
	if s == "" || len(s) > maxRouteText {
		return false
	}
	for _, c := range s {
		if !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// quoteShort quotes a username for an error, cut to a length a log line
// and a 407 body can carry.
func quoteShort(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}
