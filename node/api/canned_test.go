package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/node/api/apitest"
	"github.com/ipsx/ipsx/sdk"
)

// TestErrorsBeforeHandlersAreJSON: what net/http answers on its own (a
// head too large, a malformed request, an HTTP version it does not speak)
// is a JSON sdk.Error like every other error, and so is a body too large.
func TestErrorsBeforeHandlersAreJSON(t *testing.T) {
	b := apitest.NewBackend(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- api.New(b, "tok").Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	auth := "Authorization: Bearer tok\r\n"
	big := strings.Repeat("x", 100<<10)
	for _, tt := range []struct {
		name, raw string
		status    int
		code      string
	}{
		{"100 KB URL", "GET /v1/status?" + big + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 431, "too_large"},
		{"100 KB header", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n" + auth + "\r\n", 431, "too_large"},
		{"100 KB body", "POST /v1/offers HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nContent-Length: " +
			fmt.Sprint(len(big)+2) + "\r\n\r\n\"" + big + "\"", 413, "too_large"},
		{"garbage", "\x00\x01 nonsense\r\n\r\n", 400, "malformed"},
		{"HTTP/9.9", "GET /v1/status HTTP/9.9\r\nHost: x\r\n" + auth + "\r\n", 505, "version_not_supported"},
		{"unknown transfer coding", "POST /v1/offers HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: zstd\r\n\r\n", 501, "not_implemented"},
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() { _, _ = io.WriteString(c, tt.raw) }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		_ = c.Close()
		var e sdk.Error
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(body, &e) != nil || e.Code != tt.code || e.Error == "" {
			t.Errorf("%s: %d %s %q, want %d JSON with code %s", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.code)
		}
	}
}
