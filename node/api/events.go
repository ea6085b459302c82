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
//	id: <the event's id>
//	event: <type>
//	data: <the sdk.Event as one line of JSON>
//
// with a comment line every keep-alive interval. The subscription is made
// before the headers are sent, so a client that has the 200 sees every
// event published after it. A client that reconnects with the
// Last-Event-ID header (EventSource does; so does the SDK), or the
// lastEventId query parameter, first gets the events it missed, or a
// "stream.reset" event if the node no longer holds them all. The stream
// ends when the client goes away, the backend closes the subscription
// (after a last "error" event if the client fell behind), or the server
// shuts down.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkQuery(q, "lastEventId"); err != nil {
		s.fail(w, r, err)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if v, ok := q["lastEventId"]; ok {
		last = v[0]
	}
	if len(last) > maxEventID {
		s.fail(w, r, badInput("Last-Event-ID is %d bytes; an event id is at most %d", len(last), maxEventID))
		return
	}
	events, stop := s.b.SubscribeFrom(last)
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
	_, _ = bw.WriteString(": ipsx events\nretry: 1000\n\n")
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
			// The id and the type go on lines of their own; a newline in
			// them would end the field early, so it is removed.
			if ev.ID != "" {
				_, _ = bw.WriteString("id: " + oneLine(ev.ID) + "\n")
			}
			_, _ = bw.WriteString("event: " + oneLine(ev.Type) + "\ndata: ")
			_, _ = bw.Write(data)
			_, _ = bw.WriteString("\n\n")
			if !push() {
				return
			}
		}
	}
}

// maxEventID bounds the Last-Event-ID a client may send.
const maxEventID = 128

// oneLine removes line breaks, which would end an SSE field early.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}
