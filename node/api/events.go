package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// handleEvents streams the backend's events as server-sent events:
//
//	event: <type>
//	data: <the sdk.Event as one line of JSON>
//
// with a comment line every keep-alive interval. The subscription is made
// before the headers are sent, so a client that has the 200 sees every
// event published after it. The stream ends when the client goes away, the
// backend closes the subscription (after a last "error" event if the
// client fell behind), or the server shuts down.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r.URL.Query()); err != nil {
		s.fail(w, r, err)
		return
	}
	events, stop := s.b.Subscribe()
	defer stop()

	rc := http.NewResponseController(w)
	// The server's ReadTimeout does not end a stream: net/http lifts the
	// read deadline once the request is read (TestEventStreamOutlivesTimeouts).
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	// push writes what is buffered and flushes it to the client under a
	// fresh write deadline (the server's WriteTimeout would otherwise end
	// every stream after a minute).
	push := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout))
		if err := bw.Flush(); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	_, _ = bw.WriteString(": ipsx events\n\n")
	if !push() {
		return
	}
	tick := time.NewTicker(s.cfg.keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-tick.C:
			_, _ = bw.WriteString(": keep-alive\n\n")
			if !push() {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			data, err := json.Marshal(ev)
			if err != nil {
				s.log.Error("encode event", "type", ev.Type, "err", err)
				continue
			}
			// The type goes on a line of its own; a newline in it would
			// end the field early, so it is removed.
			typ := strings.Map(func(r rune) rune {
				if r == '\n' || r == '\r' {
					return -1
				}
				return r
			}, ev.Type)
			_, _ = bw.WriteString("event: " + typ + "\ndata: ")
			_, _ = bw.Write(data)
			_, _ = bw.WriteString("\n\n")
			if !push() {
				return
			}
		}
	}
}
