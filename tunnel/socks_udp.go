package tunnel

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// SOCKS5 UDP ASSOCIATE (RFC 1928 section 7). A client that authenticated
// on its TCP control connection exactly as for CONNECT (the same
// credentials, failed-attempt limit and route check) asks for an
// association; the server binds a UDP socket on the address the client
// reached it at and answers with that socket's address. Datagrams then
// arrive there wrapped in a header (RSV RSV FRAG ATYP DST.ADDR DST.PORT
// DATA); each distinct destination becomes one UDP flow of the Router
// ([UDPRouter]), opened on its first datagram, and answers come back
// wrapped in the header the client used for that destination. The
// association lives as long as its control connection; a flow no datagram
// crossed for the UDP idle timeout is closed, and reopened by the next
// datagram.
//
// Only the control connection's host may use the association: datagrams
// from any other address are dropped, and the first accepted one fixes the
// client's port (or the port the request named, if not 0). Fragments
// (FRAG ≠ 0) are dropped, as the RFC allows a server that does not
// reassemble. Datagrams that cannot be carried (a flow still opening with
// a full queue, a destination refused a moment ago, too many flows) are
// dropped: UDP promises no delivery, and a client retries.

// UDPRouter is a [Router] that also carries UDP flows. RouteUDP is called
// once per destination of an association, concurrently, with ctx carrying
// the connect timeout and the credential ([CredentialOf]); target is
// host:port as the client wrote it, unresolved. The returned conn carries
// one datagram per Read and per Write (a connected *net.UDPConn, a
// *PacketConn); the caller closes it. Errors are as for Route.
type UDPRouter interface {
	RouteUDP(ctx context.Context, route Route, target string) (net.Conn, error)
}

// Limits of an association.
const (
	// MaxAssociationFlows bounds the destinations one association holds
	// flows to at once (each is a tunnel stream).
	MaxAssociationFlows = 64
	// flowQueue is how many datagrams wait for a flow that is opening.
	flowQueue = 32
	// refusedFor is how long a destination whose flow could not be opened
	// has its datagrams dropped before the next try.
	refusedFor = 2 * time.Second
)

// WithUDPIdleTimeout sets how long a UDP flow of a SOCKS5 association
// may carry no datagram either way before it is closed (default
// DefaultUDPIdleTimeout).
func WithUDPIdleTimeout(d time.Duration) ProxyOption {
	return func(c *proxyConfig) { c.udpIdle = d }
}

// errSOCKSFragment is a datagram with FRAG ≠ 0.
var errSOCKSFragment = fmt.Errorf("%w: fragmented datagram", ErrSOCKS)

// parseSOCKSUDP parses a client's datagram, RSV RSV FRAG ATYP DST.ADDR
// DST.PORT DATA, and returns the destination (host:port, canonical as
// for CONNECT) and the header's length: b[:n] is the header, b[n:] the
// payload.
func parseSOCKSUDP(b []byte) (string, int, error) {
	if len(b) < 4 {
		return "", 0, fmt.Errorf("%w: udp header of %d bytes", ErrSOCKS, len(b))
	}
	if b[0] != 0 || b[1] != 0 {
		return "", 0, fmt.Errorf("%w: udp header reserved bytes %#x %#x", ErrSOCKS, b[0], b[1])
	}
	if b[2] != 0 {
		return "", 0, errSOCKSFragment
	}
	r := bytes.NewReader(b[4:])
	host, port, err := readSOCKSAddr(r, b[3])
	if err != nil {
		return "", 0, err
	}
	if port == 0 {
		return "", 0, fmt.Errorf("%w: udp destination port 0", ErrSOCKS)
	}
	return net.JoinHostPort(host, fmt.Sprint(port)), len(b) - r.Len(), nil
}

// appendSOCKSUDPAddr appends a reply header for addr: RSV RSV FRAG=0 and
// the address as IPv4, IPv6 or a domain.
func appendSOCKSUDPAddr(b []byte, host string, port uint16) []byte {
	b = append(b, 0, 0, 0)
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is4() || a.Is4In6() {
			b = append(b, socksAtypIPv4)
			a4 := a.Unmap().As4()
			b = append(b, a4[:]...)
		} else {
			b = append(b, socksAtypIPv6)
			a16 := a.As16()
			b = append(b, a16[:]...)
		}
	} else {
		b = append(b, socksAtypDomain, byte(len(host)))
		b = append(b, host...)
	}
	return append(b, byte(port>>8), byte(port))
}

// associate serves a UDP ASSOCIATE request on the control connection c
// until c ends or ctx is done. hint is the client's DST.ADDR:DST.PORT.
func (s *SOCKSServer) associate(ctx context.Context, c net.Conn, auth authResult, hint string) {
	router := s.router.(UDPRouter) // checked by handshake
	fail := func(err error) {
		s.cfg.logger.Debug("socks5 udp associate", "route", auth.route.String(), "err", err)
		_, _ = c.Write(socksReply(socksGeneralFailure))
		_ = c.Close()
	}
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		fail(fmt.Errorf("tunnel: control connection is %T, not TCP", c.LocalAddr()))
		return
	}
	client, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		fail(fmt.Errorf("tunnel: client address %q: %w", c.RemoteAddr(), err))
		return
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: local.IP, Zone: local.Zone})
	if err != nil {
		fail(fmt.Errorf("tunnel: bind udp for the association: %w", err))
		return
	}
	bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	rep := append([]byte{socksVersion, socksSucceeded}, appendSOCKSUDPAddr(nil, bound.Addr().Unmap().String(), bound.Port())[2:]...)
	if _, err := c.Write(rep); err != nil {
		_ = pc.Close()
		abort(c)
		return
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		_ = pc.Close()
		abort(c)
		return
	}
	a := &association{
		s: s, router: router, route: auth.route, cred: auth.credential, pc: pc,
		clientIP: client.Addr().Unmap(), flows: map[string]*udpFlow{},
		idle: s.cfg.udpIdle, log: s.cfg.logger.With("route", auth.route.String(), "client", client.String()),
	}
	if hp, err := netip.ParseAddrPort(hint); err == nil && hp.Port() != 0 {
		a.clientPort = hp.Port()
	}
	a.run(ctx, c)
}

// association is one UDP ASSOCIATE. Its dispatch loop alone reads pc and
// owns flows; each flow's goroutines write to pc.
type association struct {
	s          *SOCKSServer
	router     UDPRouter
	route      Route
	cred       string
	pc         *net.UDPConn
	clientIP   netip.Addr
	clientPort uint16         // the port the request named, or 0
	client     netip.AddrPort // fixed by the first datagram accepted
	idle       time.Duration
	log        *slog.Logger

	flowsMu sync.Mutex // guards flows: the dispatch loop and the sweeper
	flows   map[string]*udpFlow
	wg      sync.WaitGroup
	dropped atomic.Uint64
}

// udpFlow is one destination of an association.
type udpFlow struct {
	target   string
	reply    []byte // the header answers to the client carry
	q        chan []byte
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when its goroutines are gone
	last     atomic.Int64  // unix nanoseconds of the last datagram either way
	err      error         // why it could not be opened; read after done
	ended    time.Time     // when done was seen closed with err (dispatch loop only)
}

func (f *udpFlow) touch() { f.last.Store(time.Now().UnixNano()) }
func (f *udpFlow) shut()  { f.stopOnce.Do(func() { close(f.stop) }) }
func (f *udpFlow) over() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (a *association) run(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The control connection: anything read is ignored, its end ends the
	// association.
	a.wg.Go(func() {
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				cancel()
				return
			}
		}
	})
	stop := context.AfterFunc(ctx, func() { _ = a.pc.Close(); _ = c.Close() })
	defer stop()
	if a.idle > 0 {
		a.wg.Go(func() { a.sweep(ctx) })
	}

	buf := make([]byte, 2+MaxDatagramSize+262)
	for {
		n, from, err := a.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Debug("socks5 udp read", "err", err)
			}
			break
		}
		a.dispatch(ctx, from, buf[:n])
	}
	cancel()
	a.s.cfg.logger.Debug("socks5 udp association ends", "flows", len(a.flows), "dropped", a.dropped.Load())
	a.flowsMu.Lock()
	for _, f := range a.flows {
		f.shut()
	}
	a.flowsMu.Unlock()
	a.wg.Wait()
	_ = c.Close()
}

// dispatch hands one datagram from the client to its destination's flow.
func (a *association) dispatch(ctx context.Context, from netip.AddrPort, b []byte) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if !a.client.IsValid() {
		if from.Addr() != a.clientIP || (a.clientPort != 0 && from.Port() != a.clientPort) {
			a.drop("datagram from a stranger", "from", from.String())
			return
		}
		a.client = from
	} else if from != a.client {
		a.drop("datagram from a stranger", "from", from.String())
		return
	}
	target, hl, err := parseSOCKSUDP(b)
	if err != nil {
		a.drop("bad datagram", "err", err)
		return
	}
	a.flowsMu.Lock()
	defer a.flowsMu.Unlock()
	f, ok := a.flows[target]
	if ok && f.over() {
		if f.err != nil {
			if f.ended.IsZero() {
				f.ended = time.Now()
			}
			if time.Since(f.ended) < refusedFor {
				a.drop("destination refused a moment ago", "target", target, "err", f.err)
				return
			}
		}
		delete(a.flows, target)
		ok = false
	}
	if !ok {
		if len(a.flows) >= MaxAssociationFlows {
			a.drop("too many flows", "target", target)
			return
		}
		f = &udpFlow{target: target, reply: bytes.Clone(b[:hl]), q: make(chan []byte, flowQueue),
			stop: make(chan struct{}), done: make(chan struct{})}
		f.touch()
		a.flows[target] = f
		a.wg.Go(func() { a.serveFlow(ctx, f) })
	}
	select {
	case f.q <- bytes.Clone(b[hl:]):
	default:
		a.drop("flow queue full", "target", target)
	}
}

func (a *association) drop(why string, args ...any) {
	a.dropped.Add(1)
	a.log.Debug("socks5 udp drop: "+why, args...)
}

// serveFlow opens the flow and forwards both ways until it is stopped,
// its conn fails, or the association ends.
func (a *association) serveFlow(ctx context.Context, f *udpFlow) {
	defer close(f.done)
	rctx, cancel := context.WithTimeout(WithCredential(ctx, a.cred), a.s.cfg.connectTimeout)
	conn, err := a.router.RouteUDP(rctx, a.route, f.target)
	cancel()
	if err != nil {
		f.err = err
		a.log.Debug("socks5 udp flow refused", "target", f.target, "status", StatusOf(err).String(), "err", err)
		return
	}
	var wg sync.WaitGroup
	defer func() {
		f.shut()
		_ = conn.Close() // ends the reader's Read
		wg.Wait()
	}()
	wg.Go(func() {
		defer f.shut()
		buf := make([]byte, len(f.reply)+MaxDatagramSize)
		copy(buf, f.reply)
		for {
			n, err := conn.Read(buf[len(f.reply):])
			if err != nil {
				return
			}
			f.touch()
			if _, err := a.pc.WriteToUDPAddrPort(buf[:len(f.reply)+n], a.client); err != nil && ctx.Err() == nil {
				a.drop("write to client", "err", err)
			}
		}
	})
	for {
		select {
		case p := <-f.q:
			f.touch()
			if _, err := conn.Write(p); err != nil {
				a.log.Debug("socks5 udp flow write", "target", f.target, "err", err)
				return
			}
		case <-f.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// sweep stops flows idle for longer than the idle timeout.
func (a *association) sweep(ctx context.Context) {
	t := time.NewTicker(max(a.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		a.flowsMu.Lock()
		for _, f := range a.flows {
			if time.Duration(now-f.last.Load()) > a.idle {
				f.shut()
			}
		}
		a.flowsMu.Unlock()
	}
}
