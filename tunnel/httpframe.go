package tunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// What the HTTP proxy refuses in a request head before it looks at the
// request, beyond what http.ReadRequest refuses. A proxy passes requests
// on to servers that may frame them differently from it: a request whose
// framing is ambiguous (request smuggling, RFC 9112 sections 6.1 and
// 11.2) is refused, not repaired. http.ReadRequest repairs some of it
// quietly (it drops Content-Length next to chunked, merges equal
// duplicates, unfolds obs-fold), so the checks run on the raw head.

var (
	// errVersion: an HTTP version other than 1.0 and 1.1; answered 505.
	errVersion = fmt.Errorf("%w: HTTP version not supported (this proxy speaks HTTP/1.0 and HTTP/1.1)", ErrHTTPProxy)
	// errFraming: an ambiguous or unsupported message framing; answered 400.
	errFraming = fmt.Errorf("%w: request framing", ErrHTTPProxy)
)

// headRecorder sits between the connection and the handler's bufio.Reader
// and, while on, keeps a copy of what the reader pulls in, so that the
// handler can see the raw bytes http.ReadRequest consumed.
type headRecorder struct {
	r   io.Reader
	on  bool
	buf []byte
}

func (h *headRecorder) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if h.on && n > 0 {
		h.buf = append(h.buf, p[:n]...)
	}
	return n, err
}

// readRequestHead reads one request head from br (fed through rec) and
// checks its raw bytes: version, then framing. The body stays unread.
func readRequestHead(br *bufio.Reader, rec *headRecorder) (*http.Request, error) {
	// A client may send a stray CRLF after a body (RFC 9112 section 2.2).
	for {
		b, err := br.Peek(1)
		if err != nil || (b[0] != '\r' && b[0] != '\n') {
			break
		}
		_, _ = br.Discard(1)
	}
	seed, _ := br.Peek(br.Buffered())
	rec.buf = append(rec.buf[:0], seed...)
	rec.on = true
	req, err := http.ReadRequest(br)
	rec.on = false
	head := rec.buf[:max(0, len(rec.buf)-br.Buffered())]
	if verr := checkVersion(head, req); verr != nil {
		return nil, verr
	}
	if err != nil {
		return nil, err
	}
	if ferr := checkFraming(head); ferr != nil {
		return nil, ferr
	}
	return req, nil
}

// checkVersion refuses any version but 1.0 and 1.1, including the HTTP/2
// connection preface ("PRI * HTTP/2.0"), whether or not http.ReadRequest
// could parse it.
func checkVersion(head []byte, req *http.Request) error {
	if req != nil {
		if req.ProtoMajor == 1 && req.ProtoMinor <= 1 {
			return nil
		}
		return fmt.Errorf("%w: got %s", errVersion, req.Proto)
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 3 && strings.HasPrefix(fields[2], "HTTP/") {
		v := fields[2]
		if v != "HTTP/1.0" && v != "HTTP/1.1" && len(v) <= 16 {
			return fmt.Errorf("%w: got %q", errVersion, v)
		}
	}
	return nil
}

// checkFraming refuses obs-fold, whitespace before a colon (which
// http.ReadRequest trims), several Content-Length fields,
// Content-Length with Transfer-Encoding, and any Transfer-Encoding but a
// single chunked.
func checkFraming(head []byte) error {
	lines := bytes.Split(head, []byte("\n"))
	var cl, te int
	var teVal string
	for _, l := range lines[1:] {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) == 0 {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			return fmt.Errorf("%w: obsolete line folding in the header (RFC 9112 section 5.2)", errFraming)
		}
		name, val, _ := bytes.Cut(l, []byte(":"))
		if n := len(name); n > 0 && (name[n-1] == ' ' || name[n-1] == '\t') {
			return fmt.Errorf("%w: whitespace between a field name and its colon (RFC 9112 section 5.1)", errFraming)
		}
		switch strings.ToLower(string(name)) {
		case "content-length":
			cl++
		case "transfer-encoding":
			te++
			teVal = strings.TrimSpace(string(val))
		}
	}
	switch {
	case cl > 1:
		return fmt.Errorf("%w: several Content-Length fields", errFraming)
	case cl > 0 && te > 0:
		return fmt.Errorf("%w: both Content-Length and Transfer-Encoding", errFraming)
	case te > 1 || te == 1 && !strings.EqualFold(teVal, "chunked"):
		return fmt.Errorf("%w: only Transfer-Encoding: chunked is supported", errFraming)
	}
	return nil
}
