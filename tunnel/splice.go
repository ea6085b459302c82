package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIdle ends a tunnel in which no byte moved either way for its idle
// timeout.
var ErrIdle = errors.New("tunnel: idle timeout")

// copyBufSize is the chunk size of one forwarding step: two TLS records'
// worth less a yamux frame header, so that a full chunk written to a
// node's stream (yamux over TLS) is a frame of exactly two full records.
// A 32 KiB chunk made a frame of 32 KiB and 12 bytes, whose third record
// held the header's 12 bytes alone: one more AEAD seal and write syscall
// per frame, and one more read on the other end: 20% of the write calls
// of a process downloading through a tunnel (strace -c), and 6-30% of the
// tunnel's CPU per GiB. TestChunkFillsTLSRecords counts them.
const copyBufSize = 2*tlsRecordPayload - yamuxHeaderSize

const (
	tlsRecordPayload = 16 << 10 // the most plaintext a TLS record holds
	yamuxHeaderSize  = 12
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

type closeWriter interface{ CloseWrite() error }

// abort tears c down as an error: Reset for streams that have it (libp2p),
// RST for TCP, Close otherwise.
func abort(c io.Closer) {
	switch x := c.(type) {
	case interface{ Reset() error }:
		_ = x.Reset()
		return
	case *net.TCPConn:
		_ = x.SetLinger(0)
	}
	_ = c.Close()
}

// closeWrite half-closes c's write side, or closes c if it cannot.
func closeWrite(c io.Closer) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// splice forwards a↔b until both directions reach EOF, half-closing each
// destination when its source ends, then closes both. On an error in either
// direction, or when ctx is done, both are aborted. up counts a→b, down
// b→a. With a meter, every chunk is granted by it before it is written.
// With idle > 0, both are aborted (ErrIdle) once no byte has been read
// from either side for idle.
func splice(ctx context.Context, a, b io.ReadWriteCloser, m *Meter, idle time.Duration) (up, down int64, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var w *idleWatch
	if idle > 0 {
		w = watchIdle(idle, func() { cancel(fmt.Errorf("%w: nothing either way for %s", ErrIdle, idle)) })
		defer w.stop()
	}
	var abortOnce sync.Once
	stop := context.AfterFunc(ctx, func() {
		abortOnce.Do(func() { abort(a); abort(b) })
	})
	defer stop()

	var wg sync.WaitGroup
	var upErr error
	wg.Go(func() {
		up, upErr = copyHalf(ctx, b, a, m, true, w)
		if upErr != nil {
			cancel(upErr)
		}
	})
	down, downErr := copyHalf(ctx, a, b, m, false, w)
	if downErr != nil {
		cancel(downErr)
	}
	wg.Wait()

	if stop() {
		// Neither direction failed and ctx is alive: a clean end.
		if err := errors.Join(a.Close(), b.Close()); err != nil && !errors.Is(err, net.ErrClosed) {
			return up, down, err
		}
		return up, down, nil
	}
	return up, down, context.Cause(ctx)
}

// copyHalf copies src to dst until src's EOF, then half-closes dst.
func copyHalf(ctx context.Context, dst io.Writer, src io.Reader, m *Meter, up bool, w *idleWatch) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w.touch()
		}
		for off := 0; off < n; {
			g := n - off
			if m != nil {
				var err error
				if g, err = m.grant(ctx, g, up); err != nil {
					return total, err
				}
			}
			w, werr := dst.Write(buf[off : off+g])
			if m != nil {
				m.delivered(up, w, g)
			}
			off += w
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			if c, ok := dst.(io.Closer); ok {
				if err := closeWrite(c); err != nil {
					return total, err
				}
			}
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// idleWatch calls onIdle once when touch has not been called for idle. It
// runs on a timer, not a goroutine of its own.
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

// touch records activity; nil-safe, so splice calls it unconditionally.
func (w *idleWatch) touch() {
	if w != nil {
		w.last.Store(time.Now().UnixNano())
	}
}

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
