package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ipsx/ipsx/sdk"
)

// ErrNoLogLevel is what a backend answers to a log level change when its
// logger cannot change level at runtime.
var ErrNoLogLevel = errors.New("api: this node's log level is fixed (it was started without a level it can change)")

// handleHealth serves GET /healthz without a token: 200 when ready, 503
// when alive but not ready, and the checks either way. Load balancers and
// orchestrators poll it; it carries no address, peer or amount.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r.URL.Query()); err != nil {
		s.fail(w, r, err)
		return
	}
	h := s.b.Health(r.Context())
	if h.Checks == nil {
		h.Checks = []sdk.HealthCheck{}
	}
	status := http.StatusOK
	h.Status = "ok"
	if !h.Live || !h.Ready {
		status, h.Status = http.StatusServiceUnavailable, "unavailable"
	}
	writeJSON(w, status, h)
}

func (s *Server) handleLogLevel(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r.URL.Query()); err != nil {
		s.fail(w, r, err)
		return
	}
	l, err := s.b.LogLevel(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) handleSetLogLevel(w http.ResponseWriter, r *http.Request) {
	var p sdk.LogLevel
	if err := readJSON(w, r, &p); err != nil {
		s.fail(w, r, err)
		return
	}
	lvl, err := ParseLevel(p.Level)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	l, err := s.b.SetLogLevel(r.Context(), lvl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("log level changed", "level", l.Level)
	writeJSON(w, http.StatusOK, l)
}

// ParseLevel reads a log level name: debug, info, warn (or warning),
// error, in any case.
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, badInput("level %q: want debug, info, warn or error", truncate(name))
}

// LevelName is the lower-case name ParseLevel reads back.
func LevelName(l slog.Level) string {
	switch {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	}
	return "error"
}
