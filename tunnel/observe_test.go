package tunnel_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsx/ipsx/tunnel"
)

// resultLog is an Observer that keeps what it is told.
type resultLog struct {
	mu  sync.Mutex
	got []string
}

func (l *resultLog) observe(proxy string, r tunnel.Result) {
	l.mu.Lock()
	l.got = append(l.got, proxy+":"+string(r))
	l.mu.Unlock()
}

func (l *resultLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

// await waits until the log holds exactly want, and empties it.
func (l *resultLog) await(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var got []string
	for {
		l.mu.Lock()
		got = append([]string(nil), l.got...)
		l.mu.Unlock()
		if len(got) > 0 || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	if !slices.Equal(got, []string{want}) {
		t.Fatalf("observed %v, want [%s]", got, want)
	}
	l.take()
}

// refusingRouter dials directly, except targets named for a refusal.
type refusingRouter struct{ recorder }

func (r *refusingRouter) Route(ctx context.Context, rt tunnel.Route, target string) (net.Conn, error) {
	switch {
	case strings.HasPrefix(target, "noroute."):
		return nil, fmt.Errorf("%w: no deal", tunnel.ErrNoRoute)
	case strings.HasPrefix(target, "private."):
		return nil, &tunnel.StatusError{Status: tunnel.StatusNotAllowed, Msg: "private network"}
	}
	return r.recorder.Route(ctx, rt, target)
}

// socksConnect runs a SOCKS5 handshake with user/pass and a CONNECT to
// target (a domain name), and returns the reply code.
func socksConnect(t *testing.T, proxy, user, pass, target string) byte {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	host, port, _ := net.SplitHostPort(target)
	msg := append([]byte{5, 1, 2, 1, byte(len(user))}, user...)
	msg = append(append(msg, byte(len(pass))), pass...)
	msg = append(msg, 5, 1, 0, 3, byte(len(host)))
	msg = append(msg, host...)
	var p uint16
	fmt.Sscan(port, &p)
	msg = binary.BigEndian.AppendUint16(msg, p)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var b [4 + 10]byte
	if _, err := io.ReadFull(c, b[:4]); err != nil || b[3] != 0 {
		return 0xff // auth refused
	}
	if _, err := io.ReadFull(c, b[4:]); err != nil {
		t.Fatalf("socks reply: %v", err)
	}
	return b[5]
}

// TestObserver: each proxy request's result reaches the observer, named
// by proxy: the front door's refusals, the router's, the provider's, and
// success.
func TestObserver(t *testing.T) {
	tgt := target(t)
	_, port, _ := net.SplitHostPort(tgt)
	var log resultLog
	r := &refusingRouter{recorder{refuse: func(rt tunnel.Route) error {
		if rt.City != "" {
			return fmt.Errorf("%w: no city", tunnel.ErrRouteRefused)
		}
		return nil
	}}}
	opts := []tunnel.ProxyOption{tunnel.WithPassword("pw"), tunnel.WithObserver(log.observe)}
	hp := listen(t, "127.0.0.1:0", tunnel.NewHTTPProxy(r, opts...).Serve)
	sp := listen(t, "127.0.0.1:0", tunnel.NewSOCKSServer(r, opts...).Serve)

	for _, tc := range []struct {
		raw  string
		want string
	}{
		{"GET http://" + tgt + "/ HTTP/1.1\r\nHost: " + tgt + "\r\n\r\n", "http:auth_required"},
		{"GET http://" + tgt + "/ HTTP/1.1\r\nHost: " + tgt + "\r\n" + basicAuth("country-DE", "wrong") + "\r\n", "http:auth_failed"},
		{"CONNECT " + tgt + " HTTP/1.1\r\n" + basicAuth("country-DE-city-atlantis", "pw") + "\r\n", "http:route_refused"},
		{"CONNECT noroute.example:80 HTTP/1.1\r\n" + basicAuth("country-DE", "pw") + "\r\n", "http:no_route"},
		{"CONNECT private.example:80 HTTP/1.1\r\n" + basicAuth("country-DE", "pw") + "\r\n", "http:policy_denied"},
		{"GET http://" + tgt + "/ HTTP/1.1\r\nHost: " + tgt + "\r\nConnection: close\r\n" + basicAuth("country-DE", "pw") + "\r\n", "http:ok"},
		{"GET / HTTP/1.1\r\nHost: x\r\n" + basicAuth("country-DE", "pw") + "\r\n", "http:bad_request"},
	} {
		send(t, hp, tc.raw)
		log.await(t, tc.want)
	}
	for _, tc := range []struct {
		user, pass, target, want string
	}{
		{"country-DE", "wrong", "localhost:" + port, "socks:auth_failed"},
		{"country-DE", "pw", "localhost:" + port, "socks:ok"},
		{"country-DE", "pw", "noroute.example:80", "socks:no_route"},
		{"country-DE", "pw", "private.example:80", "socks:policy_denied"},
	} {
		socksConnect(t, sp, tc.user, tc.pass, tc.target)
		log.await(t, tc.want)
	}
}
