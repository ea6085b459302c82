package agreement

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func samplePacket() Packet {
	p := Packet{Sync: true}
	for i, m := range sampleMessages() {
		seq := uint64(i + 1)
		if _, ok := m.(*Reject); ok {
			seq = 0
		}
		p.Msgs = append(p.Msgs, Sequenced{Seq: seq, Msg: m})
	}
	p.Acks = []Ack{{DealID: common.Hash{1}, Seq: 7, Status: StatusActive}, {DealID: common.Hash{2}, Seq: 0}}
	return p
}

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []Packet{samplePacket(), {}, {Acks: []Ack{{DealID: common.Hash{9}, Seq: 1}}}} {
		b, err := EncodePacket(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodePacket(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip of %s:\ngot  %#v\nwant %#v", b, got, p)
		}
	}
}

func TestDecodePacketRefuses(t *testing.T) {
	good, err := Encode(sampleMessages()[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"not json", `{`, ErrMalformed},
		{"unknown field", `{"msgs":[],"x":1}`, ErrMalformed},
		{"trailing", `{} {}`, ErrMalformed},
		{"seq 0 proposal", `{"msgs":[{"seq":0,"msg":` + string(good) + `}]}`, ErrMalformed},
		{"no seq", `{"msgs":[{"msg":` + string(good) + `}]}`, ErrMalformed},
		{"bad msg", `{"msgs":[{"seq":1,"msg":{"type":"close"}}]}`, ErrMalformed},
		{"ack without deal", `{"acks":[{"seq":1}]}`, ErrMalformed},
		{"ack status", `{"acks":[{"dealId":"0x` + strings.Repeat("00", 32) + `","seq":1,"status":"nope"}]}`, ErrMalformed},
		{"huge", `{"msgs":[` + strings.Repeat(" ", MaxPacketSize) + `]}`, ErrMessageTooLarge},
		{"too many acks", `{"acks":[` + strings.TrimSuffix(strings.Repeat(`{"dealId":"0x`+strings.Repeat("00", 32)+`","seq":1},`, MaxPacketAcks+1), ",") + `]}`, ErrMessageTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodePacket([]byte(tc.in)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := EncodePacket(Packet{Msgs: []Sequenced{{Seq: 0, Msg: sampleMessages()[0]}}}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("encoding an unsequenced proposal: %v", err)
	}
}

// FuzzDecodePacket: every deal stream's input reaches DecodePacket.
func FuzzDecodePacket(f *testing.F) {
	b, err := EncodePacket(samplePacket())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"acks":[{"dealId":"0x` + strings.Repeat("11", 32) + `","seq":3}],"sync":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacket(b)
		if err != nil {
			return
		}
		enc, err := EncodePacket(p)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode: %v", b, err)
		}
		p2, err := DecodePacket(enc)
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
	})
}
