package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// The dashboard: plain HTML, CSS and JavaScript embedded in the binary (no
// front-end toolchain), served under /ui/ on the API listener. It uses
// only the public REST API and the event stream, with the API token.
//
// Access is the token's, as for /v1: the login page (the only page served
// without it) takes the token and sets a cookie derived from it
// (HttpOnly, SameSite=Strict, path /ui/); every other /ui/ file needs the
// cookie. The app page carries the token in a meta tag for its own API
// calls, which send it as a bearer token: /v1 never accepts the cookie,
// so another page (any origin, loopback ones too) cannot make the
// browser act on the API (no CSRF), and cannot read the app page either
// (the same-origin policy). A strict Content-Security-Policy allows
// scripts and styles from /ui/ only.

//go:embed ui
var uiFiles embed.FS

const uiCookie = "ipsx_ui"

// uiSecurity are the headers of every /ui/ answer.
func uiSecurity(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// uiSession is the cookie value the token gives: a digest, so the cookie
// is never the token itself.
func uiSession(token string) [sha256.Size]byte {
	return sha256.Sum256([]byte("ipsx-ui-session\x00" + token))
}

func (s *Server) uiAuthorized(r *http.Request) bool {
	if s.noTok {
		return false
	}
	c, err := r.Cookie(uiCookie)
	if err != nil {
		return false
	}
	got, err := hex.DecodeString(c.Value)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(got, s.uiSess[:]) == 1
}

// handleUI serves GET /ui/: the app page for a logged-in browser, else a
// redirect to the login page.
func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ui/" {
		s.handleUIFile(w, r)
		return
	}
	uiSecurity(w.Header())
	if !s.uiAuthorized(r) {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	var b bytes.Buffer
	if err := uiApp.Execute(&b, struct{ Token string }{s.token}); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

var uiApp = template.Must(template.ParseFS(uiFiles, "ui/index.html"))

// uiPublic are the files served without the cookie: the login page's.
var uiPublic = map[string]bool{"login.js": true, "style.css": true}

// handleUIFile serves GET /ui/{file}: a static file of the dashboard.
func (s *Server) handleUIFile(w http.ResponseWriter, r *http.Request) {
	uiSecurity(w.Header())
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "" || strings.Contains(name, "/") || name == "index.html" || name == "login.html" {
		writeError(w, http.StatusNotFound, "not_found", "no dashboard file "+truncate(r.URL.Path))
		return
	}
	if !uiPublic[name] && !s.uiAuthorized(r) {
		writeError(w, http.StatusUnauthorized, "unauthorized", "log in at /ui/login first")
		return
	}
	b, err := uiFiles.ReadFile("ui/" + name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no dashboard file "+truncate(r.URL.Path))
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(b)
}

// handleUILogin serves GET /ui/login: the login page.
func (s *Server) handleUILogin(w http.ResponseWriter, r *http.Request) {
	s.loginPage(w, http.StatusOK, "")
}

func (s *Server) loginPage(w http.ResponseWriter, status int, msg string) {
	uiSecurity(w.Header())
	var b bytes.Buffer
	if err := uiLogin.Execute(&b, struct{ Error string }{msg}); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

var uiLogin = template.Must(template.ParseFS(uiFiles, "ui/login.html"))

// handleUILoginPost serves POST /ui/login: a form with the token; the
// right one sets the session cookie and goes to the app.
func (s *Server) handleUILoginPost(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
			s.loginPage(w, http.StatusUnsupportedMediaType, "send the login form (application/x-www-form-urlencoded)")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	if err != nil {
		s.loginPage(w, http.StatusRequestEntityTooLarge, "the form is too large")
		return
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		s.loginPage(w, http.StatusBadRequest, "the form does not parse")
		return
	}
	tok := strings.TrimSpace(vals.Get("token"))
	got := sha256.Sum256([]byte(tok))
	if s.noTok || subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) != 1 {
		s.log.Info("dashboard login refused", "source", r.RemoteAddr)
		s.loginPage(w, http.StatusUnauthorized, "wrong token: it is in <datadir>/api.token")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: hex.EncodeToString(s.uiSess[:]), Path: "/ui/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	uiSecurity(w.Header())
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// handleUILogout serves POST /ui/logout: the cookie goes.
func (s *Server) handleUILogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	uiSecurity(w.Header())
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
