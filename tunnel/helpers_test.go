package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// await polls cond until it holds or the deadline passes.
func await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		tm := time.NewTimer(2 * time.Millisecond)
		<-tm.C
	}
}

// recordingListener accepts connections on loopback and records, in accept
// order, the remote address of each. Handle, if set, serves each
// connection; otherwise it is closed at once.
type recordingListener struct {
	ln     net.Listener
	mu     sync.Mutex
	seen   []string
	wg     sync.WaitGroup
	handle func(net.Conn)
}

func listenRecording(t testing.TB, addr string, handle func(net.Conn)) *recordingListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	r := &recordingListener{ln: ln, handle: handle}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.seen = append(r.seen, c.RemoteAddr().String())
			r.mu.Unlock()
			if r.handle == nil {
				_ = c.Close()
				continue
			}
			r.wg.Go(func() { r.handle(c) })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); r.wg.Wait() })
	return r
}

func (r *recordingListener) addr() string { return r.ln.Addr().String() }

func (r *recordingListener) port() uint16 {
	return netip.MustParseAddrPort(r.addr()).Port()
}

func (r *recordingListener) accepted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// echo copies what it reads back and half-closes at EOF.
func echo(c net.Conn) {
	defer c.Close()
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, c)
}

// tcpPair returns two connected loopback TCP conns: a stand-in for a libp2p
// stream (both have CloseWrite and deadlines).
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return a.(*net.TCPConn), r.c.(*net.TCPConn)
}

func mustPolicy(t testing.TB, cfg PolicyConfig) *Policy {
	t.Helper()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// provider is an exit serving tunnel streams that arrive on a loopback TCP
// listener (each TCP connection standing in for one libp2p stream).
type provider struct {
	ln    net.Listener
	exit  *Exit
	wg    sync.WaitGroup
	mu    sync.Mutex
	deals map[common.Hash]*Meter
	errs  []error
}

var testDeal = common.HexToHash("0xd3a1")

func startProvider(t testing.TB, p *Policy, meters ...*Meter) *provider {
	t.Helper()
	pr := &provider{deals: map[common.Hash]*Meter{}}
	for _, m := range meters {
		pr.deals[m.DealID()] = m
	}
	exit, err := NewExit(p, pr.authorize)
	if err != nil {
		t.Fatal(err)
	}
	pr.exit = exit
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pr.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	pr.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pr.wg.Go(func() {
				err := exit.ServeStream(ctx, c.(*net.TCPConn))
				pr.mu.Lock()
				pr.errs = append(pr.errs, err)
				pr.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() { cancel(); _ = ln.Close(); pr.wg.Wait() })
	return pr
}

func (pr *provider) authorize(_ context.Context, h Header) (Grant, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	m, ok := pr.deals[h.DealID]
	if !ok {
		return Grant{}, ErrUnauthorized
	}
	return Grant{Egress: netip.MustParseAddr("127.0.0.1"), Meter: m}, nil
}

func (pr *provider) results() []error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]error(nil), pr.errs...)
}

// open opens a tunnel stream to target through the provider.
func (pr *provider) open(ctx context.Context, deal common.Hash, target, session string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", pr.ln.Addr().String())
	if err != nil {
		return nil, err
	}
	return OpenStream(ctx, c.(*net.TCPConn), Header{DealID: deal, Target: target, Session: session})
}

// router routes every connection through the provider under testDeal, as
// node will with deals and libp2p streams.
func (pr *provider) router() Router {
	return RouterFunc(func(ctx context.Context, r Route, target string) (net.Conn, error) {
		return pr.open(ctx, testDeal, target, r.Session)
	})
}

// directRouter dials targets directly; routes are recorded.
type directRouter struct {
	mu     sync.Mutex
	routes []Route
}

func (d *directRouter) Route(ctx context.Context, r Route, target string) (net.Conn, error) {
	d.mu.Lock()
	d.routes = append(d.routes, r)
	d.mu.Unlock()
	var dl net.Dialer
	return dl.DialContext(ctx, "tcp", target)
}

func (d *directRouter) seen() []Route {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Route(nil), d.routes...)
}

// serve runs a front-end on a loopback listener for the test's lifetime.
func serve(t testing.TB, run func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}
