package agreement

import (
	"bytes"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func sampleMessages() []Message {
	sig := bytes.Repeat([]byte{7}, 65)
	tm := testTerms()
	return []Message{
		&Proposal{Terms: tm, RequesterSig: sig},
		&Accept{DealID: common.Hash{1}, ProviderSig: sig},
		&Reject{DealID: common.Hash{2}, Reason: ReasonNoCapacity, Detail: "0 IPs available"},
		&Reject{DealID: common.Hash{2}, Reason: ReasonPrice},
		&SignedVoucher{Voucher: Voucher{DealID: common.Hash{3}, Amount: big.NewInt(123), Bytes: 456, ConnLogHash: common.Hash{4}}, Signature: sig},
		&Close{DealID: common.Hash{5}, Reason: ReasonClosed},
		&Close{DealID: common.Hash{5}, Reason: ReasonNotFunded, CancelSig: sig},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %s:\ngot  %#v\nwant %#v", b, got, m)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	sig := "0x" + strings.Repeat("07", 65)
	h := "0x" + strings.Repeat("11", 32)
	okVoucher := `{"type":"voucher","dealId":"` + h + `","amount":"5","bytes":1,"connLogHash":"` + h + `","signature":"` + sig + `"}`
	if _, err := Decode([]byte(okVoucher)); err != nil {
		t.Fatalf("base case: %v", err)
	}
	for name, in := range map[string]string{
		"empty":            ``,
		"not an object":    `[]`,
		"unknown type":     `{"type":"hello","dealId":"` + h + `"}`,
		"unknown field":    strings.Replace(okVoucher, `"bytes":1`, `"bytes":1,"x":1`, 1),
		"foreign field":    strings.Replace(okVoucher, `"bytes":1`, `"bytes":1,"reason":"closed"`, 1),
		"missing field":    strings.Replace(okVoucher, `"bytes":1,`, ``, 1),
		"trailing data":    okVoucher + `{}`,
		"leading zero":     strings.Replace(okVoucher, `"5"`, `"05"`, 1),
		"negative":         strings.Replace(okVoucher, `"5"`, `"-5"`, 1),
		"number amount":    strings.Replace(okVoucher, `"5"`, `5`, 1),
		"huge amount":      strings.Replace(okVoucher, `"5"`, `"`+new(big.Int).Lsh(big.NewInt(1), 256).String()+`"`, 1),
		"short signature":  strings.Replace(okVoucher, sig, "0x0707", 1),
		"short hash":       strings.Replace(okVoucher, `"dealId":"`+h, `"dealId":"0x11`, 1),
		"unknown reason":   `{"type":"close","dealId":"` + h + `","reason":"bored"}`,
		"reject no reason": `{"type":"reject","dealId":"` + h + `"}`,
		"invalid terms": `{"type":"proposal","requesterSig":"` + sig + `","terms":{"offerId":"` + h + `","requestId":"` + h +
			`","provider":"0x0000000000000000000000000000000000000001","requester":"0x0000000000000000000000000000000000000002",` +
			`"ips":1,"pricePerIpHour":"1","pricePerGB":"1","maxAmount":"1","start":10,"deadline":5,"nonce":0}}`,
		"too large": `{"type":"close","dealId":"` + h + `","reason":"closed","x":"` + strings.Repeat("a", MaxMessageSize) + `"}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrMessageTooLarge) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	long := &Reject{DealID: common.Hash{1}, Reason: ReasonPrice, Detail: strings.Repeat("x", MaxDetailLength+1)}
	if _, err := Encode(long); err == nil {
		t.Error("encoded a detail above MaxDetailLength")
	}
}

// FuzzDecode: Decode never panics, never accepts more than MaxMessageSize,
// and what it accepts encodes back to something that decodes to the same.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"close"}`))
	f.Add([]byte(`{"type":"proposal","terms":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if len(b) > MaxMessageSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %s but cannot encode %#v: %v", b, m, err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %#v into %#v", m, m2)
		}
	})
}
