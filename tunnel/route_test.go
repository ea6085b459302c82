package tunnel

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipsx/ipsx/orderbook"
)

// TestParseRoute is the username grammar's table: the forms Bright Data,
// Oxylabs and IPSX users write, each with the route it gives, and bad
// ones, each with its exact problem.
func TestParseRoute(t *testing.T) {
	ok := []struct {
		in   string
		want Route
	}{
		// IPSX's own forms.
		{"", Route{}},
		{"country-DE", Route{Country: "DE"}},
		{"country-de", Route{Country: "DE"}},
		{"COUNTRY-us", Route{Country: "US"}},
		{"country-DE-session-abc123", Route{Country: "DE", Session: "abc123"}},
		{"session-abc123-country-FR", Route{Country: "FR", Session: "abc123"}},
		{"session-X_y9", Route{Session: "X_y9"}},
		{"country-DE-region-be-city-berlin", Route{Country: "DE", Region: "be", City: "berlin"}},
		{"country-DE-asn-3320", Route{Country: "DE", ASN: 3320}},
		{"asn-AS3320", Route{ASN: 3320}},
		{"type-mobile", Route{IPType: "mobile"}},
		{"country-US-type-DataCenter-session-s1-sesstime-30", Route{Country: "US", IPType: "datacenter", Session: "s1", SessTime: 30}},
		{"Country-JP-City-Tokyo-Type-Residential", Route{Country: "JP", City: "tokyo", IPType: "residential"}},
		// Bright Data.
		{"brd-customer-hl_1234abcd-zone-residential1-country-us-session-abc", Route{Country: "US", Session: "abc"}},
		{"brd-customer-ID-zone-Z-country-us-state-ny-city-newyork", Route{Country: "US", Region: "ny", City: "newyork"}},
		{"brd-customer-ID-zone-Z-asn-56386", Route{ASN: 56386}},
		{"brd-customer-ID-zone-Z", Route{}},
		{"lum-customer-c_1-zone-static-country-gb", Route{Country: "GB"}},
		{"BRD-Customer-ID-Zone-Z-Country-DE", Route{Country: "DE"}},
		// Oxylabs.
		{"customer-U-cc-DE-city-berlin-sessid-X-sesstime-10", Route{Country: "DE", City: "berlin", Session: "X", SessTime: 10}},
		{"customer-acme_1-cc-US-st-us_california-city-los_angeles", Route{Country: "US", Region: "california", City: "los_angeles"}},
		{"customer-U", Route{}},
		{"user-country-de-session-abc-sesstime-10", Route{Country: "DE", Session: "abc", SessTime: 10}},
		{"user-bob-country-de", Route{Country: "DE"}},
		{"user", Route{}},
	}
	for _, tt := range ok {
		got, err := ParseRoute(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if again, err := ParseRoute(got.String()); err != nil || again != got {
			t.Errorf("canonical %q of %q does not parse back: %+v %v", got.String(), tt.in, again, err)
		}
	}

	long := strings.Repeat("country-DE-", 30)
	bad := []struct{ in, problem string }{
		{"country", "want key-value pairs like country-DE-session-abc"},
		{"country-", "country has no value"},
		{"country-DEU", `country "DEU" is not two letters (ISO 3166-1 alpha-2)`},
		{"country-D1", `country "D1" is not two letters (ISO 3166-1 alpha-2)`},
		{"country-DE-country-FR", "country given twice"},
		{"country-DE-cc-FR", "country given twice"},
		{"session-", "session has no value"},
		{"session-a.b", `session "a.b": want 1 to 64 letters, digits or '_'`},
		{"session-" + strings.Repeat("a", 65), `session "` + strings.Repeat("a", 65) + `": want 1 to 64 letters, digits or '_'`},
		{"city-Berlin", "region and city need a country (country-XX)"},
		{"country-DE-session", "want key-value pairs like country-DE-session-abc"},
		{"-", "empty key"},
		{"country-DE-", "want key-value pairs like country-DE-session-abc"},
		{"country-DE-zip-10115", `unknown key "zip" (want country, cc, region, state, city, asn, type, session, sessid or sesstime)`},
		{"brd-customer-ID-zone-Z-country-us-dns-remote", `unknown key "dns" (want country, cc, region, state, city, asn, type, session, sessid or sesstime)`},
		{"brd-customer-ID-country-us", "Bright Data form is brd-customer-ID-zone-ZONE-…"},
		{"brd-customer", "Bright Data form is brd-customer-ID-zone-ZONE-…"},
		{"customer-", "customer- needs an account name (customer-NAME-…)"},
		{"country-DE-type-vpn", `type "vpn": want residential, mobile or datacenter`},
		{"type-any", `type "any": want residential, mobile or datacenter`},
		{"asn-0", `asn "0" is not a number from 1 to 4294967295`},
		{"asn-AS", `asn "AS" is not a number from 1 to 4294967295`},
		{"asn-99999999999", `asn "99999999999" is not a number from 1 to 4294967295`},
		{"country-DE-session-a-sesstime-0", `sesstime "0": want minutes from 1 to 1440`},
		{"country-DE-session-a-sesstime-1441", `sesstime "1441": want minutes from 1 to 1440`},
		{"country-DE-session-a-sesstime-ten", `sesstime "ten": want minutes from 1 to 1440`},
		{"country-DE-sesstime-10", "sesstime needs a session (session-ID)"},
		{"country-DE-city-new york", `city "new york": want 1 to 64 letters, digits, '_' or '.'`},
		{"country-DE-city-" + strings.Repeat("x", 65), `city "` + strings.Repeat("x", 65) + `": want 1 to 64 letters, digits, '_' or '.'`},
		{"user-a-b-country-de", `unknown key "a" (want country, cc, region, state, city, asn, type, session, sessid or sesstime)`},
		{"country-\xff\xfe", "not UTF-8"},
		{long, "longer than 255 bytes"},
	}
	for _, tt := range bad {
		_, err := ParseRoute(tt.in)
		if !errors.Is(err, ErrBadRoute) {
			t.Errorf("ParseRoute(%q): got %v, want ErrBadRoute", tt.in, err)
			continue
		}
		want := ErrBadRoute.Error() + ": " + quoteShort(tt.in) + ": " + tt.problem
		if err.Error() != want {
			t.Errorf("ParseRoute(%q):\n got %s\nwant %s", tt.in, err, want)
		}
	}
	if n := len(ok) + len(bad); n < 30 {
		t.Errorf("only %d usernames in the table", n)
	}
	if r, _ := ParseRoute("country-DE-session-abc"); !r.Sticky() || r.String() != "country-DE-session-abc" || r.SessionTTL() != DefaultSessionTime {
		t.Errorf("sticky route %+v", r)
	}
	if r, _ := ParseRoute("country-DE-session-abc-sesstime-30"); r.SessionTTL() != 30*60e9 {
		t.Errorf("sesstime 30: TTL %s", r.SessionTTL())
	}
	if got := quoteShort(long); !strings.HasSuffix(got, "… (330 bytes)") || len(got) > 90 {
		t.Errorf("a long username is quoted as %s", got)
	}
}

func TestRouteMatches(t *testing.T) {
	berlin := orderbook.Location{Country: "DE", Region: "BE", City: "Berlin", ASN: 3320}
	la := orderbook.Location{Country: "US", Region: "CA", City: "Los Angeles", ASN: 7922}
	for _, tt := range []struct {
		user string
		loc  orderbook.Location
		typ  orderbook.IPType
		want bool
	}{
		{"", berlin, orderbook.IPMobile, true},
		{"country-de", berlin, orderbook.IPResidential, true},
		{"country-US", berlin, orderbook.IPResidential, false},
		{"country-DE-city-berlin", berlin, orderbook.IPResidential, true},
		{"country-DE-city-munich", berlin, orderbook.IPResidential, false},
		{"country-DE-state-be", berlin, orderbook.IPResidential, true},
		{"country-US-city-los_angeles", la, orderbook.IPResidential, true},
		{"country-US-city-losangeles", la, orderbook.IPResidential, true},
		{"asn-3320", berlin, orderbook.IPResidential, true},
		{"asn-3321", berlin, orderbook.IPResidential, false},
		{"type-mobile", berlin, orderbook.IPMobile, true},
		{"type-mobile", berlin, orderbook.IPDatacenter, false},
		{"country-DE-city-berlin", orderbook.Location{Country: "DE"}, orderbook.IPResidential, false},
	} {
		r, err := ParseRoute(tt.user)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Matches(tt.loc, tt.typ); got != tt.want {
			t.Errorf("%q matches %+v %s: %v, want %v", tt.user, tt.loc, tt.typ, got, tt.want)
		}
	}
}

// FuzzParseRoute: no username panics the parser; what it accepts has a
// canonical form that parses back to the same route, within the limits of
// the tunnel header (a session it can carry).
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"", "country-DE", "brd-customer-ID-zone-Z-country-us-session-abc",
		"customer-U-cc-DE-city-berlin-sessid-X-sesstime-10", "user-country-de-session-abc-sesstime-10",
		"country-US-st-us_california-asn-AS7922-type-mobile", "user-a-b", "-", "--", "country-\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoute(s)
		if err != nil {
			if !errors.Is(err, ErrBadRoute) {
				t.Fatalf("error %v does not wrap ErrBadRoute", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		again, err := ParseRoute(r.String())
		if err != nil || again != r {
			t.Fatalf("%q: canonical %q gives %+v, %v", s, r.String(), again, err)
		}
		if !validSession(r.Session) {
			t.Fatalf("%q: session %q the header cannot carry", s, r.Session)
		}
	})
}
