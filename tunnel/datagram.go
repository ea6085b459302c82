package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// UDP flows. A UDP flow is one tunnel stream (header Flow FlowUDP) between
// one socket of the requester and one target host:port: the provider dials
// a connected UDP socket from the deal's egress IP, under the same exit
// policy as TCP (checked on the resolved address, just before connect(2)),
// and from then on each datagram is one frame on the stream, both ways:
//
//	length  uint16   0..MaxDatagramSize
//	payload [length]
//
// A connected socket takes answers from the target only, as a NAT with
// endpoint-dependent filtering would; a requester that talks to several
// targets from one socket (SOCKS5 UDP ASSOCIATE, a VPN's DNS) opens one
// flow per target. Neither end keeps a flow no datagram crossed for its
// idle timeout (DefaultUDPIdleTimeout, as NATs do: RFC 4787 asks for two
// minutes at least). Either end closes the stream to end the flow; there
// is no half-close, and a requester's CloseWrite ends the flow too.
//
// Metering counts payload bytes (framing is free) and grants a datagram
// whole or not at all: a datagram is never cut. Datagrams wait, like TCP
// bytes, while the paid-ahead allowance is used up; the stream's flow
// control then pushes back to the requester, who drops what its socket
// cannot hold, as UDP may.

// MaxDatagramSize is the largest payload a UDP flow carries: the most an
// IPv4 UDP datagram holds (65535 - 20 - 8).
const MaxDatagramSize = 65507

// DefaultUDPIdleTimeout is how long a UDP flow may carry no datagram
// either way before its end closes it.
const DefaultUDPIdleTimeout = 2 * time.Minute

// ErrMalformedDatagram is wrapped by every datagram frame decoding error.
var ErrMalformedDatagram = fmt.Errorf("%w: malformed datagram frame", ErrBadRequest)

// AppendDatagram appends p's frame to b.
func AppendDatagram(b, p []byte) ([]byte, error) {
	if len(p) > MaxDatagramSize {
		return b, fmt.Errorf("%w: datagram of %d bytes, more than %d", ErrBadRequest, len(p), MaxDatagramSize)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	return append(b, p...), nil
}

// ReadDatagram reads one datagram frame from r into buf and returns the
// payload's length. A payload longer than buf is cut to len(buf), the rest
// of the frame is read and dropped (the stream stays in step), and the
// error is io.ErrShortBuffer: pass a buffer of MaxDatagramSize to get
// every datagram whole. A clean end of r before a frame is io.EOF; one
// inside a frame, or a length over MaxDatagramSize, is
// ErrMalformedDatagram.
func ReadDatagram(r io.Reader, buf []byte) (int, error) {
	var pre [2]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: %v", ErrMalformedDatagram, err)
		}
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(pre[:]))
	if n > MaxDatagramSize {
		return 0, fmt.Errorf("%w: length %d over %d", ErrMalformedDatagram, n, MaxDatagramSize)
	}
	k := min(n, len(buf))
	if _, err := io.ReadFull(r, buf[:k]); err != nil {
		return 0, datagramBodyErr(err)
	}
	if k < n {
		if _, err := io.CopyN(io.Discard, r, int64(n-k)); err != nil {
			return 0, datagramBodyErr(err)
		}
		return k, io.ErrShortBuffer
	}
	return n, nil
}

func datagramBodyErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended inside a frame", ErrMalformedDatagram)
	}
	return err
}

// OpenUDP is OpenStream for a UDP flow: h.Flow is set to FlowUDP, and the
// stream comes back as a *PacketConn whose Read and Write carry one
// datagram each.
func OpenUDP(ctx context.Context, s Stream, h Header) (*PacketConn, error) {
	h.Flow = FlowUDP
	c, err := OpenStream(ctx, s, h)
	if err != nil {
		return nil, err
	}
	pc := newPacketConn(c.s, c.hdr)
	pc.flow = c.flow
	return pc, nil
}

// PacketConn is an open UDP flow on the requester's side: a net.Conn
// whose every Read returns one datagram from the target and every Write
// sends one, like a connected *net.UDPConn. It counts payload bytes.
// Read and Write may be called concurrently with each other; concurrent
// Reads (or Writes) are serialised.
type PacketConn struct {
	s       Stream
	hdr     Header
	flow    uint64
	rmu     sync.Mutex
	r       *bufio.Reader
	wmu     sync.Mutex
	wbuf    []byte
	in, out atomic.Uint64
}

var _ net.Conn = (*PacketConn)(nil)

func newPacketConn(s Stream, h Header) *PacketConn {
	return &PacketConn{s: s, hdr: h, r: bufio.NewReaderSize(s, 2+MaxDatagramSize)}
}

// Read reads one datagram (see ReadDatagram for a short p).
func (c *PacketConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, err := ReadDatagram(c.r, p)
	c.in.Add(uint64(n))
	return n, err
}

// Write sends p as one datagram; more than MaxDatagramSize is an error and
// nothing is sent.
func (c *PacketConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := AppendDatagram(c.wbuf[:0], p)
	if err != nil {
		return 0, err
	}
	c.wbuf = b
	if _, err := c.s.Write(b); err != nil {
		return 0, err
	}
	c.out.Add(uint64(len(p)))
	return len(p), nil
}

// Close ends the flow.
func (c *PacketConn) Close() error { return c.s.Close() }

// CloseWrite ends the flow from this side: the provider closes it when
// it reads the end.
func (c *PacketConn) CloseWrite() error { return c.s.CloseWrite() }

// Reset aborts the stream.
func (c *PacketConn) Reset() error {
	abort(c.s)
	return nil
}

func (c *PacketConn) SetDeadline(t time.Time) error      { return c.s.SetDeadline(t) }
func (c *PacketConn) SetReadDeadline(t time.Time) error  { return c.s.SetReadDeadline(t) }
func (c *PacketConn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }

// LocalAddr is the stream's local address if it has one.
func (c *PacketConn) LocalAddr() net.Addr {
	if a, ok := c.s.(interface{ LocalAddr() net.Addr }); ok {
		return a.LocalAddr()
	}
	return Addr(c.hdr.Target)
}

// RemoteAddr is the target, host:port as requested (unresolved).
func (c *PacketConn) RemoteAddr() net.Addr { return Addr(c.hdr.Target) }

// Header returns the header the flow was opened with.
func (c *PacketConn) Header() Header { return c.hdr }

// Entry returns the flow's log entry (see Conn.Entry).
func (c *PacketConn) Entry() LogEntry {
	return LogEntry{Flow: c.flow, Time: c.hdr.Time, Target: c.hdr.LogTarget()}
}

// Bytes are the payload bytes written and read so far.
func (c *PacketConn) Bytes() (up, down uint64) { return c.out.Load(), c.in.Load() }

// serveUDP forwards a UDP flow's datagrams between the stream s and the
// connected socket target until either side ends, ctx is done, or no
// datagram moved for idle. It closes both.
func serveUDP(ctx context.Context, s Stream, target net.Conn, m *Meter, idle time.Duration) (up, down int64, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if idle > 0 {
		w := watchIdle(idle, func() { cancel(fmt.Errorf("%w: no datagram either way for %s", ErrIdle, idle)) })
		defer w.stop()
		touch := w.touch
		return pumpUDP(ctx, cancel, s, target, m, touch)
	}
	return pumpUDP(ctx, cancel, s, target, m, func() {})
}

func pumpUDP(ctx context.Context, cancel context.CancelCauseFunc, s Stream, target net.Conn, m *Meter, touch func()) (up, down int64, err error) {
	var closeOnce sync.Once
	closeBoth := func() { closeOnce.Do(func() { abort(s); _ = target.Close() }) }
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()

	var wg sync.WaitGroup
	var upN, downN atomic.Int64
	// Requester → target. The end of the stream is the requester ending
	// the flow: a clean end.
	wg.Go(func() {
		r := bufio.NewReaderSize(s, 2+MaxDatagramSize)
		buf := make([]byte, MaxDatagramSize)
		for {
			n, err := ReadDatagram(r, buf)
			if err != nil {
				if errors.Is(err, io.EOF) {
					cancel(errFlowDone)
				} else {
					cancel(err)
				}
				return
			}
			touch()
			if err := m.grantAll(ctx, n, true); err != nil {
				cancel(err)
				return
			}
			k, err := target.Write(buf[:n])
			if err != nil && !isICMPError(err) {
				m.delivered(true, 0, n)
				cancel(fmt.Errorf("tunnel: udp write to target: %w", err))
				return
			}
			m.delivered(true, k, n)
			upN.Add(int64(k))
		}
	})
	// Target → requester.
	wg.Go(func() {
		buf := make([]byte, 2+MaxDatagramSize)
		for {
			n, err := target.Read(buf[2:])
			if err != nil {
				if isICMPError(err) {
					// An ICMP error for an earlier datagram (port
					// unreachable): the flow lives on, as a NAT's would.
					continue
				}
				cancel(fmt.Errorf("tunnel: udp read from target: %w", err))
				return
			}
			touch()
			if err := m.grantAll(ctx, n, false); err != nil {
				cancel(err)
				return
			}
			binary.BigEndian.PutUint16(buf, uint16(n))
			if _, err := s.Write(buf[:2+n]); err != nil {
				m.delivered(false, 0, n)
				cancel(fmt.Errorf("tunnel: udp write to stream: %w", err))
				return
			}
			m.delivered(false, n, n)
			downN.Add(int64(n))
		}
	})
	<-ctx.Done()
	closeBoth()
	wg.Wait()
	up, down = upN.Load(), downN.Load()
	if cause := context.Cause(ctx); !errors.Is(cause, errFlowDone) {
		return up, down, cause
	}
	return up, down, nil
}

// errFlowDone is the cause of a UDP flow the requester ended.
var errFlowDone = errors.New("tunnel: flow ended by the requester")

// isICMPError reports whether err is what a connected UDP socket returns
// after an ICMP error for an earlier datagram.
func isICMPError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}
