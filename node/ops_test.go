package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/testnet"
)

// get does a GET on a node's API, with the token if one is given.
func get(t *testing.T, n *node.Node, path, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+n.APIAddr().String()+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestHealthLogLevelMetricsAuth: a lone node following a shard it cannot
// sync is live but not ready (503, the shards check says which), with no
// token needed; --metrics-auth puts /metrics behind the token on
// loopback; the log level changes at runtime through the API; the last
// log line says the node stopped.
func TestHealthLogLevelMetricsAuth(t *testing.T) {
	dir := t.TempDir()
	cfg := node.Config{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "127.0.0.1:0", SOCKS: "off", HTTP: "off",
		Countries: []string{"DE"}, Scrypt: node.ScryptLight, MetricsAuth: true}
	if _, err := node.Init(dir, "pw", cfg); err != nil {
		t.Fatal(err)
	}
	var lv slog.LevelVar
	var logs syncLog
	n, err := node.New(dir, "pw", cfg, node.WithLogLevel(&lv),
		node.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: &lv}))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		n.Close()
		last := logs.lines()
		if len(last) == 0 || !strings.Contains(last[len(last)-1], `"msg":"node stopped"`) {
			t.Errorf("last log line %q", last[len(last)-1:])
		}
	}()
	<-n.Ready()

	status, body := get(t, n, "/healthz", "")
	var h sdk.Health
	if err := json.Unmarshal(body, &h); err != nil || status != 503 || !h.Live || h.Ready {
		t.Fatalf("healthz of an unsynced node: %d %s", status, body)
	}
	checks := map[string]sdk.HealthCheck{}
	for _, c := range h.Checks {
		checks[c.Name] = c
	}
	if !checks["database"].OK || !checks["chain"].OK || checks["shards"].OK || !strings.Contains(checks["shards"].Detail, "DE") {
		t.Errorf("checks %+v", h.Checks)
	}
	if strings.Contains(string(body), n.Address().Hex()) || strings.Contains(string(body), n.PeerID().String()) {
		t.Errorf("healthz tells who the node is: %s", body)
	}

	if status, _ := get(t, n, "/metrics", ""); status != 401 {
		t.Errorf("/metrics without the token under --metrics-auth: %d", status)
	}
	if status, body := get(t, n, "/metrics", n.Token()); status != 200 || !strings.Contains(string(body), "ipsx_build_info") {
		t.Errorf("/metrics with the token: %d", status)
	}

	c := sdk.NewClient(n.APIAddr().String(), n.Token())
	if l, err := c.LogLevel(ctx); err != nil || l.Level != "info" {
		t.Fatalf("log level %+v %v", l, err)
	}
	if l, err := c.SetLogLevel(ctx, "debug"); err != nil || l.Level != "debug" || lv.Level() != slog.LevelDebug {
		t.Fatalf("set log level: %+v %v (level %v)", l, err, lv.Level())
	}
	get(t, n, "/v1/status", n.Token()) // the API logs requests at debug level
	if err := testnet.Await(ctx, func() error {
		if !strings.Contains(strings.Join(logs.lines(), "\n"), `"level":"DEBUG"`) {
			return fmt.Errorf("no debug line after the change")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// syncLog collects log output for a test.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}

// sse reads server-sent events off a response body.
type sse struct {
	sc *bufio.Scanner
}

// next returns the next event's id, type and data.
func (s *sse) next(t *testing.T) (id, typ string, ev sdk.Event) {
	t.Helper()
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		case line == "" && typ != "":
			return id, typ, ev
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return
}

// openSSE opens a node's event stream, resuming after last if given;
// stop closes the connection.
func openSSE(t *testing.T, n *node.Node, last string) (s *sse, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.APIAddr().String()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+n.Token())
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("events: %d", resp.StatusCode)
	}
	return &sse{sc: bufio.NewScanner(resp.Body)}, func() { resp.Body.Close(); cancel() }
}

// TestEventStreamResume: a client of a real node's event stream reads an
// event, disconnects, and reconnects with Last-Event-ID while orders keep
// arriving by gossip: it gets every event it missed, in order, none
// twice, then live ones. A node that restarted answers the old id with
// stream.reset. /healthz turns ready once the shards are synced.
func TestEventStreamResume(t *testing.T) {
	tn := startTestnet(t, testnet.Config{Nodes: 2, Countries: []string{"DE"}})
	ctx := awaitCtx(t)
	if err := tn.AwaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := tn.AwaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	maker, watcher := tn.Members[0].Node, tn.Members[1].Node
	if status, body := get(t, watcher, "/healthz", ""); status != 200 || !strings.Contains(string(body), `"ready":true`) {
		t.Fatalf("healthz of a synced node: %d %s", status, body)
	}

	events, stop := openSSE(t, watcher, "")
	var want []string // order ids, in publication order
	publish := func() {
		t.Helper()
		o, err := maker.CreateOffer(ctx, offerParams("DE"))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, o.ID().Hex())
	}
	orderOf := func(ev sdk.Event) string {
		var oe sdk.OrderEvent
		if json.Unmarshal(ev.Data, &oe) != nil || oe.Order == nil {
			return ""
		}
		return oe.Order.ID().Hex()
	}
	publish()
	lastID, typ, ev := events.next(t)
	if typ != "order.added" || lastID == "" || ev.ID != lastID || orderOf(ev) != want[0] {
		t.Fatalf("first event %s %s %+v", lastID, typ, ev)
	}
	stop()

	// Orders arrive while the client is away.
	for i := 0; i < 5; i++ {
		publish()
	}
	if err := testnet.Await(ctx, func() error {
		for _, id := range want {
			if !watcher.Book().Has(common.HexToHash(id)) {
				return fmt.Errorf("order %s not in the watcher's book yet", id[:10])
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resumed, stop := openSSE(t, watcher, lastID)
	defer stop()
	publish() // and one more, live
	// Gossip may deliver the orders in another order than published (they
	// are validated concurrently): the stream's order is the node's, so
	// the resumed events carry every missed order once, with rising
	// sequence numbers after the last one read.
	seen := map[string]bool{lastID: true}
	missing := map[string]bool{}
	for _, id := range want[1:] {
		missing[id] = true
	}
	prev := eventSeq(t, lastID)
	for i := 1; i < len(want); i++ {
		id, typ, ev := resumed.next(t)
		if typ != "order.added" || seen[id] || !missing[orderOf(ev)] || eventSeq(t, id) <= prev {
			t.Fatalf("resumed event %d: %s %s %s (after %s), want one of the orders %v not seen yet", i, id, typ, orderOf(ev), lastID, missing)
		}
		seen[id], prev = true, eventSeq(t, id)
		delete(missing, orderOf(ev))
	}

	// After a restart the old id is of another run: stream.reset first.
	w := tn.Members[1]
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := tn.Restart(ctx, w); err != nil {
		t.Fatal(err)
	}
	again, stop2 := openSSE(t, w.Node, lastID)
	defer stop2()
	if _, typ, _ := again.next(t); typ != "stream.reset" {
		t.Fatalf("an id from before the restart: first event %s", typ)
	}
}

// eventSeq is the sequence number of an event id ("<run>-<seq>").
func eventSeq(t *testing.T, id string) uint64 {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	if i < 0 || err != nil {
		t.Fatalf("event id %q is not <run>-<seq>", id)
	}
	return n
}
