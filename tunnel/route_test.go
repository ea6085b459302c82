package tunnel

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	ok := map[string]Route{
		"":                          {},
		"country-DE":                {Country: "DE"},
		"country-de":                {Country: "DE"},
		"COUNTRY-us":                {Country: "US"},
		"country-DE-session-abc123": {Country: "DE", Session: "abc123"},
		"session-abc123-country-FR": {Country: "FR", Session: "abc123"},
		"session-X_y9":              {Session: "X_y9"},
	}
	for in, want := range ok {
		got, err := ParseRoute(in)
		if err != nil || got != want {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := ParseRoute(got.String()); err != nil || again != got {
			t.Errorf("canonical %q does not parse back: %+v %v", got.String(), again, err)
		}
	}
	if r, _ := ParseRoute("country-DE-session-abc"); !r.Sticky() || r.String() != "country-DE-session-abc" {
		t.Errorf("sticky route %+v", r)
	}
	bad := []string{
		"country", "country-", "country-DEU", "country-D1", "country-DE-country-FR",
		"session-", "session-a.b", "session-" + strings.Repeat("a", 65), "city-Berlin",
		"country-DE-session", "-", "country-DE-", "user", strings.Repeat("country-DE-", 20),
	}
	for _, in := range bad {
		if _, err := ParseRoute(in); !errors.Is(err, ErrBadRoute) {
			t.Errorf("ParseRoute(%q): got %v, want ErrBadRoute", in, err)
		}
	}
}
