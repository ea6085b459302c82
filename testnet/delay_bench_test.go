//go:build linux

// The UDP delay link forces its socket buffers with SO_RCVBUFFORCE and
// reads the kernel's UDP drop counter from /proc: Linux only.

package testnet_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A delay link is a userspace stand-in for netem's delay, which the
// kernel here lacks: a forwarder on 127.0.0.1 that holds every chunk (TCP)
// or datagram (UDP) it reads for the link's one-way delay in each
// direction before passing it on, in order, with unbounded buffering and
// no loss of its own.
//
// What it does not emulate: a TCP forwarder ends the TCP connection on
// each side, so the kernel's TCP on either side sees a loopback RTT and
// its congestion and receive windows never feel the delay; only windows
// above TCP (ssh's channel window, yamux's stream window) do. A UDP
// forwarder passes QUIC's packets end to end, so QUIC's congestion
// control and flow control both see the delayed RTT. A real path of the
// same RTT also caps kernel TCP at its receive window (tcp_rmem) per RTT,
// which the TCP figures here do not show.

// delayQueue is one direction of a link: a FIFO of chunks, each due at
// the time it was read plus the link's one-way delay.
type delayQueue struct {
	mu     sync.Mutex
	items  []delayed
	head   int
	closed bool
	wake   chan struct{} // capacity 1: something was pushed or the queue closed
}

type delayed struct {
	due  time.Time
	b    []byte
	buf  *[]byte // the pooled buffer b lies in, put back in pool once written
	pool *sync.Pool
	from *net.UDPAddr // UDP: the client a datagram goes to
}

// Read buffers, recycled: at a few hundred MB/s a fresh buffer per
// datagram would keep the garbage collector busy on the 2 cores that
// also run both tunnel ends.
var (
	chunkPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
	dgramPool = sync.Pool{New: func() any { b := make([]byte, 2048); return &b }}
)

func newDelayQueue() *delayQueue { return &delayQueue{wake: make(chan struct{}, 1)} }

func (q *delayQueue) push(d delayed) {
	q.mu.Lock()
	q.items = append(q.items, d)
	q.mu.Unlock()
	q.signal()
}

// close lets pop return false once the queue is drained.
func (q *delayQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *delayQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next chunk once it is due, or false when the queue is
// closed and drained or done is closed.
func (q *delayQueue) pop(done <-chan struct{}, t *time.Timer) (delayed, bool) {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			d := q.items[q.head]
			wait := time.Until(d.due)
			if wait <= 0 {
				q.items[q.head] = delayed{}
				q.head++
				if q.head == len(q.items) {
					q.items, q.head = q.items[:0], 0
				}
				q.mu.Unlock()
				return d, true
			}
			q.mu.Unlock()
			// The delay is what is emulated: waiting for it is the point.
			t.Reset(wait)
			select {
			case <-t.C:
			case <-done:
				t.Stop()
				return delayed{}, false
			}
			continue
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return delayed{}, false
		}
		select {
		case <-q.wake:
		case <-done:
			return delayed{}, false
		}
	}
}

// linkStats says how late a link released what it held, past the delay:
// the jitter it adds (the scheduling of its goroutines on a busy machine),
// which also comes out as bursts at the far end.
type linkStats struct {
	chunks  atomic.Int64
	late1ms atomic.Int64 // released more than 1 ms late
	maxLate atomic.Int64 // nanoseconds
}

func (s *linkStats) String() string {
	return fmt.Sprintf("%d of %d more than 1 ms late, the latest by %s",
		s.late1ms.Load(), s.chunks.Load(), time.Duration(s.maxLate.Load()).Round(10*time.Microsecond))
}

// drain passes each chunk to write when it is due, until the queue closes
// or write fails.
func (q *delayQueue) drain(done <-chan struct{}, st *linkStats, write func(delayed) error) error {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		d, ok := q.pop(done, t)
		if !ok {
			return nil
		}
		late := time.Since(d.due)
		st.chunks.Add(1)
		if late > time.Millisecond {
			st.late1ms.Add(1)
		}
		if m := st.maxLate.Load(); int64(late) > m {
			st.maxLate.CompareAndSwap(m, int64(late)) // a lost race only loses a near-equal figure
		}
		err := write(d)
		if d.pool != nil {
			d.pool.Put(d.buf)
		}
		if err != nil {
			return err
		}
	}
}

// tcpDelay forwards TCP connections on Addr to upstream through a delay
// link of the given RTT, half-closes included.
type tcpDelay struct {
	oneWay   time.Duration // rtt/2
	stats    linkStats
	ln       net.Listener
	upstream string
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func startTCPDelay(b testing.TB, upstream string, rtt time.Duration) *tcpDelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	l := &tcpDelay{oneWay: rtt / 2, ln: ln, upstream: upstream, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.wg.Go(func() { l.serve(c) })
		}
	})
	b.Cleanup(func() {
		close(l.done)
		_ = ln.Close()
		l.mu.Lock()
		for c := range l.conns {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return l
}

func (l *tcpDelay) Addr() string { return l.ln.Addr().String() }

// track registers c to be closed at cleanup, or closes it and says false
// if cleanup has begun.
func (l *tcpDelay) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		_ = c.Close()
		return false
	default:
	}
	l.conns[c] = true
	return true
}

func (l *tcpDelay) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	_ = c.Close()
}

func (l *tcpDelay) serve(down net.Conn) {
	if !l.track(down) {
		return
	}
	defer l.untrack(down)
	up, err := net.DialTimeout("tcp", l.upstream, 10*time.Second)
	if err != nil {
		return
	}
	if !l.track(up) {
		return
	}
	defer l.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() { l.pipe(down.(*net.TCPConn), up.(*net.TCPConn)) })
	wg.Go(func() { l.pipe(up.(*net.TCPConn), down.(*net.TCPConn)) })
	wg.Wait()
}

// pipe carries src's bytes to dst, each chunk delayed, then half-closes
// dst; an error on either side closes both.
func (l *tcpDelay) pipe(src, dst *net.TCPConn) {
	q := newDelayQueue()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer q.close()
		for {
			buf := chunkPool.Get().(*[]byte)
			n, err := src.Read(*buf)
			if n > 0 {
				q.push(delayed{due: time.Now().Add(l.oneWay), b: (*buf)[:n], buf: buf, pool: &chunkPool})
			} else {
				chunkPool.Put(buf)
			}
			if err != nil {
				return
			}
		}
	})
	err := q.drain(l.done, &l.stats, func(d delayed) error {
		_, err := dst.Write(d.b)
		return err
	})
	if err == nil {
		err = dst.CloseWrite()
	}
	if err != nil {
		_ = src.Close()
		_ = dst.Close()
	}
	wg.Wait()
}

// udpDelay forwards datagrams sent to Addr to upstream through a delay
// link of the given RTT, and the answers back, with one upstream socket per client
// address (as a NAT would).
type udpDelay struct {
	oneWay   time.Duration // rtt/2
	stats    linkStats
	pc       *net.UDPConn
	upstream *net.UDPAddr
	done     chan struct{}
	wg       sync.WaitGroup
	toClient *delayQueue
	mu       sync.Mutex
	sessions map[string]*udpSession
}

type udpSession struct {
	up   *net.UDPConn
	toUp *delayQueue
}

// udpSocketBuffer is what the link asks for its sockets' buffers: QUIC
// at a few hundred MB/s sends bursts that the default 208 KiB would drop
// before the forwarder reads them.
const udpSocketBuffer = 8 << 20

func startUDPDelay(b testing.TB, upstream *net.UDPAddr, rtt time.Duration) *udpDelay {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	growBuffers(pc)
	l := &udpDelay{oneWay: rtt / 2, pc: pc, upstream: upstream, done: make(chan struct{}), toClient: newDelayQueue(), sessions: map[string]*udpSession{}}
	l.wg.Go(func() {
		_ = l.toClient.drain(l.done, &l.stats, func(d delayed) error {
			_, err := pc.WriteToUDP(d.b, d.from)
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil // a client gone is a datagram lost, not the link's end
		})
	})
	l.wg.Go(func() {
		for {
			buf := dgramPool.Get().(*[]byte)
			n, from, err := pc.ReadFromUDP(*buf)
			if err != nil {
				return
			}
			s := l.session(from)
			if s == nil {
				dgramPool.Put(buf)
				continue
			}
			s.toUp.push(delayed{due: time.Now().Add(l.oneWay), b: (*buf)[:n], buf: buf, pool: &dgramPool})
		}
	})
	b.Cleanup(func() {
		close(l.done)
		_ = pc.Close()
		l.mu.Lock()
		for _, s := range l.sessions {
			_ = s.up.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return l
}

func (l *udpDelay) Addr() *net.UDPAddr { return l.pc.LocalAddr().(*net.UDPAddr) }

// session returns the upstream socket of the client at from, made on its
// first datagram, or nil if the link is closing or the socket fails.
func (l *udpDelay) session(from *net.UDPAddr) *udpSession {
	key := from.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.sessions[key]; ok {
		return s
	}
	select {
	case <-l.done:
		return nil
	default:
	}
	up, err := net.DialUDP("udp", nil, l.upstream)
	if err != nil {
		return nil
	}
	growBuffers(up)
	s := &udpSession{up: up, toUp: newDelayQueue()}
	l.sessions[key] = s
	client := &net.UDPAddr{IP: from.IP, Port: from.Port}
	l.wg.Go(func() {
		_ = s.toUp.drain(l.done, &l.stats, func(d delayed) error {
			_, err := up.Write(d.b)
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
	})
	l.wg.Go(func() {
		for {
			buf := dgramPool.Get().(*[]byte)
			n, err := up.Read(*buf)
			if err != nil {
				dgramPool.Put(buf)
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // ICMP unreachable from a restarted upstream: go on
			}
			l.toClient.push(delayed{due: time.Now().Add(l.oneWay), b: (*buf)[:n], buf: buf, pool: &dgramPool, from: client})
		}
	})
	return s
}

// growBuffers sets c's socket buffers to udpSocketBuffer, past
// net.core.rmem_max where the process may (root: SO_RCVBUFFORCE), as
// quic-go does for its own sockets.
func growBuffers(c *net.UDPConn) {
	_ = c.SetReadBuffer(udpSocketBuffer)
	_ = c.SetWriteBuffer(udpSocketBuffer)
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, udpSocketBuffer)
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, udpSocketBuffer)
		})
	}
}

// udpRcvbufErrors is the kernel's count of UDP datagrams dropped for a
// full socket buffer (RcvbufErrors in /proc/net/snmp), machine-wide: on
// loopback that is the only way a datagram is lost, by the link's
// sockets or QUIC's.
func udpRcvbufErrors() (uint64, error) {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(fields) {
				return strconv.ParseUint(fields[i], 10, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/net/snmp: no Udp RcvbufErrors")
}

// The link runs in a process of its own, as a network would: inside the
// benchmark's process, whose goroutines keep both cores busy, Go notices
// a due timer or a readable socket only when a scheduler comes round to
// it, up to 10 ms late (sysmon's period), and the bursts that come out of
// that overflow quic-go's per-connection queue of received packets (it
// drops them as "dos_prevention" in a qlog), losses QUIC then backs off
// from. Its own runtime, idle but for the link, sleeps in epoll until the
// next datagram is due.

// delayLinkEnv tells this test binary, run again, to be a delay link:
// "tcp|udp upstream-host:port rtt".
const delayLinkEnv = "IPSX_DELAY_LINK"

// delayLinkPrefix marks the link process's replies on its stdout, which
// the test framework writes to as well.
const delayLinkPrefix = "delaylink: "

// TestDelayLinkProcess is not a test but the delay link's process, which
// startLinkProcess runs; without delayLinkEnv it skips. It prints its
// address, answers "stats" on stdin with the link's lateness, and ends at
// stdin's EOF.
func TestDelayLinkProcess(t *testing.T) {
	spec := os.Getenv(delayLinkEnv)
	if spec == "" {
		t.Skip("the delay link's process of BenchmarkTunnelRTT, run by it")
	}
	f := strings.Fields(spec)
	if len(f) != 3 {
		t.Fatalf("%s=%q: want tcp|udp upstream rtt", delayLinkEnv, spec)
	}
	rtt, err := time.ParseDuration(f[2])
	if err != nil {
		t.Fatal(err)
	}
	// Every thread at nice -10 (Linux's nice is per thread; the threads
	// made later inherit it from their maker), where the process may.
	if ents, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, e := range ents {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, -10)
			}
		}
	}
	var addr string
	var stats *linkStats
	switch f[0] {
	case "tcp":
		l := startTCPDelay(t, f[1], rtt)
		addr, stats = l.Addr(), &l.stats
	case "udp":
		up, err := net.ResolveUDPAddr("udp", f[1])
		if err != nil {
			t.Fatal(err)
		}
		l := startUDPDelay(t, up, rtt)
		addr, stats = l.Addr().String(), &l.stats
	default:
		t.Fatalf("%s=%q: want tcp or udp", delayLinkEnv, spec)
	}
	fmt.Println(delayLinkPrefix + addr)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "stats" {
			fmt.Println(delayLinkPrefix + stats.String())
		}
	}
}

// linkProcess is a delay link in a process of its own.
type linkProcess struct {
	addr string
	mu   sync.Mutex
	in   io.WriteCloser
	out  *bufio.Scanner
}

// startLinkProcess runs a delay link of kind tcp or udp with the given
// RTT to upstream (host:port) in a process of its own, this test binary
// run again, killed with this process, and stopped at cleanup.
func startLinkProcess(b *testing.B, kind, upstream string, rtt time.Duration) *linkProcess {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestDelayLinkProcess$", "-test.count=1", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s", delayLinkEnv, kind, upstream, rtt))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("delay link: %v", err)
	}
	p := &linkProcess{in: in, out: bufio.NewScanner(out)}
	b.Cleanup(func() {
		_ = in.Close() // the link's cue to end
		exited := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, out)
			close(exited)
		}()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = cmd.Wait()
	})
	// A hung link fails at the benchmark's timeout; one that exits ends
	// its stdout, and this read, at once.
	if p.addr, err = p.reply(); err != nil {
		b.Fatalf("delay link %s to %s: %v: %s", kind, upstream, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return p
}

// reply is the link's next reply line.
func (p *linkProcess) reply() (string, error) {
	for p.out.Scan() {
		if r, ok := strings.CutPrefix(p.out.Text(), delayLinkPrefix); ok {
			return r, nil
		}
	}
	if err := p.out.Err(); err != nil {
		return "", err
	}
	return "", io.ErrUnexpectedEOF
}

// Stats is the link's lateness (see linkStats).
func (p *linkProcess) Stats() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.in, "stats\n"); err != nil {
		return err.Error()
	}
	r, err := p.reply()
	if err != nil {
		return err.Error()
	}
	return r
}
