package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Stream is what the tunnel protocol runs over: one bidirectional,
// reliable, ordered byte stream per proxied connection, with half-close and
// deadlines. A libp2p network.Stream satisfies it, and so does
// *net.TCPConn. If the stream also has Reset() error (libp2p), it is used to
// abort on errors.
type Stream interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
	CloseWrite() error
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Timeouts of the stream protocol.
const (
	// DefaultOpenTimeout bounds OpenStream (header out, status back) when
	// ctx has no earlier deadline. It covers the provider's resolution and
	// connect (at most its policy's DialTimeout, 10 s by default).
	DefaultOpenTimeout = 15 * time.Second
	// DefaultHeaderTimeout is how long the exit waits for the header.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultMaxClockSkew is how far the header's time may be from the
	// provider's clock.
	DefaultMaxClockSkew = 2 * time.Minute

	statusWriteTimeout = 10 * time.Second
)

// OpenStream is the requester's end: it writes h on s, waits for the
// provider's status, and returns the stream as a net.Conn carrying the
// target's bytes. h.Time is set to now if zero. On a non-OK status it
// returns a *StatusError (matching ErrNotAllowed, ErrNotPaid, ... with
// errors.Is) and s is closed. On any error s is closed or reset: the caller
// hands s over.
func OpenStream(ctx context.Context, s Stream, h Header) (*Conn, error) {
	if h.Time.IsZero() {
		h.Time = time.Now()
	}
	h.Time = h.Time.Truncate(time.Millisecond)
	frame, err := h.MarshalBinary()
	if err != nil {
		abort(s)
		return nil, err
	}
	deadline := time.Now().Add(DefaultOpenTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.SetDeadline(deadline); err != nil {
		abort(s)
		return nil, fmt.Errorf("tunnel: set deadline: %w", err)
	}
	// Cancelling ctx interrupts the blocked read or write.
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := s.Write(frame); err != nil {
		abort(s)
		return nil, openErr(ctx, "write tunnel header", err)
	}
	st, msg, flow, err := readStatus(s)
	if err != nil {
		abort(s)
		return nil, openErr(ctx, "read tunnel status", err)
	}
	if st != StatusOK {
		_ = s.Close()
		return nil, &StatusError{Status: st, Msg: msg}
	}
	if !stop() {
		abort(s)
		return nil, context.Cause(ctx)
	}
	if err := s.SetDeadline(time.Time{}); err != nil {
		abort(s)
		return nil, fmt.Errorf("tunnel: clear deadline: %w", err)
	}
	return &Conn{s: s, hdr: h, flow: flow}, nil
}

func openErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("tunnel: %s: %w", what, context.Cause(ctx))
	}
	return fmt.Errorf("tunnel: %s: %w", what, err)
}

// Conn is an open tunnel on the requester's side. It is a net.Conn with
// CloseWrite (half-close reaches the target as a FIN) and counts bytes.
type Conn struct {
	s       Stream
	hdr     Header
	flow    uint64 // the provider's number of the connection (0: an old provider gave none)
	in, out atomic.Uint64
}

var _ net.Conn = (*Conn)(nil)

func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.s.Read(p)
	c.in.Add(uint64(n))
	return n, err
}

func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.s.Write(p)
	c.out.Add(uint64(n))
	return n, err
}

// Close closes the stream cleanly.
func (c *Conn) Close() error { return c.s.Close() }

// CloseWrite half-closes: the provider closes its write side to the target.
func (c *Conn) CloseWrite() error { return c.s.CloseWrite() }

// Reset aborts the stream (libp2p Reset, TCP RST).
func (c *Conn) Reset() error {
	abort(c.s)
	return nil
}

func (c *Conn) SetDeadline(t time.Time) error      { return c.s.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.s.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }

// LocalAddr is the stream's local address if it has one.
func (c *Conn) LocalAddr() net.Addr {
	if a, ok := c.s.(interface{ LocalAddr() net.Addr }); ok {
		return a.LocalAddr()
	}
	return Addr(c.hdr.Target)
}

// RemoteAddr is the target, host:port as requested (unresolved).
func (c *Conn) RemoteAddr() net.Addr { return Addr(c.hdr.Target) }

// Header returns the header the tunnel was opened with.
func (c *Conn) Header() Header { return c.hdr }

// Entry returns the connection's log entry: the number the provider gave
// it and the header's time and target. (Flow 0: the provider numbered
// nothing, and the entry cannot be logged.)
func (c *Conn) Entry() LogEntry {
	return LogEntry{Flow: c.flow, Time: c.hdr.Time, Target: c.hdr.LogTarget()}
}

// Bytes are the bytes written and read so far.
func (c *Conn) Bytes() (up, down uint64) { return c.out.Load(), c.in.Load() }

// Addr is a tunnel target as a net.Addr.
type Addr string

func (a Addr) Network() string { return "ipsx-tunnel" }
func (a Addr) String() string  { return string(a) }

// Grant is what an [Authorizer] hands the exit for one stream.
type Grant struct {
	// Egress is the deal's IP the connection leaves from (the source
	// address bound before connect); the zero Addr lets the OS choose.
	Egress netip.Addr
	// Meter is the deal's meter, shared by all its streams. Required.
	Meter *Meter
}

// Authorizer decides whether the stream may be served: the stream's peer
// must be the requester of h.DealID and the deal active and paid (node
// closes over the peer's identity). It returns ErrUnauthorized,
// ErrDealInactive, ErrNotPaid (wrapped as it likes) to refuse. It must not
// block for long: the header deadline keeps running.
type Authorizer func(ctx context.Context, h Header) (Grant, error)

// Exit is the provider's end of the tunnel protocol. It is safe for
// concurrent use; each stream is served by its own ServeStream call.
type Exit struct {
	policy        *Policy
	authorize     Authorizer
	headerTimeout time.Duration
	maxSkew       time.Duration
	idle          time.Duration
	udpIdle       time.Duration
}

// ExitOption configures an [Exit].
type ExitOption func(*Exit)

// WithHeaderTimeout sets how long the exit waits for a header.
func WithHeaderTimeout(d time.Duration) ExitOption { return func(e *Exit) { e.headerTimeout = d } }

// WithMaxClockSkew sets how far a header's time may be from the provider's
// clock.
func WithMaxClockSkew(d time.Duration) ExitOption { return func(e *Exit) { e.maxSkew = d } }

// WithExitIdleTimeout sets how long a stream may carry no byte either way
// before the exit closes it (default DefaultTunnelIdleTimeout; 0 or less:
// never).
func WithExitIdleTimeout(d time.Duration) ExitOption { return func(e *Exit) { e.idle = d } }

// WithExitUDPIdleTimeout sets how long a UDP flow may carry no datagram
// either way before the exit closes it (default DefaultUDPIdleTimeout; 0
// or less: never).
func WithExitUDPIdleTimeout(d time.Duration) ExitOption { return func(e *Exit) { e.udpIdle = d } }

// NewExit returns an exit applying policy to streams that authorize lets
// through.
func NewExit(policy *Policy, authorize Authorizer, opts ...ExitOption) (*Exit, error) {
	e := &Exit{policy: policy, authorize: authorize, headerTimeout: DefaultHeaderTimeout, maxSkew: DefaultMaxClockSkew,
		idle: DefaultTunnelIdleTimeout, udpIdle: DefaultUDPIdleTimeout}
	for _, o := range opts {
		o(e)
	}
	switch {
	case policy == nil:
		return nil, errors.New("tunnel: exit needs a policy")
	case authorize == nil:
		return nil, errors.New("tunnel: exit needs an authorizer")
	case e.headerTimeout <= 0 || e.maxSkew <= 0:
		return nil, errors.New("tunnel: exit timeouts must be positive")
	}
	return e, nil
}

// ServeStream serves one tunnel stream until it ends: reads the header,
// authorizes it, dials the target through the policy from the deal's
// egress IP (a TCP connection, or a connected UDP socket for a UDP flow),
// answers the status, then forwards bytes (or datagrams) through the
// deal's meter and appends the connection to the deal's log. It blocks for the
// connection's lifetime, joins what it starts, and always leaves s closed
// (after a refusal, closed once the status is written; on I/O errors,
// reset). It returns nil for a connection that ended cleanly and otherwise
// why it was refused or cut; it does not log.
func (e *Exit) ServeStream(ctx context.Context, s Stream) (err error) {
	if err := s.SetReadDeadline(time.Now().Add(e.headerTimeout)); err != nil {
		abort(s)
		return fmt.Errorf("tunnel: set header deadline: %w", err)
	}
	h, err := ReadHeader(s)
	if err != nil {
		return e.refuse(s, err)
	}
	if skew := time.Since(h.Time); skew > e.maxSkew || skew < -e.maxSkew {
		return e.refuse(s, fmt.Errorf("%w: header time %s is %s off the provider's clock",
			ErrBadRequest, h.Time.UTC().Format(time.RFC3339), skew.Round(time.Second)))
	}
	g, err := e.authorize(ctx, h)
	if err != nil {
		return e.refuse(s, fmt.Errorf("authorize deal %s: %w", h.DealID, err))
	}
	if g.Meter == nil {
		return e.refuse(s, errors.New("tunnel: authorizer granted no meter"))
	}
	m := g.Meter

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	detach, err := m.attach(&cancel)
	if err != nil {
		return e.refuse(s, fmt.Errorf("deal %s: %w", h.DealID, err))
	}
	defer detach()
	if !m.deadline.IsZero() {
		t := time.AfterFunc(time.Until(m.deadline), cancel)
		defer t.Stop()
	}

	network := "tcp"
	if h.Flow == FlowUDP {
		network = "udp"
	}
	target, err := e.policy.DialContext(ctx, g.Egress, network, h.Target)
	if err != nil {
		if merr := m.Err(); merr != nil {
			err = merr // stopped while dialling: say why
		}
		return e.refuse(s, err)
	}
	entry, err := m.log.Open(h.Time, h.LogTarget())
	if err != nil {
		abort(target)
		return e.refuse(s, err)
	}
	if err := s.SetWriteDeadline(time.Now().Add(statusWriteTimeout)); err != nil {
		abort(s)
		abort(target)
		return fmt.Errorf("tunnel: write status: %w", err)
	}
	if _, err := s.Write(appendStatusOK(nil, entry.Flow)); err != nil {
		abort(s)
		abort(target)
		return fmt.Errorf("tunnel: write status: %w", err)
	}
	if err := s.SetDeadline(time.Time{}); err != nil {
		abort(s)
		abort(target)
		return fmt.Errorf("tunnel: clear deadline: %w", err)
	}

	if h.Flow == FlowUDP {
		_, _, err = serveUDP(ctx, s, target, m, e.udpIdle)
	} else {
		_, _, err = splice(ctx, s, target, m, e.idle)
	}
	if err != nil && ctx.Err() != nil {
		if merr := m.Err(); merr != nil {
			err = merr
		}
	}
	return err
}

// refuse answers a non-OK status for err and closes s.
func (e *Exit) refuse(s Stream, err error) error {
	if werr := writeStatus(s, StatusOf(err), err.Error()); werr != nil {
		abort(s)
		return err
	}
	_ = s.Close()
	return err
}

func writeStatus(s Stream, st Status, msg string) error {
	if err := s.SetWriteDeadline(time.Now().Add(statusWriteTimeout)); err != nil {
		return err
	}
	_, err := s.Write(appendStatus(nil, st, msg))
	return err
}
