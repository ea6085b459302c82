package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// ProtocolID is the libp2p protocol id of the tunnel stream.
const ProtocolID = "/ipsx/tunnel/1.0.0"

// Wire format of /ipsx/tunnel/1.0.0. All integers are big-endian.
//
// The requester opens the stream and writes a header frame. A TCP flow's
// is version 1, as it always was:
//
//	version  uint8   = 1
//	length   uint16  number of body bytes that follow, at most MaxHeaderSize
//	body:
//	  dealId   [32]byte  the deal's id (agreement.Terms.ID)
//	  time     uint64    requester's clock, unix milliseconds; becomes the
//	                     connection log entry's time (provider checks skew)
//	  hostLen  uint8     1..253
//	  host     [hostLen] a DNS name (letters, digits, '-', '_', '.') or an
//	                     IP literal in canonical form (netip.Addr.String),
//	                     IPv6 without brackets; resolved by the provider
//	  port     uint16    1..65535
//	  sessLen  uint8     0..64
//	  session  [sessLen] [A-Za-z0-9_], the sticky-session id, may be empty
//
// Any other flow type (UDP) is version 2, whose body is one flow byte
// followed by a version 1 body:
//
//	version  uint8   = 2
//	length   uint16  1 + the version 1 body's length
//	body:
//	  flow     uint8     a Flow other than FlowTCP (which is always version 1,
//	                     so that every header has exactly one encoding and a
//	                     provider from before flow types serves TCP as ever)
//	  ...      the version 1 body
//
// A provider that knows no version 2 answers it as a malformed header
// (StatusBadRequest); one that knows version 2 but not the flow answers
// StatusBadRequest too.
//
// The body must be consumed exactly; anything else is a bad request. The
// provider answers with a status frame:
//
//	version  uint8   = 1
//	code     uint8   a Status
//	msgLen   uint8
//	msg      [msgLen] printable ASCII detail (e.g. the policy rule), may be empty
//
// or, for StatusOK, with the connection's number in the deal's connection
// log (see LogEntry), which the requester logs it under:
//
//	version  uint8   = 2
//	code     uint8   = StatusOK
//	flow     uint64  1, 2, 3… per deal
//	msgLen   uint8   = 0
//
// After StatusOK a TCP flow's stream carries raw bytes both ways; each
// side half-closes its write direction (CloseWrite) when its source
// reaches EOF, and the stream is done when both directions are. A UDP
// flow's carries datagram frames both ways (see [ReadDatagram]) until
// either side closes it. Any other status is followed by the provider
// closing the stream.
const (
	headerVersion = 1
	// headerVersionFlow is the header of a flow other than TCP; status
	// frames stay version 1 whatever the flow.
	headerVersionFlow = 2
	// MaxHeaderSize bounds a header body; the largest valid one is 361 bytes.
	MaxHeaderSize = 512

	maxHostLen    = 253
	maxSessionLen = 64
	maxStatusMsg  = 255
	headerFixed   = 32 + 8 + 1 + 2 + 1
)

// ErrMalformedHeader is wrapped by every header and status decoding error.
var ErrMalformedHeader = fmt.Errorf("%w: malformed tunnel header", ErrBadRequest)

// Flow is what a tunnel stream carries. The numeric values are on the
// wire; never renumber them.
type Flow uint8

const (
	// FlowTCP is a TCP connection's byte stream (header version 1).
	FlowTCP Flow = 0
	// FlowUDP is a UDP flow: datagrams between the requester's socket and
	// one target host:port, framed on the stream, with a NAT-style idle
	// timeout at both ends.
	FlowUDP Flow = 1
	flowMax      = FlowUDP
)

func (f Flow) String() string {
	switch f {
	case FlowTCP:
		return "tcp"
	case FlowUDP:
		return "udp"
	}
	return fmt.Sprintf("flow(%d)", uint8(f))
}

// Header opens a tunnel stream.
type Header struct {
	DealID  common.Hash
	Time    time.Time // millisecond precision on the wire
	Target  string    // host:port, host unresolved
	Session string    // sticky-session id from the route, may be empty
	Flow    Flow      // FlowTCP (the zero value) or FlowUDP
}

// LogTarget is the target as the connection log records it: host:port
// for a TCP flow, as it always was, and "udp/host:port" for a UDP flow, so
// that the co-signed log tells the two apart.
func (h Header) LogTarget() string {
	if h.Flow == FlowTCP {
		return h.Target
	}
	return h.Flow.String() + "/" + h.Target
}

// MarshalBinary returns the header frame.
func (h Header) MarshalBinary() ([]byte, error) {
	host, port, err := splitTarget(h.Target)
	if err != nil {
		return nil, err
	}
	if err := checkWireHost(host); err != nil {
		return nil, err
	}
	if !validSession(h.Session) {
		return nil, fmt.Errorf("%w: session %q", ErrBadRequest, h.Session)
	}
	ms := h.Time.UnixMilli()
	if ms < 0 {
		return nil, fmt.Errorf("%w: time before 1970", ErrBadRequest)
	}
	if h.Flow > flowMax {
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, h.Flow)
	}
	n := headerFixed + len(host) + len(h.Session)
	b := make([]byte, 0, 4+n)
	if h.Flow == FlowTCP {
		b = append(b, headerVersion)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	} else {
		b = append(b, headerVersionFlow)
		b = binary.BigEndian.AppendUint16(b, uint16(n+1))
		b = append(b, byte(h.Flow))
	}
	b = append(b, h.DealID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(ms))
	b = append(b, byte(len(host)))
	b = append(b, host...)
	b = binary.BigEndian.AppendUint16(b, port)
	b = append(b, byte(len(h.Session)))
	b = append(b, h.Session...)
	return b, nil
}

// ReadHeader reads one header frame from r, reading no more than the frame.
// The caller sets a read deadline.
func ReadHeader(r io.Reader) (Header, error) {
	var pre [3]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrMalformedHeader, err)
	}
	extra := 0
	switch pre[0] {
	case headerVersion:
	case headerVersionFlow:
		extra = 1
	default:
		return Header{}, fmt.Errorf("%w: version %d", ErrMalformedHeader, pre[0])
	}
	n := int(binary.BigEndian.Uint16(pre[1:]))
	if n > MaxHeaderSize+extra || n < headerFixed+1+extra {
		return Header{}, fmt.Errorf("%w: length %d", ErrMalformedHeader, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrMalformedHeader, err)
	}
	flow := FlowTCP
	if extra == 1 {
		flow = Flow(body[0])
		if flow == FlowTCP || flow > flowMax {
			return Header{}, fmt.Errorf("%w: %s in a version %d header", ErrMalformedHeader, flow, pre[0])
		}
		body = body[1:]
	}
	h, err := parseHeaderBody(body)
	if err != nil {
		return Header{}, err
	}
	h.Flow = flow
	return h, nil
}

// UnmarshalHeader parses a complete header frame; trailing bytes are an
// error.
func UnmarshalHeader(b []byte) (Header, error) {
	if len(b) < 3 {
		return Header{}, fmt.Errorf("%w: short frame", ErrMalformedHeader)
	}
	if n := int(binary.BigEndian.Uint16(b[1:3])); len(b) != 3+n {
		return Header{}, fmt.Errorf("%w: frame is %d bytes, length says %d", ErrMalformedHeader, len(b), 3+n)
	}
	return ReadHeader(bytes.NewReader(b))
}

func parseHeaderBody(b []byte) (Header, error) {
	var h Header
	bad := func(what string) (Header, error) {
		return Header{}, fmt.Errorf("%w: %s", ErrMalformedHeader, what)
	}
	if len(b) < headerFixed+1 {
		return bad("short body")
	}
	copy(h.DealID[:], b[:32])
	ms := binary.BigEndian.Uint64(b[32:40])
	if ms > 1<<62 {
		return bad("time out of range")
	}
	h.Time = time.UnixMilli(int64(ms))
	b = b[40:]
	hl := int(b[0])
	b = b[1:]
	if hl == 0 || hl > maxHostLen || len(b) < hl+3 {
		return bad("host length")
	}
	host := string(b[:hl])
	if err := checkWireHost(host); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrMalformedHeader, err)
	}
	b = b[hl:]
	port := binary.BigEndian.Uint16(b[:2])
	if port == 0 {
		return bad("port 0")
	}
	sl := int(b[2])
	b = b[3:]
	if sl > maxSessionLen || len(b) != sl {
		return bad("session length")
	}
	h.Session = string(b)
	if !validSession(h.Session) {
		return bad("session characters")
	}
	h.Target = net.JoinHostPort(host, strconv.Itoa(int(port)))
	return h, nil
}

// checkWireHost accepts a canonical IP literal or a syntactically valid DNS
// name. Whether the exit may go there is the policy's business, not the
// decoder's.
func checkWireHost(host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || a.String() != host {
			return fmt.Errorf("%w: non-canonical IP literal %q", ErrBadRequest, host)
		}
		return nil
	}
	if len(host) > maxHostLen || !validHostname(host) {
		return fmt.Errorf("%w: invalid host %q", ErrBadRequest, host)
	}
	return nil
}

func validSession(s string) bool {
	if len(s) > maxSessionLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// appendStatus appends a status frame; msg is truncated and made printable.
func appendStatus(b []byte, s Status, msg string) []byte {
	if len(msg) > maxStatusMsg {
		msg = msg[:maxStatusMsg]
	}
	b = append(b, headerVersion, byte(s), byte(len(msg)))
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return b
}

// appendStatusOK appends the OK status frame that numbers the connection.
func appendStatusOK(b []byte, flow uint64) []byte {
	b = append(b, statusVersionFlow, byte(StatusOK))
	b = binary.BigEndian.AppendUint64(b, flow)
	return append(b, 0)
}

// statusVersionFlow is the status frame of an accepted connection, with its
// number in the deal's connection log.
const statusVersionFlow = 2

// readStatus reads one status frame; the number is the connection's in
// the deal's log, for StatusOK from a provider that numbers them.
func readStatus(r io.Reader) (Status, string, uint64, error) {
	var pre [2]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, "", 0, fmt.Errorf("%w: stream closed before status", ErrMalformedHeader)
		}
		return 0, "", 0, err
	}
	s := Status(pre[1])
	if s > statusMax {
		return 0, "", 0, fmt.Errorf("%w: status code %d", ErrMalformedHeader, pre[1])
	}
	var flow uint64
	switch pre[0] {
	case headerVersion:
	case statusVersionFlow:
		if s != StatusOK {
			return 0, "", 0, fmt.Errorf("%w: version %d status %s", ErrMalformedHeader, pre[0], s)
		}
		var fb [8]byte
		if _, err := io.ReadFull(r, fb[:]); err != nil {
			return 0, "", 0, fmt.Errorf("%w: status flow: %v", ErrMalformedHeader, err)
		}
		if flow = binary.BigEndian.Uint64(fb[:]); flow == 0 {
			return 0, "", 0, fmt.Errorf("%w: status flow 0", ErrMalformedHeader)
		}
	default:
		return 0, "", 0, fmt.Errorf("%w: status version %d", ErrMalformedHeader, pre[0])
	}
	var ml [1]byte
	if _, err := io.ReadFull(r, ml[:]); err != nil {
		return 0, "", 0, fmt.Errorf("%w: status message: %v", ErrMalformedHeader, err)
	}
	msg := make([]byte, ml[0])
	if _, err := io.ReadFull(r, msg); err != nil {
		return 0, "", 0, fmt.Errorf("%w: status message: %v", ErrMalformedHeader, err)
	}
	for _, c := range msg {
		if c < 0x20 || c > 0x7e {
			return 0, "", 0, fmt.Errorf("%w: status message not printable", ErrMalformedHeader)
		}
	}
	return s, string(msg), flow, nil
}
