package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// udpEcho is a UDP echo server on loopback that records the source of
// every datagram.
type udpEcho struct {
	pc   *net.UDPConn
	mu   sync.Mutex
	seen []netip.AddrPort
	wg   sync.WaitGroup
}

func startUDPEcho(t testing.TB) *udpEcho {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &udpEcho{pc: pc}
	e.wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.seen = append(e.seen, from)
			e.mu.Unlock()
			_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	t.Cleanup(func() { _ = pc.Close(); e.wg.Wait() })
	return e
}

func (e *udpEcho) addr() string { return e.pc.LocalAddr().String() }

func (e *udpEcho) sources() []netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]netip.AddrPort(nil), e.seen...)
}

// openUDP opens a UDP flow to target through the provider.
func (pr *provider) openUDP(ctx context.Context, deal common.Hash, target string) (*PacketConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", pr.ln.Addr().String())
	if err != nil {
		return nil, err
	}
	return OpenUDP(ctx, c.(*net.TCPConn), Header{DealID: deal, Target: target})
}

func TestDatagramFraming(t *testing.T) {
	var stream []byte
	payloads := [][]byte{{}, []byte("x"), bytes.Repeat([]byte{7}, 1500), bytes.Repeat([]byte{9}, MaxDatagramSize)}
	for _, p := range payloads {
		var err error
		if stream, err = AppendDatagram(stream, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := AppendDatagram(nil, make([]byte, MaxDatagramSize+1)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("oversized datagram: %v", err)
	}
	r := bytes.NewReader(stream)
	buf := make([]byte, MaxDatagramSize)
	for i, want := range payloads {
		n, err := ReadDatagram(r, buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("datagram %d: %d bytes, %v", i, n, err)
		}
	}
	if _, err := ReadDatagram(r, buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}

	// A short buffer gets the head of the datagram and the stream stays in
	// step.
	two, _ := AppendDatagram(nil, []byte("hello world"))
	two, _ = AppendDatagram(two, []byte("next"))
	r = bytes.NewReader(two)
	small := make([]byte, 5)
	if n, err := ReadDatagram(r, small); n != 5 || !errors.Is(err, io.ErrShortBuffer) || string(small) != "hello" {
		t.Fatalf("short buffer: %d %q %v", n, small[:n], err)
	}
	if n, err := ReadDatagram(r, buf); err != nil || string(buf[:n]) != "next" {
		t.Fatalf("after a short read: %q %v", buf[:n], err)
	}

	for name, b := range map[string][]byte{
		"half a length":   {0},
		"cut payload":     {0, 5, 'a', 'b'},
		"length over max": binary.BigEndian.AppendUint16(nil, MaxDatagramSize+1),
		"length 0xffff":   {0xff, 0xff},
	} {
		if _, err := ReadDatagram(bytes.NewReader(b), buf); !errors.Is(err, ErrMalformedDatagram) || !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want a malformed datagram", name, err)
		}
	}
}

// FuzzReadDatagram: the decoder never panics, never returns more than the
// buffer or MaxDatagramSize, and what it reads whole re-encodes to the
// bytes it consumed.
func FuzzReadDatagram(f *testing.F) {
	for _, p := range [][]byte{{}, []byte("dns query"), bytes.Repeat([]byte{1}, 300)} {
		b, _ := AppendDatagram(nil, p)
		f.Add(b, uint16(512))
	}
	f.Add([]byte{0xff, 0xff, 1, 2}, uint16(10))
	f.Add([]byte{0, 3, 'a'}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, size uint16) {
		r := bytes.NewReader(b)
		buf := make([]byte, min(int(size), MaxDatagramSize))
		for {
			before := r.Len()
			n, err := ReadDatagram(r, buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("n = %d with a buffer of %d", n, len(buf))
			}
			if err != nil {
				if errors.Is(err, io.ErrShortBuffer) {
					continue
				}
				if err != io.EOF && !errors.Is(err, ErrMalformedDatagram) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			used := before - r.Len()
			enc, aerr := AppendDatagram(nil, buf[:n])
			if aerr != nil || !bytes.Equal(enc, b[len(b)-before:len(b)-before+used]) {
				t.Fatalf("frame %x re-encodes as %x (%v)", b[len(b)-before:len(b)-before+used], enc, aerr)
			}
		}
	})
}

func TestHeaderFlowUDP(t *testing.T) {
	h := Header{DealID: testDeal, Time: time.UnixMilli(1_760_000_000_000), Target: "example.com:53", Session: "s", Flow: FlowUDP}
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != headerVersionFlow || b[3] != byte(FlowUDP) {
		t.Fatalf("UDP header frame starts %x, want version 2 and the flow", b[:4])
	}
	got, err := UnmarshalHeader(b)
	if err != nil || got != (Header{DealID: h.DealID, Time: got.Time, Target: h.Target, Session: h.Session, Flow: FlowUDP}) || !got.Time.Equal(h.Time) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if got.LogTarget() != "udp/example.com:53" {
		t.Fatalf("log target %q", got.LogTarget())
	}
	// A TCP header is version 1, byte for byte what it always was.
	tcp := h
	tcp.Flow = FlowTCP
	tb, _ := tcp.MarshalBinary()
	if tb[0] != headerVersion || !bytes.Equal(tb[3:], b[4:]) {
		t.Fatalf("TCP header %x, want version 1 with the UDP header's body", tb)
	}
	if _, err := (Header{Time: time.Now(), Target: "a:1", Flow: 7}).MarshalBinary(); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown flow marshalled: %v", err)
	}
	for name, frame := range map[string][]byte{
		"tcp in version 2": func() []byte { c := bytes.Clone(b); c[3] = byte(FlowTCP); return c }(),
		"unknown flow":     func() []byte { c := bytes.Clone(b); c[3] = 9; return c }(),
		"no body":          {headerVersionFlow, 0, 1, byte(FlowUDP)},
	} {
		if _, err := UnmarshalHeader(frame); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
}

// TestUDPFlowEchoMeterAndLog: datagrams of every size cross a UDP flow
// whole and in order both ways, the target sees them from the egress
// address, the meter counts payload bytes, and both sides log the same
// entry.
func TestUDPFlowEchoMeterAndLog(t *testing.T) {
	echo := startUDPEcho(t)
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, loopbackPolicy(t), m)
	c, err := pr.openUDP(t.Context(), testDeal, echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	buf := make([]byte, MaxDatagramSize)
	for _, size := range []int{0, 1, 512, 1472, 9000, MaxDatagramSize} {
		p := make([]byte, size)
		_, _ = rand.Read(p)
		if n, err := c.Write(p); err != nil || n != size {
			t.Fatalf("write %d: %d %v", size, n, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], p) {
			t.Fatalf("datagram of %d came back as %d bytes: %v", size, n, err)
		}
		total += uint64(size)
	}
	if _, err := c.Write(make([]byte, MaxDatagramSize+1)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("oversized write: %v", err)
	}
	for _, src := range echo.sources() {
		if src.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("target saw a datagram from %s, want the egress 127.0.0.1", src)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	await(t, "flow served", func() bool { return len(pr.results()) == 1 })
	if err := pr.results()[0]; err != nil {
		t.Fatalf("ServeStream: %v", err)
	}
	if st := m.Stats(); st.Up != total || st.Down != total || st.Active != 0 {
		t.Fatalf("meter %+v, want %d each way", st, total)
	}
	entries := m.Log().Drain()
	want := c.Entry()
	if len(entries) != 1 || entries[0] != (LogEntry{Flow: 1, Time: entries[0].Time, Target: "udp/" + echo.addr()}) ||
		!entries[0].Time.Equal(want.Time) || want.Target != entries[0].Target || want.Flow != 1 {
		t.Fatalf("provider logged %+v, requester saw %+v", entries, want)
	}
	if up, down := c.Bytes(); up != total || down != total {
		t.Fatalf("requester counted %d up, %d down, want %d", up, down, total)
	}
}

// TestUDPFlowPolicy: a UDP flow is refused, before any datagram leaves,
// where a TCP connection would be: special ranges on the resolved address
// and the reject ports.
func TestUDPFlowPolicy(t *testing.T) {
	p, dialled := guarded(t, PolicyConfig{UnsafeAllowLoopbackForTests: true})
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, p, m)
	for target, want := range map[string]error{
		"10.1.2.3:53":         ErrDestPrivate,
		"192.168.1.1:53":      ErrDestPrivate,
		"169.254.169.254:80":  ErrDestLinkLocal,
		"[::ffff:10.0.0.1]:1": ErrDestPrivate,
		"127.0.0.1:137":       ErrDestPort,
		"0x7f000001:53":       ErrDestNumericHost,
	} {
		_, err := pr.openUDP(t.Context(), testDeal, target)
		if !errors.Is(err, ErrNotAllowed) || StatusOf(err) != StatusNotAllowed || !strings.Contains(err.Error(), want.(*ruleError).rule) {
			t.Errorf("%s: %v, want refused by %v", target, err, want)
		}
	}
	await(t, "refusals served", func() bool { return len(pr.results()) == 6 })
	for _, err := range pr.results() {
		var rule *ruleError
		if !errors.As(err, &rule) {
			t.Errorf("exit: %v, want a policy rule", err)
		}
	}
	if d := dialled(); len(d) != 0 {
		t.Fatalf("the policy let %v through to connect(2)", d)
	}
}

// TestUDPFlowIdleTimeout: the exit keeps a busy UDP flow and closes one
// that carried no datagram for its idle timeout, saying why.
func TestUDPFlowIdleTimeout(t *testing.T) {
	echo := startUDPEcho(t)
	m := NewMeter(testDeal, MeterConfig{})
	exit, err := NewExit(loopbackPolicy(t), func(context.Context, Header) (Grant, error) { return Grant{Meter: m}, nil },
		WithExitUDPIdleTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	a, b := tcpPair(t)
	defer a.Close()
	done := make(chan error, 1)
	go func() { done <- exit.ServeStream(t.Context(), b) }()
	c, err := OpenUDP(t.Context(), a, Header{DealID: testDeal, Time: time.Now(), Target: echo.addr()})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("busy flow cut after %s: %v", time.Since(start), err)
		}
		tm := time.NewTimer(50 * time.Millisecond)
		<-tm.C
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrIdle) {
			t.Fatalf("ServeStream: %v, want ErrIdle", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle flow still served after 10 s")
	}
	if _, err := c.Read(buf); err == nil {
		t.Fatal("read on a flow the exit closed")
	}
}

// TestUDPFlowAllowance: datagrams wait while the paid-ahead allowance is
// used up (never cut in part) and go once it is raised; a stopped meter
// ends the flow.
func TestUDPFlowAllowance(t *testing.T) {
	echo := startUDPEcho(t)
	var starved atomic.Int32
	m := NewMeter(testDeal, MeterConfig{Allowance: 1000, OnStarved: func() { starved.Add(1) }})
	pr := startProvider(t, loopbackPolicy(t), m)
	c, err := pr.openUDP(t.Context(), testDeal, echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := bytes.Repeat([]byte("u"), 800)
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 2000)
		n, _ := c.Read(buf)
		got <- n
	}()
	await(t, "forwarding starved", func() bool { return starved.Load() > 0 })
	if st := m.Stats(); st.Up != 800 || st.Down != 0 {
		t.Fatalf("meter %+v on an allowance of 1000: the answer must wait whole", st)
	}
	m.SetAllowance(5000)
	if n := <-got; n != 800 {
		t.Fatalf("answer of %d bytes", n)
	}
	m.Stop(ErrNotPaid)
	await(t, "flow cut", func() bool { return len(pr.results()) == 1 })
	if err := pr.results()[0]; !errors.Is(err, ErrNotPaid) {
		t.Fatalf("ServeStream after Stop: %v", err)
	}
}

// TestUDPFlowToOldProvider: a provider that knows only version 1 headers
// answers a UDP flow as a bad request, so a requester can tell.
func TestUDPFlowToOldProvider(t *testing.T) {
	a, b := tcpPair(t)
	defer a.Close()
	go func() {
		defer b.Close()
		var pre [1]byte
		_, _ = io.ReadFull(b, pre[:])
		if pre[0] != headerVersion {
			_, _ = b.Write(appendStatus(nil, StatusBadRequest, "malformed tunnel header: version 2"))
		}
	}()
	_, err := OpenUDP(t.Context(), a, Header{DealID: testDeal, Target: "example.com:53"})
	if StatusOf(err) != StatusBadRequest {
		t.Fatalf("got %v", err)
	}
}
