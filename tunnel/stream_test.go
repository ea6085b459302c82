package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func loopbackPolicy(t testing.TB) *Policy {
	return mustPolicy(t, PolicyConfig{UnsafeAllowLoopbackForTests: true})
}

// roundTrip writes data, half-closes, and reads until EOF.
func roundTrip(t testing.TB, c net.Conn, data []byte) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

func TestTunnelEchoHalfCloseMeterAndLog(t *testing.T) {
	target := listenRecording(t, "127.0.0.1:0", echo)
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, loopbackPolicy(t), m)

	c, err := pr.open(t.Context(), testDeal, target.addr(), "sess1")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20+17)
	_, _ = rand.Read(data)
	got := roundTrip(t, c, data)
	_ = c.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("echo returned %d bytes, want %d identical", len(got), len(data))
	}
	await(t, "stream served", func() bool { return len(pr.results()) == 1 })
	if err := pr.results()[0]; err != nil {
		t.Fatalf("ServeStream: %v", err)
	}
	st := m.Stats()
	if st.Up != uint64(len(data)) || st.Down != uint64(len(data)) || st.Active != 0 {
		t.Fatalf("meter %+v, want %d each way", st, len(data))
	}
	entries := m.Log().Drain()
	if len(entries) != 1 {
		t.Fatalf("log has %d entries", len(entries))
	}
	want := c.Entry()
	if e := entries[0]; e.Flow != 1 || want.Flow != 1 || !e.Time.Equal(want.Time) || e.Target != want.Target {
		t.Fatalf("provider logged %+v, requester saw %+v", e, want)
	}
	head, n := m.Log().Head()
	if h, _ := ChainHash(common.Hash{}, want); n != 1 || head != h {
		t.Fatalf("head %s (n=%d), requester computes %s", head, n, h)
	}
}

func TestTunnelRefusals(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()
	target := listenRecording(t, "127.0.0.1:0", echo)

	dealNotPaid := common.HexToHash("0x02")
	dealEnded := common.HexToHash("0x03")
	dealPast := common.HexToHash("0x04")
	notPaid := NewMeter(dealNotPaid, MeterConfig{})
	notPaid.Stop(ErrNotPaid)
	ended := NewMeter(dealEnded, MeterConfig{})
	ended.Stop(nil)
	past := NewMeter(dealPast, MeterConfig{Deadline: time.Now().Add(-time.Second)})
	ok := NewMeter(testDeal, MeterConfig{})

	strict := startProvider(t, mustPolicy(t, PolicyConfig{}), ok)
	loose := startProvider(t, loopbackPolicy(t), ok, notPaid, ended, past)

	tests := []struct {
		name   string
		pr     *provider
		deal   common.Hash
		target string
		want   Status
		is     error
	}{
		{"unknown deal (not the requester's)", loose, common.HexToHash("0x99"), target.addr(), StatusUnauthorized, ErrUnauthorized},
		{"deal stopped paying", loose, dealNotPaid, target.addr(), StatusNotPaid, ErrNotPaid},
		{"deal ended", loose, dealEnded, target.addr(), StatusDealInactive, ErrDealInactive},
		{"deal past deadline", loose, dealPast, target.addr(), StatusDealInactive, ErrDealInactive},
		{"loopback with switch off", strict, testDeal, target.addr(), StatusNotAllowed, ErrNotAllowed},
		{"private range", strict, testDeal, "10.1.2.3:80", StatusNotAllowed, ErrNotAllowed},
		{"port 25", loose, testDeal, "127.0.0.1:25", StatusNotAllowed, ErrNotAllowed},
		{"numeric host", loose, testDeal, "2130706433:80", StatusNotAllowed, ErrNotAllowed},
		{"connection refused", loose, testDeal, closedAddr, StatusRefused, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.pr.open(t.Context(), tt.deal, tt.target, "")
			if err == nil {
				_ = c.Close()
				t.Fatal("tunnel opened")
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tt.want {
				t.Fatalf("got %v, want status %v", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("%v does not match %v", err, tt.is)
			}
			if se.Msg == "" {
				t.Fatalf("no detail in %v", err)
			}
		})
	}
	if got := target.accepted(); len(got) != 0 {
		t.Fatalf("refused tunnels reached the target: %v", got)
	}
}

func TestServeStreamBadHeaderAndSkew(t *testing.T) {
	pr := startProvider(t, loopbackPolicy(t), NewMeter(testDeal, MeterConfig{}))
	send := func(frame []byte) (Status, string) {
		c, err := net.Dial("tcp", pr.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		st, msg, _, err := readStatus(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("stream not closed after refusal: %v", err)
		}
		return st, msg
	}
	// A frame of consistent length, so the exit reads it all and closes
	// cleanly (closing a TCP socket with unread data would send a RST).
	if st, _ := send(append([]byte{1, 0, 50}, bytes.Repeat([]byte{0xff}, 50)...)); st != StatusBadRequest {
		t.Fatalf("garbage header: %v", st)
	}
	old, _ := Header{DealID: testDeal, Time: time.Now().Add(-time.Hour), Target: "127.0.0.1:80"}.MarshalBinary()
	if st, msg := send(old); st != StatusBadRequest {
		t.Fatalf("skewed header: %v %q", st, msg)
	}
}

func TestServeStreamHeaderTimeout(t *testing.T) {
	m := NewMeter(testDeal, MeterConfig{})
	exit, err := NewExit(loopbackPolicy(t), func(context.Context, Header) (Grant, error) { return Grant{Meter: m}, nil },
		WithHeaderTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	a, b := tcpPair(t)
	defer a.Close()
	start := time.Now()
	err = exit.ServeStream(t.Context(), b) // the requester never writes
	if !errors.Is(err, ErrMalformedHeader) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

func TestMeterStopCutsStreams(t *testing.T) {
	target := listenRecording(t, "127.0.0.1:0", echo)
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, loopbackPolicy(t), m)
	c, err := pr.open(t.Context(), testDeal, target.addr(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	await(t, "stream active", func() bool { return m.Stats().Active == 1 })
	m.Stop(ErrNotPaid)
	_, _ = io.ReadAll(c) // returns once the exit cuts the stream
	await(t, "stream ended", func() bool { return len(pr.results()) == 1 })
	if err := pr.results()[0]; !errors.Is(err, ErrNotPaid) {
		t.Fatalf("ServeStream: %v, want not paid", err)
	}
	if _, err := pr.open(t.Context(), testDeal, target.addr(), ""); !errors.Is(err, ErrNotPaid) {
		t.Fatalf("reopen after stop: %v", err)
	}
	if e := m.Log().Drain(); len(e) != 1 || e[0].Flow != 1 {
		t.Fatalf("log after stop: %+v", e)
	}
}

func TestMeterDeadlineCutsStreams(t *testing.T) {
	target := listenRecording(t, "127.0.0.1:0", echo)
	m := NewMeter(testDeal, MeterConfig{Deadline: time.Now().Add(300 * time.Millisecond)})
	pr := startProvider(t, loopbackPolicy(t), m)
	c, err := pr.open(t.Context(), testDeal, target.addr(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.ReadAll(c) // blocks until the deadline cuts the stream
	await(t, "stream ended", func() bool { return len(pr.results()) == 1 })
	if err := pr.results()[0]; !errors.Is(err, ErrDealInactive) {
		t.Fatalf("ServeStream: %v, want deal inactive", err)
	}
}

func TestMeterAllowancePausesAndResumes(t *testing.T) {
	target := listenRecording(t, "127.0.0.1:0", echo)
	var starved atomic.Int32
	m := NewMeter(testDeal, MeterConfig{Allowance: 1000, OnStarved: func() { starved.Add(1) }})
	pr := startProvider(t, loopbackPolicy(t), m)
	c, err := pr.open(t.Context(), testDeal, target.addr(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("0123456789"), 300)
	done := make(chan []byte, 1)
	go func() { done <- roundTrip(t, c, data) }()

	await(t, "forwarding starved", func() bool { return starved.Load() > 0 })
	if st := m.Stats(); st.Up+st.Down > 1000 {
		t.Fatalf("forwarded %d bytes on an allowance of 1000", st.Up+st.Down)
	}
	m.SetAllowance(1000 + 2*uint64(len(data)))
	if got := <-done; !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back", len(got))
	}
	if st := m.Stats(); st.Up+st.Down != 2*uint64(len(data)) {
		t.Fatalf("meter %+v", st)
	}
}

func TestMeterBandwidth(t *testing.T) {
	const size = 512 << 10
	const bps = 8 << 20 // 1 MiB/s
	src := listenRecording(t, "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write(make([]byte, size))
	})
	m := NewMeter(testDeal, MeterConfig{BitsPerSecond: bps})
	pr := startProvider(t, loopbackPolicy(t), m)
	start := time.Now()
	c, err := pr.open(t.Context(), testDeal, src.addr(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	elapsed := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("read %d, %v", n, err)
	}
	// The bucket starts full (one burst), the rest is paced.
	paced := float64(size - copyBufSize)
	min := time.Duration(paced / (bps / 8) * float64(time.Second))
	if elapsed < min*9/10 || elapsed > 10*min {
		t.Fatalf("%d bytes at %d bit/s took %v, want about %v", size, bps, elapsed, min)
	}
}

func TestTunnelConcurrentStreamsShareMeterAndLog(t *testing.T) {
	target := listenRecording(t, "127.0.0.1:0", echo)
	m := NewMeter(testDeal, MeterConfig{})
	pr := startProvider(t, loopbackPolicy(t), m)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := pr.open(t.Context(), testDeal, target.addr(), "s"+strconv.Itoa(i))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			data := bytes.Repeat([]byte{byte(i)}, 1000*(i+1))
			if got := roundTrip(t, c, data); !bytes.Equal(got, data) {
				t.Errorf("stream %d: %d bytes back", i, len(got))
			}
		})
	}
	wg.Wait()
	await(t, "all served", func() bool { return len(pr.results()) == n })
	var total uint64
	for i := range n {
		total += uint64(1000 * (i + 1))
	}
	if st := m.Stats(); st.Up != total || st.Down != total {
		t.Fatalf("meter %+v, want %d each way", st, total)
	}
	entries := m.Log().Drain()
	head, count := m.Log().Head()
	if h, _ := ChainHash(common.Hash{}, entries...); len(entries) != n || count != n || h != head {
		t.Fatalf("%d entries, count %d, head %s, recomputed %s", len(entries), count, head, h)
	}
}

// TestLogEntryEncoding pins the documented encoding with a test vector.
func TestLogEntryEncoding(t *testing.T) {
	e := LogEntry{Flow: 7, Time: time.UnixMilli(0x0102030405), Target: "a.b:80"}
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "02" + "0000000000000007" + "0000000102030405" + "0006" + hex.EncodeToString([]byte("a.b:80"))
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	e1 := LogEntry{Flow: 1, Time: time.UnixMilli(0x0102030405), Target: "a.b:80"}
	e2 := LogEntry{Flow: 2, Time: time.UnixMilli(1), Target: "c:1"}
	h1, _ := ChainHash(common.Hash{}, e1)
	h12, _ := ChainHash(h1, e2)
	both, _ := ChainHash(common.Hash{}, e1, e2)
	if h12 != both || h1 == both {
		t.Fatal("chain hash is not incremental")
	}
	var l ConnLog
	if _, err := l.Open(e1.Time, e1.Target); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(e2.Time, e2.Target); err != nil {
		t.Fatal(err)
	}
	if head, n := l.Head(); head != both || n != 2 {
		t.Fatal("ConnLog head differs from ChainHash")
	}
	if _, err := (LogEntry{Target: "x:1"}).MarshalBinary(); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("an entry without a number encodes: %v", err)
	}
}

// TestConnLogOrder: the requester adds entries in whatever order the
// provider's answers bring their numbers; its heads pass through the
// provider's, and a gap holds the log back until it is filled.
func TestConnLogOrder(t *testing.T) {
	var prov, req ConnLog
	var es []LogEntry
	for i := 0; i < 6; i++ {
		e, err := prov.Open(time.UnixMilli(int64(1000+i)), fmt.Sprintf("h:%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	for _, i := range []int{1, 0, 3, 4} { // 2, 3 reorderd; 5, 6 missing 3
		if err := req.Add(es[i]); err != nil {
			t.Fatal(err)
		}
	}
	if h, n := req.Head(); n != 2 || !prov.Had(h) {
		t.Fatalf("requester at %d entries, head %s: not one of the provider's", n, h.Hex())
	}
	_ = req.Add(es[2])
	_ = req.Add(es[5])
	_ = req.Add(es[1]) // twice: ignored
	ph, pn := prov.Head()
	if h, n := req.Head(); n != pn || h != ph {
		t.Fatalf("requester %d %s, provider %d %s", n, h.Hex(), pn, ph.Hex())
	}
	// A restart resumes from the head and length; numbers go on.
	var again ConnLog
	again.Resume(pn, ph)
	if e, _ := again.Open(time.UnixMilli(2000), "h:7"); e.Flow != 7 || !again.Resumed() {
		t.Fatalf("after resume: %+v", e)
	}
}

func TestOpenStreamHonoursContext(t *testing.T) {
	a, b := tcpPair(t)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	// Nobody answers on b: OpenStream must give up with ctx.
	_, err := OpenStream(ctx, a, Header{DealID: testDeal, Target: "example.com:80"})
	if !errors.Is(err, context.DeadlineExceeded) && StatusOf(err) != StatusTimeout {
		t.Fatalf("got %v", err)
	}
}

// TestExitIdleTimeout: the provider's end closes a stream in which no
// byte moved either way for its idle timeout, and says why.
func TestExitIdleTimeout(t *testing.T) {
	target := listenRecording(t, "127.0.0.1:0", echo)
	m := NewMeter(testDeal, MeterConfig{})
	exit, err := NewExit(loopbackPolicy(t), func(context.Context, Header) (Grant, error) { return Grant{Meter: m}, nil },
		WithExitIdleTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	a, b := tcpPair(t)
	defer a.Close()
	done := make(chan error, 1)
	go func() { done <- exit.ServeStream(t.Context(), b) }()
	c, err := OpenStream(t.Context(), a, Header{DealID: testDeal, Time: time.Now(), Target: target.addr()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond { // busy for more than two idle periods
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("busy stream cut after %s: %v", time.Since(start), err)
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
		t.Fatal("idle stream still served after 10 s")
	}
	if e := m.Log().Drain(); len(e) != 1 || e[0].Flow != 1 {
		t.Fatalf("log after the idle cut: %+v", e)
	}
}

// TestConnLogHad: a log remembers its past heads, so a voucher signed a
// while ago still matches; a head it never had does not.
func TestConnLogHad(t *testing.T) {
	var l ConnLog
	var heads []common.Hash
	for i := 0; i < 10; i++ {
		if _, err := l.Open(time.UnixMilli(int64(i)), "h:1"); err != nil {
			t.Fatal(err)
		}
		h, _ := l.Head()
		heads = append(heads, h)
	}
	for i, h := range append(heads, common.Hash{}) {
		if !l.Had(h) {
			t.Errorf("head %d %s not remembered", i, h.Hex())
		}
	}
	if l.Had(common.HexToHash("0x1")) {
		t.Error("a made-up head matches")
	}
	for i := 0; i < MaxLogHistory; i++ {
		_, _ = l.Open(time.UnixMilli(int64(i)), "h:2")
	}
	if l.Had(heads[0]) {
		t.Errorf("a head %d appends ago is still remembered (history is bounded at %d)", MaxLogHistory, MaxLogHistory)
	}
}
