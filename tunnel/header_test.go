package tunnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestHeaderRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_760_000_000_123)
	for _, h := range []Header{
		{DealID: testDeal, Time: now, Target: "example.com:443"},
		{DealID: common.Hash{0xff}, Time: now, Target: "[2001:db8::1]:80", Session: "abc_123"},
		{Time: now, Target: "127.0.0.1:8080", Session: strings.Repeat("s", maxSessionLen)},
		{Time: now, Target: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + ":65535"},
	} {
		b, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if len(b)-3 > MaxHeaderSize {
			t.Fatalf("frame body %d > MaxHeaderSize", len(b)-3)
		}
		got, err := UnmarshalHeader(b)
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if got.DealID != h.DealID || !got.Time.Equal(h.Time) || got.Target != h.Target || got.Session != h.Session {
			t.Fatalf("round trip: got %+v, want %+v", got, h)
		}
		// ReadHeader reads exactly one frame.
		r := bytes.NewReader(append(b, "rest"...))
		if _, err := ReadHeader(r); err != nil || r.Len() != 4 {
			t.Fatalf("ReadHeader left %d bytes, err %v", r.Len(), err)
		}
	}
}

func TestHeaderMarshalRejects(t *testing.T) {
	now := time.Now()
	for _, h := range []Header{
		{Time: now, Target: "example.com"},
		{Time: now, Target: "example.com:0"},
		{Time: now, Target: "example.com:99999"},
		{Time: now, Target: "exa mple.com:80"},
		{Time: now, Target: "[fe80::1%eth0]:80"},
		{Time: now, Target: "example.com:80", Session: "a-b"},
		{Time: now, Target: "example.com:80", Session: strings.Repeat("s", maxSessionLen+1)},
		{Time: time.UnixMilli(-5), Target: "example.com:80"},
		{Time: now, Target: strings.Repeat("a.", 127) + "a:80"},
	} {
		if _, err := h.MarshalBinary(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: got %v, want bad request", h, err)
		}
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	good, err := Header{DealID: testDeal, Time: time.Now(), Target: "example.com:80", Session: "s1"}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	hostOff := 3 + 32 + 8
	cases := map[string][]byte{
		"empty":         {},
		"short":         good[:10],
		"version":       mut(func(b []byte) []byte { b[0] = 3; return b }),
		"version 2 tcp": mut(func(b []byte) []byte { b[0] = 2; return b }),
		"length big":    mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[1:], MaxHeaderSize+1); return b }),
		"length short":  mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[1:], 10); return b[:13] }),
		"trailing":      append(bytes.Clone(good), 0),
		"truncated":     good[:len(good)-1],
		"host len 0":    mut(func(b []byte) []byte { b[hostOff] = 0; return b }),
		"host bad char": mut(func(b []byte) []byte { b[hostOff+1] = ' '; return b }),
		"host NUL":      mut(func(b []byte) []byte { b[hostOff+1] = 0; return b }),
		"port 0": mut(func(b []byte) []byte {
			o := hostOff + 1 + len("example.com")
			b[o], b[o+1] = 0, 0
			return b
		}),
		"session char": mut(func(b []byte) []byte { b[len(b)-1] = '-'; return b }),
		"session len": mut(func(b []byte) []byte {
			b[len(b)-3] = 3
			return b
		}),
		"ip not canonical": func() []byte {
			b, _ := Header{Time: time.Now(), Target: "[::1]:80"}.MarshalBinary()
			// Rewrite host "::1" as "0::1" by rebuilding the frame.
			body := append([]byte{}, b[3:3+40]...)
			body = append(body, 4)
			body = append(body, "0::1"...)
			body = append(body, 0, 80, 0)
			return append([]byte{1, 0, byte(len(body))}, body...)
		}(),
	}
	for name, b := range cases {
		if _, err := UnmarshalHeader(b); !errors.Is(err, ErrMalformedHeader) || !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: got %v, want malformed header", name, err)
		}
	}
}

func TestStatusFrame(t *testing.T) {
	b := appendStatus(nil, StatusNotAllowed, "rule\x00 with\nbad bytes")
	st, msg, _, err := readStatus(bytes.NewReader(b))
	if err != nil || st != StatusNotAllowed || msg != "rule? with?bad bytes" {
		t.Fatalf("got %v %q %v", st, msg, err)
	}
	st, _, flow, err := readStatus(bytes.NewReader(appendStatusOK(nil, 42)))
	if err != nil || st != StatusOK || flow != 42 {
		t.Fatalf("numbered OK: %v %d %v", st, flow, err)
	}
	b = appendStatus(nil, StatusOK, strings.Repeat("x", 1000))
	if len(b) != 3+maxStatusMsg {
		t.Fatalf("status frame %d bytes", len(b))
	}
	for name, b := range map[string][]byte{
		"code":      {1, byte(statusMax) + 1, 0},
		"version":   {9, 0, 0},
		"msg short": {1, 2, 5, 'a'},
		"msg byte":  {1, 2, 1, 0x7f},
		"empty":     {},
		"flow 0":    {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"flow !OK":  {2, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0},
		"flow cut":  {2, 0, 0, 0, 1},
	} {
		if _, _, _, err := readStatus(bytes.NewReader(b)); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestStatusMapping(t *testing.T) {
	for st := StatusOK; st <= statusMax; st++ {
		if st.String() == "" || strings.HasPrefix(st.String(), "status(") {
			t.Errorf("%d has no name", st)
		}
		if (st == StatusOK) != (st.SOCKSReply() == 0) || (st == StatusOK) != (st.HTTPStatus() == 200) {
			t.Errorf("%v maps to SOCKS %d, HTTP %d", st, st.SOCKSReply(), st.HTTPStatus())
		}
		if st != StatusOK && st != StatusGeneralFailure && StatusOf(&StatusError{Status: st}) != st {
			t.Errorf("StatusOf(StatusError{%v}) = %v", st, StatusOf(&StatusError{Status: st}))
		}
	}
	for _, c := range []struct {
		err  error
		want Status
	}{
		{nil, StatusOK},
		{&net.DNSError{Err: "no such host", Name: "nx.example", IsNotFound: true}, StatusDNSFailure},
		{&net.DNSError{Err: "i/o timeout", Name: "slow.example", IsTimeout: true}, StatusTimeout},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, StatusRefused},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, StatusNetUnreachable},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, StatusHostUnreachable},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), StatusTimeout},
		{fmt.Errorf("route: %w", ErrNoRoute), StatusNoRoute},
		{fmt.Errorf("authorize: %w", ErrNotPaid), StatusNotPaid},
		{fmt.Errorf("%w: 10.0.0.1:80", ErrDestPrivate), StatusNotAllowed},
		{errors.New("something else"), StatusGeneralFailure},
	} {
		if got := StatusOf(c.err); got != c.want {
			t.Errorf("StatusOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if !errors.Is(&StatusError{Status: StatusNotAllowed}, ErrNotAllowed) || !errors.Is(&StatusError{Status: StatusNotPaid}, ErrNotPaid) {
		t.Fatal("StatusError does not match its sentinel")
	}
}

// FuzzDecodeHeader: the decoder never panics, never accepts more than
// MaxHeaderSize, and what it accepts re-encodes to the same bytes (one
// encoding per header) and passes the front-ends' target checks.
func FuzzDecodeHeader(f *testing.F) {
	for _, h := range []Header{
		{DealID: testDeal, Time: time.UnixMilli(1), Target: "example.com:443", Session: "abc"},
		{Time: time.UnixMilli(1 << 40), Target: "[::1]:80"},
		{Target: "10.0.0.1:25"},
		{DealID: testDeal, Time: time.UnixMilli(1), Target: "1.1.1.1:53", Flow: FlowUDP},
	} {
		b, _ := h.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		enc, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", h, err)
		}
		if len(enc)-3 > MaxHeaderSize || !bytes.Equal(enc, b[:len(enc)]) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b[:min(len(b), len(enc))], enc)
		}
		if _, _, err := splitTarget(h.Target); err != nil {
			t.Fatalf("decoded target %q: %v", h.Target, err)
		}
	})
}
