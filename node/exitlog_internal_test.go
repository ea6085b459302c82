package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipsx/ipsx/tunnel"
	"golang.org/x/time/rate"
)

// TestExitRefusalsLogged: refusals by the exit policy are logged at info
// (they were debug only), a burst of them only a few times; other stream
// errors stay at debug.
func TestExitRefusalsLogged(t *testing.T) {
	var buf bytes.Buffer
	n := &Node{
		log:     slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		exitLog: rate.NewLimiter(rate.Every(time.Hour), 5),
	}
	refused := fmt.Errorf("dial 10.0.0.1:80: %w", tunnel.ErrDestPrivate)
	for range 100 {
		n.logTunnelStream("peer", refused)
	}
	n.logTunnelStream("peer", errors.New("stream reset"))
	n.logTunnelStream("peer", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines logged for 100 refusals, want 5 (the burst):\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=INFO") || !strings.Contains(l, "exit policy refused a destination") || !strings.Contains(l, "10.0.0.1:80") {
			t.Fatalf("line %q", l)
		}
	}
}
