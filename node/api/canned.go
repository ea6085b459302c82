package api

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"

	"github.com/ipsx/ipsx/sdk"
)

// net/http answers some requests itself, before any handler runs: a head
// over MaxHeaderBytes (431), a malformed request (400), an unsupported
// transfer coding (501), an unsupported HTTP version (505). It writes
// those as plain text straight to the connection, which breaks the API's
// promise that every error is a JSON sdk.Error. jsonListener wraps the
// accepted connections so that such a canned answer, recognised by its
// fixed shape, goes out as JSON instead, with the same status.

// cannedSep is what follows the status line of every canned answer
// (net/http's errorHeaders).
const cannedSep = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

type jsonListener struct{ net.Listener }

func (l jsonListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonConn{Conn: c}, nil
}

// jsonConn rewrites a canned plain-text answer into JSON. net/http writes
// a canned answer with one Write on the raw connection, and a response of
// a handler never has this shape (it goes through a bufio.Writer with
// Content-Type: application/json and more fields).
type jsonConn struct{ net.Conn }

func (c *jsonConn) Write(p []byte) (int, error) {
	if out, ok := cannedToJSON(p); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// cannedToJSON returns the JSON form of a canned answer.
func cannedToJSON(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) || len(p) < 12 {
		return nil, false
	}
	line, body, ok := bytes.Cut(p, []byte(cannedSep))
	if !ok || bytes.ContainsAny(line, "\r\n") {
		return nil, false
	}
	code, err := strconv.Atoi(string(p[9:12]))
	if err != nil || code < 400 {
		return nil, false
	}
	var e sdk.Error
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		e = sdk.Error{Code: "too_large", Error: "request header (request line and fields) larger than 16 KiB"}
	case http.StatusHTTPVersionNotSupported:
		e = sdk.Error{Code: "version_not_supported", Error: "HTTP version not supported: " + string(body)}
	case http.StatusNotImplemented:
		e = sdk.Error{Code: "not_implemented", Error: string(body)}
	default:
		e = sdk.Error{Code: "malformed", Error: string(body)}
	}
	b, _ := json.Marshal(e)
	b = append(b, '\n')
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
	out.WriteString("Content-Type: application/json\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n")
	out.WriteString("Content-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n")
	out.Write(b)
	return out.Bytes(), true
}
