package vpn

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsx/ipsx/tunnel"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Dialer opens the tunnel flows the VPN maps the TUN's flows onto. node
// implements it with the deals of the VPN's route and tunnel streams
// (tunnel.OpenStream, tunnel.OpenUDP); tests dial directly.
//
// Both are called concurrently, once per flow (and again for a UDP flow
// whose tunnel broke), with target an IP:port (the TUN sees addresses,
// not names) and ctx bounding the open. DialTCP returns a byte stream
// whose CloseWrite, if it has one, half-closes; DialUDP a conn carrying
// one datagram per Read and per Write. Errors are the tunnel package's
// (a *tunnel.StatusError from the provider, tunnel.ErrNoRoute, ...): a
// TCP flow that cannot be opened is answered with a reset. A returned
// conn that has a method Deal() string names the deal it runs under in
// the VPN's status.
type Dialer interface {
	DialTCP(ctx context.Context, target string) (net.Conn, error)
	DialUDP(ctx context.Context, target string) (net.Conn, error)
}

// Flow is one flow of the TUN, as Status reports it.
type Flow struct {
	Proto   string    `json:"proto"`  // "tcp" or "udp"
	Src     string    `json:"src"`    // the local application's address
	Dst     string    `json:"dst"`    // where it goes (for DNS: the TUN's resolver)
	Target  string    `json:"target"` // what the tunnel flow was opened to
	Deal    string    `json:"deal,omitempty"`
	Up      uint64    `json:"up"`   // bytes from the application
	Down    uint64    `json:"down"` // bytes to it
	Started time.Time `json:"started"`
	// Reopened counts the times a UDP flow's tunnel broke and was opened
	// again (on another deal if its deal's provider went away).
	Reopened int `json:"reopened,omitempty"`
}

// Counters are the VPN's totals since it came up.
type Counters struct {
	TCPFlows    uint64 `json:"tcpFlows"`    // TCP connections carried
	UDPFlows    uint64 `json:"udpFlows"`    // UDP flows carried
	Refused     uint64 `json:"refused"`     // flows the tunnel could not open (reset, or datagrams dropped)
	Failed      uint64 `json:"failed"`      // TCP flows cut because their tunnel broke
	Up          uint64 `json:"up"`          // bytes from applications, all flows
	Down        uint64 `json:"down"`        // bytes to them
	DroppedICMP uint64 `json:"droppedIcmp"` // ICMP packets from the TUN (not carried)
}

// flow is one live flow; its counters are updated while it runs.
type flow struct {
	proto, src, dst, target string
	started                 time.Time
	up, down                atomic.Uint64
	deal                    atomic.Value // string
	reopened                atomic.Int32
}

func (f *flow) status() Flow {
	d, _ := f.deal.Load().(string)
	return Flow{Proto: f.proto, Src: f.src, Dst: f.dst, Target: f.target, Deal: d,
		Up: f.up.Load(), Down: f.down.Load(), Started: f.started, Reopened: int(f.reopened.Load())}
}

func (f *flow) setDeal(c net.Conn) {
	if d, ok := c.(interface{ Deal() string }); ok {
		f.deal.Store(d.Deal())
	}
}

// flows tracks the live flows, the totals and the goroutines that serve
// flows (the TCP forwarder starts one per SYN itself; each enters here
// first, so that the VPN's Run can wait for all of them).
type flows struct {
	mu     sync.Mutex
	live   map[*flow]struct{}
	c      Counters
	wg     sync.WaitGroup
	closed bool
}

// enter registers a flow goroutine; false once the VPN is stopping.
func (fs *flows) enter() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return false
	}
	fs.wg.Add(1)
	return true
}

func (fs *flows) exit() { fs.wg.Done() }

// close refuses new flow goroutines and waits for those running.
func (fs *flows) close() {
	fs.mu.Lock()
	fs.closed = true
	fs.mu.Unlock()
	fs.wg.Wait()
}

func (fs *flows) add(f *flow) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.live[f] = struct{}{}
	if f.proto == "tcp" {
		fs.c.TCPFlows++
	} else {
		fs.c.UDPFlows++
	}
}

func (fs *flows) remove(f *flow) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.live, f)
	fs.c.Up += f.up.Load()
	fs.c.Down += f.down.Load()
}

func (fs *flows) count(what *uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	*what++
}

// snapshot returns the live flows, oldest first, and the totals (live
// flows' bytes included).
func (fs *flows) snapshot() ([]Flow, Counters) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Flow, 0, len(fs.live))
	c := fs.c
	for f := range fs.live {
		s := f.status()
		c.Up += s.Up
		c.Down += s.Down
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].Src+out[i].Dst < out[j].Src+out[j].Dst
	})
	return out, c
}

// handler serves the stack's flows; one per VPN run.
type handler struct {
	ctx     context.Context
	dialer  Dialer
	fs      *flows
	cfg     *Config
	connect time.Duration
	log     logger
}

type logger interface {
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
}

// tcpRequest serves one TCP SYN: the tunnel flow is opened first, and
// the handshake completed only if it opened, so that a target the tunnel
// cannot reach is refused at once (a reset) rather than accepted and cut.
func (h *handler) tcpRequest(r *tcp.ForwarderRequest) {
	if !h.fs.enter() {
		r.Complete(true)
		return
	}
	defer h.fs.exit()
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	src := netip.AddrPortFrom(addrOf(id.RemoteAddress), id.RemotePort)
	ctx, cancel := context.WithTimeout(h.ctx, h.connect)
	up, err := h.dialer.DialTCP(ctx, dst.String())
	cancel()
	if err != nil {
		h.fs.count(&h.fs.c.Refused)
		h.log.Debug("vpn tcp flow refused", "src", src.String(), "dst", dst.String(), "status", tunnel.StatusOf(err).String(), "err", err)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		_ = up.Close()
		h.log.Debug("vpn tcp endpoint", "src", src.String(), "dst", dst.String(), "err", terr.String())
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	app := gonet.NewTCPConn(&wq, ep)
	reset := func() { ep.Abort() }
	f := &flow{proto: "tcp", src: src.String(), dst: dst.String(), target: dst.String(), started: time.Now()}
	f.setDeal(up)
	h.fs.add(f)
	defer h.fs.remove(f)
	if err := splice(h.ctx, app, reset, up, f); err != nil {
		h.fs.count(&h.fs.c.Failed)
		h.log.Debug("vpn tcp flow cut", "src", f.src, "dst", f.dst, "err", err)
	}
}

// splice copies app↔up until both directions end, half-closing each
// destination at its source's EOF. On an error either way, or when ctx
// ends, both are aborted: the application sees a reset, not a clean end,
// for a flow whose tunnel broke.
func splice(ctx context.Context, app net.Conn, reset func(), up net.Conn, f *flow) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var once sync.Once
	kill := func() {
		once.Do(func() {
			reset()
			_ = app.Close()
			if r, ok := up.(interface{ Reset() error }); ok {
				_ = r.Reset()
			} else {
				_ = up.Close()
			}
		})
	}
	stop := context.AfterFunc(ctx, kill)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := copyHalf(up, app, &f.up); err != nil {
			cancel(err)
		}
	})
	if err := copyHalf(app, up, &f.down); err != nil {
		cancel(err)
	}
	wg.Wait()
	if stop() {
		_ = app.Close()
		_ = up.Close()
		return nil
	}
	return context.Cause(ctx)
}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func copyHalf(dst, src net.Conn, n *atomic.Uint64) error {
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return err
			}
			n.Add(uint64(k))
		}
		if rerr == io.EOF {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				return cw.CloseWrite()
			}
			return dst.Close()
		}
		if rerr != nil {
			return rerr
		}
	}
}

// udpRequest takes a new UDP 4-tuple: its endpoint is made here, on the
// packet path, so that the next datagrams of the 4-tuple go to it; the
// flow is served in a goroutine of its own.
func (h *handler) udpRequest(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	src := netip.AddrPortFrom(addrOf(id.RemoteAddress), id.RemotePort)
	var wq waiter.Queue
	ep, err := r.CreateEndpoint(&wq)
	if err != nil {
		h.log.Debug("vpn udp endpoint", "src", src.String(), "dst", dst.String(), "err", err.String())
		return
	}
	app := gonet.NewUDPConn(&wq, ep)
	target := dst
	idle := h.cfg.UDPIdle
	if h.cfg.DNS.IsValid() && dst == netip.AddrPortFrom(h.cfg.DNSAddr, 53) {
		// The TUN's resolver: queries go to the configured server,
		// through the tunnel.
		target = h.cfg.DNS
		idle = h.cfg.DNSIdle
	}
	if dst.Port() == 53 && idle > h.cfg.DNSIdle {
		idle = h.cfg.DNSIdle
	}
	if !h.fs.enter() {
		_ = app.Close()
		return
	}
	f := &flow{proto: "udp", src: src.String(), dst: dst.String(), target: target.String(), started: time.Now()}
	h.fs.add(f)
	go func() {
		defer h.fs.exit()
		defer h.fs.remove(f)
		h.serveUDP(app, f, idle)
	}()
}

// serveUDP forwards one UDP flow until it is idle for idle or the VPN
// stops. A tunnel flow that breaks is opened again on the next datagram
// from the application (through whichever deal the Dialer picks then):
// UDP has no connection to lose, so the application sees at most a lost
// datagram and, after a move to another deal, answers from another IP.
func (h *handler) serveUDP(app *gonet.UDPConn, f *flow, idle time.Duration) {
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	w := watchIdle(idle, cancel)
	defer w.stop()
	touch := w.touch
	stop := context.AfterFunc(ctx, func() { _ = app.Close() })
	defer stop()

	var (
		mu   sync.Mutex
		up   net.Conn // the current tunnel flow, nil while none
		gen  int      // bumped each time up is replaced
		wg   sync.WaitGroup
		wait time.Time // no reopen before this after a failed open
	)
	closeUp := func() {
		mu.Lock()
		defer mu.Unlock()
		if up != nil {
			_ = up.Close()
			up = nil
		}
	}
	defer func() { closeUp(); wg.Wait() }()

	// open returns the tunnel flow, opening it if there is none.
	open := func() (net.Conn, int, error) {
		mu.Lock()
		defer mu.Unlock()
		if up != nil {
			return up, gen, nil
		}
		if time.Now().Before(wait) {
			return nil, 0, errBackoff
		}
		dctx, dcancel := context.WithTimeout(ctx, h.connect)
		c, err := h.dialer.DialUDP(dctx, f.target)
		dcancel()
		if err != nil {
			wait = time.Now().Add(time.Second)
			return nil, 0, err
		}
		if gen > 0 {
			f.reopened.Add(1)
		}
		gen++
		up = c
		f.setDeal(c)
		g := gen
		wg.Go(func() {
			buf := make([]byte, tunnel.MaxDatagramSize)
			for {
				n, err := c.Read(buf)
				if err != nil {
					// The tunnel flow ended (its provider idled it out or
					// went away): forget it; the next datagram reopens.
					mu.Lock()
					if gen == g && up == c {
						_ = c.Close()
						up = nil
					}
					mu.Unlock()
					if ctx.Err() == nil {
						h.log.Debug("vpn udp tunnel ended", "src", f.src, "dst", f.dst, "err", err)
					}
					return
				}
				touch()
				if _, err := app.Write(buf[:n]); err != nil {
					cancel()
					return
				}
				f.down.Add(uint64(n))
			}
		})
		return c, g, nil
	}

	buf := make([]byte, tunnel.MaxDatagramSize)
	for {
		n, err := app.Read(buf)
		if err != nil {
			return // closed: idle, or the VPN stops
		}
		touch()
		c, g, err := open()
		if err != nil {
			if !errors.Is(err, errBackoff) {
				h.fs.count(&h.fs.c.Refused)
				h.log.Debug("vpn udp flow refused", "src", f.src, "target", f.target, "status", tunnel.StatusOf(err).String(), "err", err)
			}
			continue // the datagram is lost, as on any network
		}
		if _, err := c.Write(buf[:n]); err != nil {
			mu.Lock()
			if gen == g && up == c {
				_ = c.Close()
				up = nil
			}
			mu.Unlock()
			continue
		}
		f.up.Add(uint64(n))
	}
}

var errBackoff = errors.New("vpn: reopening a failed flow shortly")

// idleWatch calls onIdle once when touch has not been called for idle.
// It runs on a timer, not a goroutine of its own.
type idleWatch struct {
	idle    time.Duration
	last    atomic.Int64 // unix nanoseconds of the last touch
	onIdle  func()
	mu      sync.Mutex // guards timer and stopped
	timer   *time.Timer
	stopped bool
}

func watchIdle(idle time.Duration, onIdle func()) *idleWatch {
	w := &idleWatch{idle: idle, onIdle: onIdle}
	w.touch()
	w.mu.Lock()
	w.timer = time.AfterFunc(idle, w.check)
	w.mu.Unlock()
	return w
}

func (w *idleWatch) touch() { w.last.Store(time.Now().UnixNano()) }

func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	quiet := time.Since(time.Unix(0, w.last.Load()))
	if quiet >= w.idle {
		w.stopped = true
		w.onIdle()
		return
	}
	w.timer.Reset(w.idle - quiet)
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}
