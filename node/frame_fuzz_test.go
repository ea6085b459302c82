package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/ipsx/ipsx/agreement"
)

// FuzzReadFrame: the order-sync frame reader never panics, never reads a
// body over its limit (it refuses the length first), and reads back what
// writeFrame wrote.
func FuzzReadFrame(f *testing.F) {
	for _, v := range []any{
		syncRequest{Country: "DE", Limit: 256},
		syncPage{Orders: nil, Next: []byte{1, 2, 3}},
	} {
		var b bytes.Buffer
		if err := writeFrame(&b, v); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, limit := range []int{maxSyncRequest, maxSyncResponse} {
			r := bytes.NewReader(b)
			var req syncRequest
			err := readFrame(r, limit, &req)
			if len(b) >= 4 {
				size := binary.BigEndian.Uint32(b[:4])
				if int64(size) > int64(limit) {
					if !errors.Is(err, errFrameTooLarge) {
						t.Fatalf("a %d-byte frame over the limit %d: %v", size, limit, err)
					}
					if consumed := len(b) - r.Len(); consumed != 4 {
						t.Fatalf("read %d bytes of an oversized frame, want only its 4-byte header", consumed)
					}
					continue
				}
			}
			if err != nil {
				continue
			}
			var out bytes.Buffer
			if err := writeFrame(&out, req); err != nil {
				t.Fatal(err)
			}
			var back syncRequest
			if err := readFrame(&out, limit, &back); err != nil {
				t.Fatalf("a written frame does not read back: %v", err)
			}
		}
	})
}

// FuzzReadDealFrame: the deal stream's frame reader (node/dealnet.go)
// never panics, refuses a length over agreement.MaxPacketSize before
// reading the body, and returns exactly the body writeDealFrame framed.
func FuzzReadDealFrame(f *testing.F) {
	var b bytes.Buffer
	if err := writeDealFrame(&b, []byte(`{"type":"propose"}`)); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(binary.AppendUvarint(nil, agreement.MaxPacketSize+1))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		body, err := readDealFrame(bytes.NewReader(in))
		size, n := binary.Uvarint(in)
		switch {
		case n > 0 && size > agreement.MaxPacketSize:
			if !errors.Is(err, agreement.ErrMessageTooLarge) {
				t.Fatalf("a %d-byte frame: %v, want ErrMessageTooLarge", size, err)
			}
		case n > 0 && uint64(len(in)-n) >= size:
			if err != nil || !bytes.Equal(body, in[n:n+int(size)]) {
				t.Fatalf("a whole %d-byte frame read as %d bytes, %v", size, len(body), err)
			}
		default:
			if err == nil {
				t.Fatalf("a truncated or unreadable frame read as %d bytes", len(body))
			}
			if n > 0 && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("a truncated frame: %v", err)
			}
		}
		var w bytes.Buffer
		if err := writeDealFrame(&w, in); int64(len(in)) <= agreement.MaxPacketSize && err == nil {
			if got, err := readDealFrame(&w); err != nil || !bytes.Equal(got, in) {
				t.Fatalf("round trip of %d bytes: %d bytes, %v", len(in), len(got), err)
			}
		}
	})
}
