package vpn

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsx/ipsx/tunnel"
	"go.uber.org/goleak"
	"golang.zx2c4.com/wireguard/tun"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperMain(spec))
	}
	goleak.VerifyTestMain(m)
}

// testLog is the VPN's logger in tests (debug output with -v).
var testLog = slog.New(slog.DiscardHandler)

// pipeDev is one end of a pair of in-memory TUN devices: what one end
// writes, the other reads.
type pipeDev struct {
	in     chan []byte
	peer   *pipeDev
	closed chan struct{}
	once   sync.Once
	events chan tun.Event
}

func devPair() (*pipeDev, *pipeDev) {
	a := &pipeDev{in: make(chan []byte, 1024), closed: make(chan struct{}), events: make(chan tun.Event)}
	b := &pipeDev{in: make(chan []byte, 1024), closed: make(chan struct{}), events: make(chan tun.Event)}
	a.peer, b.peer = b, a
	return a, b
}

func (d *pipeDev) File() *os.File { return nil }
func (d *pipeDev) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	case p := <-d.in:
		sizes[0] = copy(bufs[0][offset:], p)
		return 1, nil
	}
}
func (d *pipeDev) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		p := bytes.Clone(b[offset:])
		select {
		case <-d.closed:
			return i, os.ErrClosed
		case d.peer.in <- p:
		}
	}
	return len(bufs), nil
}
func (d *pipeDev) MTU() (int, error)        { return DefaultMTU, nil }
func (d *pipeDev) Name() (string, error)    { return "pipe0", nil }
func (d *pipeDev) Events() <-chan tun.Event { return d.events }
func (d *pipeDev) BatchSize() int           { return 1 }
func (d *pipeDev) Close() error {
	d.once.Do(func() { close(d.closed); close(d.events) })
	return nil
}

// client is the system's side of the TUN: a second userspace stack (the
// one wireguard-go's tun/netstack makes) whose packets cross the pipe.
type client struct {
	net *wgnetstack.Net
}

func startClient(t *testing.T, end *pipeDev) *client {
	t.Helper()
	dev, cnet, err := wgnetstack.CreateNetTUN([]netip.Addr{DefaultAddr4.Addr()}, nil, DefaultMTU)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { // client stack → the VPN
		bufs, sizes := [][]byte{make([]byte, 70000)}, []int{0}
		for {
			n, err := dev.Read(bufs, sizes, 0)
			if err != nil {
				return
			}
			for i := range n {
				if _, err := end.Write([][]byte{bufs[i][:sizes[i]]}, 0); err != nil {
					return
				}
			}
		}
	})
	wg.Go(func() { // the VPN → client stack
		bufs, sizes := [][]byte{make([]byte, 70000)}, []int{0}
		for {
			n, err := end.Read(bufs, sizes, 0)
			if err != nil {
				return
			}
			_, _ = dev.Write([][]byte{bufs[0][:sizes[0]]}, 0)
			_ = n
		}
	})
	t.Cleanup(func() { _ = end.Close(); _ = dev.Close(); wg.Wait() })
	return &client{net: cnet}
}

// testDialer maps the TUN's targets onto loopback servers, as node maps
// them onto tunnel flows.
type testDialer struct {
	tcp  map[string]string // target → loopback address
	udp  map[string]string
	mu   sync.Mutex
	seen []string
	// udpConns are the UDP conns handed out, to break them.
	udpConns []net.Conn
	udpDials atomic.Int32
}

type dealConn struct {
	net.Conn
	deal string
}

func (c dealConn) Deal() string { return c.deal }

func (c dealConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (d *testDialer) DialTCP(ctx context.Context, target string) (net.Conn, error) {
	d.mu.Lock()
	d.seen = append(d.seen, "tcp "+target)
	d.mu.Unlock()
	to, ok := d.tcp[target]
	if !ok {
		return nil, &tunnel.StatusError{Status: tunnel.StatusNotAllowed, Msg: "destination not allowed: private network"}
	}
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", to)
	if err != nil {
		return nil, err
	}
	return dealConn{c, "0xd1"}, nil
}

func (d *testDialer) DialUDP(ctx context.Context, target string) (net.Conn, error) {
	d.mu.Lock()
	d.seen = append(d.seen, "udp "+target)
	d.mu.Unlock()
	to, ok := d.udp[target]
	if !ok {
		return nil, &tunnel.StatusError{Status: tunnel.StatusNotAllowed}
	}
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "udp", to)
	if err != nil {
		return nil, err
	}
	n := d.udpDials.Add(1)
	d.mu.Lock()
	d.udpConns = append(d.udpConns, c)
	d.mu.Unlock()
	return dealConn{c, "0xd" + string(rune('0'+n))}, nil
}

func (d *testDialer) breakUDP() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.udpConns {
		_ = c.Close()
	}
}

func tcpEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func udpEcho(t *testing.T) string {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
		}
	})
	t.Cleanup(func() { _ = pc.Close(); wg.Wait() })
	return pc.LocalAddr().String()
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		tm := time.NewTimer(5 * time.Millisecond)
		<-tm.C
	}
}

// startVPN runs a VPN on one end of a device pair with no system
// configuration, and returns it with the client on the other end.
func startVPN(t *testing.T, cfg Config, d Dialer) (*VPN, *client) {
	t.Helper()
	ours, theirs := devPair()
	cfg.NoSystem = true
	v, err := New(cfg, d, WithDevice(func(string, int) (tun.Device, error) { return ours, nil }), WithLogger(testLog))
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, theirs)
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, func() { close(up) }) }()
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if st := v.Status(); st.State != StateDown {
			t.Errorf("after Run: state %s", st.State)
		}
	})
	return v, c
}

// TestStackTCPAndUDP: the client's TCP connections and UDP datagrams to
// any address become flows of the Dialer, whole and in order; a target the
// Dialer refuses is a reset; Status lists the flows with their bytes and
// deals.
func TestStackTCPAndUDP(t *testing.T) {
	d := &testDialer{
		tcp: map[string]string{"11.81.0.1:80": tcpEcho(t)},
		udp: map[string]string{"11.81.0.1:7": udpEcho(t), "11.81.0.2:53": udpEcho(t)},
	}
	v, c := startVPN(t, Config{DNS: netip.MustParseAddrPort("11.81.0.2:53")}, d)
	ctx := t.Context()

	conn, err := c.net.DialContextTCPAddrPort(ctx, netip.MustParseAddrPort("11.81.0.1:80"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	// The echo's two bytes are read before the flow's down counter may be
	// bumped: wait for both counts.
	await(t, "the flow's bytes counted", func() bool {
		st := v.Status()
		return len(st.Flows) == 1 && st.Flows[0].Up == 2 && st.Flows[0].Down == 2
	})
	st := v.Status()
	if len(st.Flows) != 1 || st.Flows[0].Proto != "tcp" || st.Flows[0].Dst != "11.81.0.1:80" || st.Flows[0].Deal != "0xd1" ||
		st.Flows[0].Down != 2 || st.State != StateUp || st.Device != "pipe0" {
		t.Fatalf("status %+v", st)
	}
	data := make([]byte, 8<<20+3)
	_, _ = rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		if err == nil {
			err = conn.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(conn)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo of %d bytes came back as %d: %v", len(data), len(got), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	await(t, "TCP flow gone", func() bool { return len(v.Status().Flows) == 0 })
	if c := v.Status().Counters; c.Up != uint64(len(data))+2 || c.Down != c.Up {
		t.Fatalf("counters %+v", c)
	}

	// A refused target: the client's connect fails at once.
	start := time.Now()
	_, err = c.net.DialContextTCPAddrPort(ctx, netip.MustParseAddrPort("10.9.9.9:80"))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial to a refused target: %v, want connection refused", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("refusal took %s", time.Since(start))
	}

	// UDP, and DNS to the TUN's resolver going to the configured server.
	for _, tt := range []struct{ dst, target string }{{"11.81.0.1:7", "11.81.0.1:7"}, {DefaultDNSAddr.String() + ":53", "11.81.0.2:53"}} {
		u, err := c.net.DialUDPAddrPort(netip.AddrPort{}, netip.MustParseAddrPort(tt.dst))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			msg := []byte{byte('a' + i)}
			if _, err := u.Write(msg); err != nil {
				t.Fatal(err)
			}
			_ = u.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 100)
			n, err := u.Read(buf)
			if err != nil || string(buf[:n]) != "echo:"+string(msg) {
				t.Fatalf("%s: answer %q %v", tt.dst, buf[:n], err)
			}
		}
		_ = u.Close()
	}
	st = v.Status()
	if st.Counters.TCPFlows != 1 || st.Counters.UDPFlows != 2 || st.Counters.Refused != 1 || st.DNS != "11.81.0.2:53" {
		t.Fatalf("counters %+v, dns %q", st.Counters, st.DNS)
	}
	d.mu.Lock()
	seen := strings.Join(d.seen, ",")
	d.mu.Unlock()
	if seen != "tcp 11.81.0.1:80,tcp 10.9.9.9:80,udp 11.81.0.1:7,udp 11.81.0.2:53" {
		t.Fatalf("dialled %s", seen)
	}
}

// TestStackUDPReopens: a UDP flow whose tunnel breaks (its provider went
// away) is opened again by its next datagram, which gets an answer.
func TestStackUDPReopens(t *testing.T) {
	d := &testDialer{udp: map[string]string{"11.81.0.1:7": udpEcho(t)}}
	v, c := startVPN(t, Config{}, d)
	u, err := c.net.DialUDPAddrPort(netip.AddrPort{}, netip.MustParseAddrPort("11.81.0.1:7"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ask := func(msg string) error {
		if _, err := u.Write([]byte(msg)); err != nil {
			return err
		}
		_ = u.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 100)
		n, err := u.Read(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != "echo:"+msg {
			return errors.New("wrong answer " + string(buf[:n]))
		}
		return nil
	}
	if err := ask("one"); err != nil {
		t.Fatal(err)
	}
	d.breakUDP()
	// The datagram that finds the tunnel broken may be lost; a retry, as
	// any UDP client makes, gets through on the reopened flow.
	await(t, "an answer after the tunnel broke", func() bool { return ask("two") == nil })
	if d.udpDials.Load() != 2 {
		t.Fatalf("%d UDP dials, want 2", d.udpDials.Load())
	}
	st := v.Status()
	if len(st.Flows) != 1 || st.Flows[0].Reopened != 1 || st.Flows[0].Deal != "0xd2" {
		t.Fatalf("flows %+v", st.Flows)
	}
}

// TestStackUDPIdle: a quiet UDP flow is forgotten after its idle time.
func TestStackUDPIdle(t *testing.T) {
	d := &testDialer{udp: map[string]string{"11.81.0.1:7": udpEcho(t)}}
	v, c := startVPN(t, Config{UDPIdle: 100 * time.Millisecond}, d)
	u, err := c.net.DialUDPAddrPort(netip.AddrPort{}, netip.MustParseAddrPort("11.81.0.1:7"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	_ = u.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.Read(buf); err != nil {
		t.Fatal(err)
	}
	await(t, "idle flow forgotten", func() bool { return len(v.Status().Flows) == 0 })
}
