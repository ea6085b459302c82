package tunnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// socksUDPClient is a small SOCKS5 UDP client of our own: RFC 1929
// credentials on the control connection, UDP ASSOCIATE, then datagrams
// wrapped in the RFC 1928 UDP header. No Debian package ships a SOCKS5
// UDP client that a test can drive (curl and ncat speak only CONNECT).
type socksUDPClient struct {
	ctrl  net.Conn
	relay netip.AddrPort
	pc    *net.UDPConn
}

// socksDialUDP is socksDial for UDP ASSOCIATE, returning BND.ADDR too.
func socksDialUDP(t *testing.T, proxy, user, pass string, from uint16) (net.Conn, netip.AddrPort, byte) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte{5, 1, socksAuthPassword}); err != nil {
		t.Fatal(err)
	}
	var b [22]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		t.Fatal(err)
	}
	if b[1] != socksAuthPassword {
		return c, netip.AddrPort{}, 0xff
	}
	auth := append([]byte{1, byte(len(user))}, user...)
	auth = append(append(auth, byte(len(pass))), pass...)
	if _, err := c.Write(auth); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		t.Fatal(err)
	}
	if b[1] != 0 {
		return c, netip.AddrPort{}, 0xfe
	}
	req := binary.BigEndian.AppendUint16([]byte{5, socksCmdUDPAssociate, 0, socksAtypIPv4, 0, 0, 0, 0}, from)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		t.Fatal(err)
	}
	if b[1] != 0 {
		return c, netip.AddrPort{}, b[1]
	}
	var bnd netip.Addr
	switch b[3] {
	case socksAtypIPv4:
		_, _ = io.ReadFull(c, b[4:10])
		bnd = netip.AddrFrom4([4]byte(b[4:8]))
		return c, netip.AddrPortFrom(bnd, binary.BigEndian.Uint16(b[8:10])), 0
	case socksAtypIPv6:
		_, _ = io.ReadFull(c, b[4:22])
		bnd = netip.AddrFrom16([16]byte(b[4:20]))
		return c, netip.AddrPortFrom(bnd, binary.BigEndian.Uint16(b[20:22])), 0
	}
	t.Fatalf("reply address type %d", b[3])
	return nil, netip.AddrPort{}, 0
}

func newUDPClient(t *testing.T, proxy, user, pass string) (*socksUDPClient, byte) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	c, relay, rep := socksDialUDP(t, proxy, user, pass, uint16(pc.LocalAddr().(*net.UDPAddr).Port))
	if rep != 0 {
		return nil, rep
	}
	_ = c.SetDeadline(time.Time{})
	return &socksUDPClient{ctrl: c, relay: relay, pc: pc}, 0
}

// send wraps p for dest (host, port) and sends it to the relay.
func (u *socksUDPClient) send(t *testing.T, host string, port uint16, p []byte) {
	t.Helper()
	b := append(appendSOCKSUDPAddr(nil, host, port), p...)
	if _, err := u.pc.WriteToUDPAddrPort(b, u.relay); err != nil {
		t.Fatal(err)
	}
}

// recv reads one answer and returns its header's destination and payload.
func (u *socksUDPClient) recv(t *testing.T) (string, []byte) {
	t.Helper()
	buf := make([]byte, 70000)
	_ = u.pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := u.pc.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no answer through the association: %v", err)
	}
	if from != u.relay {
		t.Fatalf("answer from %s, not the relay %s", from, u.relay)
	}
	dest, hl, err := parseSOCKSUDP(buf[:n])
	if err != nil {
		t.Fatalf("answer header: %v", err)
	}
	return dest, buf[hl:n]
}

// udpRouter routes UDP flows with open and counts them; its TCP side
// dials directly.
type udpRouter struct {
	directRouter
	opened atomic.Int32
	open   func(ctx context.Context, r Route, target string) (net.Conn, error)
}

func (u *udpRouter) RouteUDP(ctx context.Context, r Route, target string) (net.Conn, error) {
	u.opened.Add(1)
	if u.open != nil {
		return u.open(ctx, r, target)
	}
	var d net.Dialer
	return d.DialContext(ctx, "udp", target)
}

// payloadEcho is a UDP echo server that records the payloads it got.
type payloadEcho struct {
	*udpEcho // its mu guards got too
	got      [][]byte
}

func startPayloadEcho(t *testing.T) *payloadEcho {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &payloadEcho{udpEcho: &udpEcho{pc: pc}}
	e.wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.got = append(e.got, bytes.Clone(buf[:n]))
			e.seen = append(e.seen, from)
			e.mu.Unlock()
			_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	t.Cleanup(func() { _ = pc.Close(); e.wg.Wait() })
	return e
}

func (e *payloadEcho) payloads() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]byte(nil), e.got...)
}

func (e *payloadEcho) port() uint16 { return uint16(e.pc.LocalAddr().(*net.UDPAddr).Port) }

// TestSOCKSUDPAssociate: after authenticating like CONNECT, a client's
// datagrams to two destinations (an address and a name) go out on their
// own flows and come back wrapped in the header the client used;
// datagrams from another socket are dropped; the association ends with
// its control connection.
func TestSOCKSUDPAssociate(t *testing.T) {
	e1, e2 := startPayloadEcho(t), startPayloadEcho(t)
	router := &udpRouter{}
	proxy := serve(t, NewSOCKSServer(router, WithPassword("s3cret")).Serve)

	if _, rep := newUDPClient(t, proxy, "country-DE", "wrong"); rep != 0xfe {
		t.Fatalf("wrong password: reply %#x, want an authentication failure", rep)
	}
	c, rep := socksDial(t, proxy, []byte{socksAuthNone}, "", "", socksAtypIPv4, "0.0.0.0", 0, socksCmdUDPAssociate)
	if rep != 0xff {
		t.Fatalf("UDP ASSOCIATE without credentials: reply %#x, want no acceptable method", rep)
	}
	_ = c.Close()
	if router.opened.Load() != 0 {
		t.Fatal("a flow opened for a client that did not authenticate")
	}

	u, rep := newUDPClient(t, proxy, "country-DE-session-u1", "s3cret")
	if rep != 0 {
		t.Fatalf("UDP ASSOCIATE: reply %#x", rep)
	}
	if u.relay.Addr() != netip.MustParseAddr("127.0.0.1") || u.relay.Port() == 0 {
		t.Fatalf("relay address %s, want a port on the proxy's address", u.relay)
	}
	for i := range 3 {
		p := fmt.Appendf(nil, "to e1 #%d", i)
		u.send(t, "127.0.0.1", e1.port(), p)
		dest, got := u.recv(t)
		if dest != fmt.Sprintf("127.0.0.1:%d", e1.port()) || !bytes.Equal(got, p) {
			t.Fatalf("answer %q from %s", got, dest)
		}
	}
	// A stranger's datagram to e2 is dropped; the client's own, sent
	// after it, gets through: the loop handles datagrams in order, so the
	// stranger's was seen first.
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if _, err := stranger.WriteToUDPAddrPort(append(appendSOCKSUDPAddr(nil, "localhost", e2.port()), "stranger"...), u.relay); err != nil {
		t.Fatal(err)
	}
	u.send(t, "localhost", e2.port(), []byte("big "+string(bytes.Repeat([]byte("x"), 30000))))
	dest, got := u.recv(t)
	if dest != fmt.Sprintf("localhost:%d", e2.port()) || len(got) != 30004 {
		t.Fatalf("answer of %d bytes from %s, want the domain form back", len(got), dest)
	}
	for _, p := range e2.payloads() {
		if string(p) == "stranger" {
			t.Fatal("a datagram from another socket went out")
		}
	}
	if n := router.opened.Load(); n != 2 {
		t.Fatalf("%d flows opened, want one per destination", n)
	}
	if rs := router.seen(); len(rs) != 0 {
		t.Fatalf("TCP routes %v", rs)
	}

	// The control connection ends: so does the association, whose relay
	// port then answers with ICMP port unreachable.
	_ = u.ctrl.Close()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(u.relay))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	await(t, "relay port closed", func() bool {
		_, _ = conn.Write(appendSOCKSUDPAddr(nil, "127.0.0.1", e1.port()))
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := conn.Read(make([]byte, 10))
		return errors.Is(err, syscall.ECONNREFUSED)
	})
}

// TestSOCKSUDPThroughTunnel: SOCKS5 UDP ASSOCIATE on UDP tunnel flows:
// the target sees the provider's egress, the deal's meter counts the
// datagrams, and a destination the exit policy refuses gets nothing out.
func TestSOCKSUDPThroughTunnel(t *testing.T) {
	e := startPayloadEcho(t)
	p, dialled := guarded(t, PolicyConfig{UnsafeAllowLoopbackForTests: true})
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, p, m)
	var refused atomic.Int32
	router := &udpRouter{open: func(ctx context.Context, r Route, target string) (net.Conn, error) {
		c, err := pr.openUDP(ctx, testDeal, target)
		if errors.Is(err, ErrNotAllowed) {
			refused.Add(1)
		}
		return c, err
	}}
	proxy := serve(t, NewSOCKSServer(router).Serve)
	u, rep := newUDPClient(t, proxy, "country-DE", "")
	if rep != 0 {
		t.Fatalf("reply %#x", rep)
	}
	u.send(t, "10.1.2.3", 53, []byte("to a private range"))
	u.send(t, "127.0.0.1", e.port(), []byte("dns?"))
	if dest, got := u.recv(t); string(got) != "dns?" || dest != fmt.Sprintf("127.0.0.1:%d", e.port()) {
		t.Fatalf("answer %q from %s", got, dest)
	}
	await(t, "private destination refused", func() bool { return refused.Load() == 1 })
	for _, ap := range dialled() {
		if !ap.Addr().IsLoopback() {
			t.Fatalf("the exit let %s through", ap)
		}
	}
	if src := e.sources(); len(src) != 1 || src[0].Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("target saw %v", src)
	}
	await(t, "the meter counts the 4 bytes each way", func() bool { st := m.Stats(); return st.Up == 4 && st.Down == 4 })
}

// TestSOCKSUDPFlowIdle: a flow idle for the UDP idle timeout is closed,
// and the next datagram to its destination opens a new one.
func TestSOCKSUDPFlowIdle(t *testing.T) {
	e := startPayloadEcho(t)
	router := &udpRouter{}
	proxy := serve(t, NewSOCKSServer(router, WithUDPIdleTimeout(100*time.Millisecond)).Serve)
	u, rep := newUDPClient(t, proxy, "", "")
	if rep != 0 {
		t.Fatalf("reply %#x", rep)
	}
	u.send(t, "127.0.0.1", e.port(), []byte("one"))
	u.recv(t)
	// Quiet for three idle periods: the flow is closed meanwhile.
	tm := time.NewTimer(300 * time.Millisecond)
	<-tm.C
	u.send(t, "127.0.0.1", e.port(), []byte("again"))
	if _, got := u.recv(t); string(got) != "again" {
		t.Fatalf("answer %q", got)
	}
	if n := router.opened.Load(); n != 2 {
		t.Fatalf("%d flows opened, want a second after the first idled out", n)
	}
}

// FuzzSOCKSUDPHeader: the UDP header parser never panics, and what it
// accepts is a destination the tunnel header can carry, re-encoded by the
// reply encoder to the same header for a canonical address.
func FuzzSOCKSUDPHeader(f *testing.F) {
	f.Add(append(appendSOCKSUDPAddr(nil, "127.0.0.1", 53), "q"...))
	f.Add(append(appendSOCKSUDPAddr(nil, "::1", 5353), "q"...))
	f.Add(append(appendSOCKSUDPAddr(nil, "example.com", 443), "q"...))
	f.Add([]byte{0, 0, 1, 1, 1, 2, 3, 4, 0, 53})
	f.Fuzz(func(t *testing.T, b []byte) {
		target, hl, err := parseSOCKSUDP(b)
		if err != nil {
			return
		}
		if hl < 4 || hl > len(b) {
			t.Fatalf("header length %d of %d bytes", hl, len(b))
		}
		host, port, err := splitTarget(target)
		if err != nil {
			t.Fatalf("accepted destination %q: %v", target, err)
		}
		if err := checkWireHost(host); err != nil {
			t.Fatalf("accepted host %q the tunnel header cannot carry: %v", host, err)
		}
		if b[3] != socksAtypDomain {
			if again := appendSOCKSUDPAddr(nil, host, port); b[3] == socksAtypIPv4 && !bytes.Equal(again, b[:hl]) {
				t.Fatalf("IPv4 header %x re-encodes as %x", b[:hl], again)
			}
		}
	})
}
