package api_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ipsx/ipsx/node/api/apitest"
)

// TestDashboardLogin: /ui/ is behind the token by way of the login page's
// cookie; the cookie is not the token and opens no /v1 route; the app
// page carries the token for its own calls; every page has a strict CSP.
func TestDashboardLogin(t *testing.T) {
	b := apitest.NewBackend(t)
	ts, token := b.Server(t)
	hc := ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	do := func(method, path, body string, cookie *http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, _ := do("GET", "/ui/", "", nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("/ui/ logged out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := do("GET", "/ui/login", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="token"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("login page: %d %v", resp.StatusCode, resp.Header)
	}
	for path, want := range map[string]int{"/ui/app.js": 401, "/ui/login.js": 200, "/ui/style.css": 200, "/ui/index.html": 404, "/ui/nosuch.js": 401, "/ui/a/b": 404} {
		if resp, _ := do("GET", path, "", nil); resp.StatusCode != want {
			t.Errorf("%s logged out: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, body = do("POST", "/ui/login", "token=wrong", nil)
	if resp.StatusCode != 401 || !strings.Contains(body, "wrong token") || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d %q", resp.StatusCode, body)
	}
	resp, _ = do("POST", "/ui/login", "token="+url.QueryEscape(token), nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/" || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %v", resp.StatusCode, resp.Header)
	}
	c := resp.Cookies()[0]
	if c.Name != "ipsx_ui" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || strings.Contains(c.Value, token) {
		t.Fatalf("cookie %+v", c)
	}
	resp, body = do("GET", "/ui/", "", c)
	if resp.StatusCode != 200 || !strings.Contains(body, `<meta name="ipsx-token" content="`+token+`">`) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("app page: %d %s", resp.StatusCode, body)
	}
	if resp, body := do("GET", "/ui/app.js", "", c); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(body, "Last-Event-ID") {
		t.Fatalf("app.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := do("GET", "/v1/status", "", c); resp.StatusCode != 401 {
		t.Fatalf("/v1 with the dashboard cookie alone: %d", resp.StatusCode)
	}
	resp, _ = do("POST", "/ui/logout", "", c)
	if resp.StatusCode != 303 || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %v", resp.StatusCode, resp.Cookies())
	}
	if resp, _ := do("POST", "/ui/login", strings.Repeat("x", 10<<10), nil); resp.StatusCode != 413 {
		t.Errorf("huge form: %d", resp.StatusCode)
	}
}
