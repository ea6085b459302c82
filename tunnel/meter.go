package tunnel

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/time/rate"
)

// Unlimited is an allowance with no limit.
const Unlimited uint64 = math.MaxUint64

// MeterConfig configures a [Meter].
type MeterConfig struct {
	// BitsPerSecond caps each direction of the deal's traffic, summed over
	// all its connections (a token bucket per direction). 0 = no cap.
	BitsPerSecond uint64
	// Allowance is the number of bytes (both directions together) the deal
	// may carry in total: what the requester has paid ahead for. 0 means
	// Unlimited; node raises it with SetAllowance as vouchers arrive.
	Allowance uint64
	// Deadline, if set, is when the deal's service ends: streams are
	// refused after it and cut at it.
	Deadline time.Time
	// OnStarved, if set, is called (from a forwarding goroutine, so it must
	// not block) each time forwarding pauses because the allowance is used
	// up: the moment to ask the requester for the next voucher.
	OnStarved func()
}

// Meter is one deal's meter on the provider's side: it counts bytes, paces
// them, holds them back when the paid-ahead allowance is used up, stops all
// the deal's streams on demand, and keeps the deal's connection log. Every
// stream of the deal shares one Meter. It is safe for concurrent use.
type Meter struct {
	dealID    common.Hash
	deadline  time.Time
	onStarved func()
	log       ConnLog

	mu        sync.Mutex
	up, down  uint64 // bytes delivered
	reserved  uint64 // bytes granted to forwarders (≥ up+down)
	allowance uint64
	changed   chan struct{} // closed and replaced when allowance or stop changes
	stopErr   error
	cancels   map[*context.CancelFunc]struct{}
	active    int
	upLim     *rate.Limiter
	downLim   *rate.Limiter
}

// NewMeter returns the meter for dealID.
func NewMeter(dealID common.Hash, cfg MeterConfig) *Meter {
	m := &Meter{
		dealID:    dealID,
		deadline:  cfg.Deadline,
		onStarved: cfg.OnStarved,
		allowance: cfg.Allowance,
		changed:   make(chan struct{}),
		cancels:   make(map[*context.CancelFunc]struct{}),
	}
	if m.allowance == 0 {
		m.allowance = Unlimited
	}
	m.SetBandwidth(cfg.BitsPerSecond)
	return m
}

// Resume starts a fresh meter where a deal's metering left off (bytes
// counted before a restart), so that allowances, which are cumulative,
// keep their meaning. Call it before the first stream.
func (m *Meter) Resume(used uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.up += used
	m.reserved += used
}

// DealID returns the deal the meter belongs to.
func (m *Meter) DealID() common.Hash { return m.dealID }

// Log returns the deal's connection log.
func (m *Meter) Log() *ConnLog { return &m.log }

// MeterStats is a snapshot of a meter.
type MeterStats struct {
	Up, Down  uint64 // bytes delivered requester→target and target→requester
	Allowance uint64
	Active    int // streams being served now
}

// Stats returns the counters.
func (m *Meter) Stats() MeterStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MeterStats{Up: m.up, Down: m.down, Allowance: m.allowance, Active: m.active}
}

// SetAllowance sets the cumulative byte allowance (both directions): node
// raises it when a voucher paying further ahead arrives. Forwarding paused
// on the old allowance resumes.
func (m *Meter) SetAllowance(total uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.allowance = total
	m.broadcastLocked()
}

// SetBandwidth changes the per-direction cap; 0 removes it. Streams already
// running pick it up on their next chunk.
func (m *Meter) SetBandwidth(bitsPerSecond uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if bitsPerSecond == 0 {
		m.upLim, m.downLim = nil, nil
		return
	}
	bps := float64(bitsPerSecond) / 8
	// A burst of 20 ms of traffic, at least one copy buffer, keeps pacing
	// smooth without forcing tiny writes.
	burst := max(int(bps/50), copyBufSize)
	m.upLim = rate.NewLimiter(rate.Limit(bps), burst)
	m.downLim = rate.NewLimiter(rate.Limit(bps), burst)
}

// Stop cuts every stream of the deal now and refuses new ones with err
// (ErrDealInactive if nil; ErrNotPaid when payment stopped). Safe to call
// more than once; the first error sticks.
func (m *Meter) Stop(err error) {
	if err == nil {
		err = ErrDealInactive
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopErr != nil {
		return
	}
	m.stopErr = err
	for c := range m.cancels {
		(*c)()
	}
	m.broadcastLocked()
}

// Err returns the error Stop was called with, or ErrDealInactive past the
// deadline, or nil.
func (m *Meter) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errLocked(time.Now())
}

func (m *Meter) errLocked(now time.Time) error {
	if m.stopErr != nil {
		return m.stopErr
	}
	if !m.deadline.IsZero() && !now.Before(m.deadline) {
		return fmt.Errorf("%w: deadline %s passed", ErrDealInactive, m.deadline.UTC().Format(time.RFC3339))
	}
	return nil
}

func (m *Meter) broadcastLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// attach registers a stream: cancel is called by Stop. It fails if the
// meter is stopped or past its deadline.
func (m *Meter) attach(cancel *context.CancelFunc) (detach func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.errLocked(time.Now()); err != nil {
		return nil, err
	}
	m.cancels[cancel] = struct{}{}
	m.active++
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.cancels, cancel)
		m.active--
	}, nil
}

// grant waits until at least one byte of allowance is free and the token
// bucket of the direction allows it, and reserves up to n bytes.
func (m *Meter) grant(ctx context.Context, n int, up bool) (int, error) {
	for {
		m.mu.Lock()
		if err := m.errLocked(time.Now()); err != nil {
			m.mu.Unlock()
			return 0, err
		}
		if m.reserved < m.allowance {
			k := uint64(n)
			if free := m.allowance - m.reserved; free < k {
				k = free
			}
			lim := m.downLim
			if up {
				lim = m.upLim
			}
			if lim != nil && int(k) > lim.Burst() {
				k = uint64(lim.Burst())
			}
			m.reserved += k
			m.mu.Unlock()
			if lim != nil {
				if err := lim.WaitN(ctx, int(k)); err != nil {
					m.release(k)
					return 0, err
				}
			}
			return int(k), nil
		}
		changed := m.changed
		starved := m.onStarved
		m.mu.Unlock()
		if starved != nil {
			starved()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
}

// grantAll waits until n bytes are granted in one direction, for a
// datagram that goes whole or not at all; on an error nothing stays
// reserved. The caller reports the n bytes with delivered.
func (m *Meter) grantAll(ctx context.Context, n int, up bool) error {
	for got := 0; got < n; {
		k, err := m.grant(ctx, n-got, up)
		if err != nil {
			m.release(uint64(got))
			return err
		}
		got += k
	}
	return nil
}

// release returns reserved bytes that were not delivered.
func (m *Meter) release(k uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reserved -= k
}

// delivered records k delivered bytes out of a grant of g.
func (m *Meter) delivered(up bool, k, g int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if up {
		m.up += uint64(k)
	} else {
		m.down += uint64(k)
	}
	m.reserved -= uint64(g - k)
}

// LogEntry is one connection in a deal's connection log.
//
// The provider numbers a deal's connections 1, 2, 3… as it accepts them
// (after its exit policy let the dial through) and tells the requester
// the number in its OK status; both sides then log the same entry, made
// only of what both know exactly, and chain the entries in number order.
// A voucher carries the requester's head (agreement.Voucher.ConnLogHash),
// which the provider checks against its own: the settlement anchors a log
// that both co-signed, so a provider can show which requester's deal a
// connection belonged to. Byte counts are left out: each side counts its
// own, and they differ by what is in flight.
//
// Its encoding, hashed into the chain, is (big-endian):
//
//	version  uint8   = 2
//	flow     uint64  the provider's number of the connection, from 1
//	time     uint64  unix milliseconds, the tunnel header's time
//	tlen     uint16  length of target
//	target   [tlen]  host:port exactly as in the tunnel header (unresolved),
//	                 "udp/host:port" for a UDP flow (Header.LogTarget)
//
// The chain starts at 32 zero bytes, and each entry moves the head to
// keccak256(head ‖ encoding).
type LogEntry struct {
	Flow   uint64
	Time   time.Time
	Target string
}

const logEntryVersion = 2

// MarshalBinary returns the entry's encoding.
func (e LogEntry) MarshalBinary() ([]byte, error) {
	if len(e.Target) > math.MaxUint16 {
		return nil, fmt.Errorf("%w: log entry target too long", ErrBadRequest)
	}
	ms := e.Time.UnixMilli()
	if ms < 0 {
		return nil, fmt.Errorf("%w: log entry time before 1970", ErrBadRequest)
	}
	if e.Flow == 0 {
		return nil, fmt.Errorf("%w: log entry without a flow number", ErrBadRequest)
	}
	b := make([]byte, 0, 1+8+8+2+len(e.Target))
	b = append(b, logEntryVersion)
	b = binary.BigEndian.AppendUint64(b, e.Flow)
	b = binary.BigEndian.AppendUint64(b, uint64(ms))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Target)))
	b = append(b, e.Target...)
	return b, nil
}

// ChainHash returns the head after appending entries to a chain whose head
// is prev (the zero hash for an empty log).
func ChainHash(prev common.Hash, entries ...LogEntry) (common.Hash, error) {
	for _, e := range entries {
		b, err := e.MarshalBinary()
		if err != nil {
			return common.Hash{}, err
		}
		prev = crypto.Keccak256Hash(prev[:], b)
	}
	return prev, nil
}

// ConnLog is a deal's connection log: a hash chain of [LogEntry] in flow
// number order. The provider numbers entries as it opens them (Open); the
// requester adds them as the provider's answers bring their numbers, in
// whatever order those come (Add): an entry joins the chain once every
// smaller number is in, so both sides' heads pass through the same
// values. It keeps the entries chained since the last Drain. The zero
// value is an empty log. Safe for concurrent use.
type ConnLog struct {
	mu      sync.Mutex
	head    common.Hash
	n       uint64
	ahead   map[uint64]LogEntry // requester: numbered past n+1, waiting for the gap
	pending []LogEntry
	// recent are the last heads (oldest first, at most MaxLogHistory),
	// for Had: a voucher carries the head the requester's log had when it
	// was signed, which the provider's may have moved past since.
	recent  []common.Hash
	resumed bool
}

// MaxLogHistory is how many past heads a ConnLog remembers for Had.
const MaxLogHistory = 4096

// maxLogAhead bounds the entries a requester's log holds past a gap (a
// connection whose number never arrived: its stream died as the provider
// answered). Past it the newest are dropped and the log stays behind; its
// heads remain ones the provider had.
const maxLogAhead = 4096

// Open appends a new connection with the next number (provider).
func (l *ConnLog) Open(t time.Time, target string) (LogEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := LogEntry{Flow: l.n + 1, Time: t, Target: target}
	return e, l.chainLocked(e)
}

// Add takes an entry the provider numbered (requester).
func (l *ConnLog) Add(e LogEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case e.Flow == 0:
		return fmt.Errorf("%w: log entry without a flow number", ErrBadRequest)
	case e.Flow <= l.n:
		return nil // from before a restart, or twice
	case e.Flow > l.n+1:
		if l.ahead == nil {
			l.ahead = map[uint64]LogEntry{}
		}
		if len(l.ahead) < maxLogAhead {
			l.ahead[e.Flow] = e
		}
		return nil
	}
	if err := l.chainLocked(e); err != nil {
		return err
	}
	for {
		next, ok := l.ahead[l.n+1]
		if !ok {
			return nil
		}
		delete(l.ahead, l.n+1)
		if err := l.chainLocked(next); err != nil {
			return err
		}
	}
}

func (l *ConnLog) chainLocked(e LogEntry) error {
	h, err := ChainHash(l.head, e)
	if err != nil {
		return err
	}
	if len(l.recent) == MaxLogHistory {
		l.recent = append(l.recent[:0], l.recent[MaxLogHistory/2:]...)
	}
	l.recent = append(l.recent, l.head)
	l.head = h
	l.n++
	l.pending = append(l.pending, e)
	return nil
}

// Resume continues a log from its head and length before a restart. The
// heads before it are not known (Resumed reports it).
func (l *ConnLog) Resume(n uint64, head common.Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n <= l.n {
		return
	}
	l.n, l.head, l.resumed = n, head, true
	l.recent = nil
	for k := range l.ahead {
		if k <= n {
			delete(l.ahead, k)
		}
	}
}

// Resumed reports whether the log continues one from before a restart.
func (l *ConnLog) Resumed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.resumed
}

// Had reports whether h is the log's head or one of its last
// MaxLogHistory heads (the zero hash of the empty log included while it is
// among them).
func (l *ConnLog) Had(h common.Hash) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h == l.head {
		return true
	}
	for i := len(l.recent) - 1; i >= 0; i-- {
		if l.recent[i] == h {
			return true
		}
	}
	return false
}

// Head returns the current head and the number of entries chained.
func (l *ConnLog) Head() (common.Hash, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head, l.n
}

// Drain returns the entries appended since the last Drain, in order, and
// forgets them. The caller owns the returned slice.
func (l *ConnLog) Drain() []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending
	l.pending = nil
	return p
}
