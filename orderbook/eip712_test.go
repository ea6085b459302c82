package orderbook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// parseType turns "Name(type a,type b)" into apitypes form.
func parseType(t *testing.T, s string) (string, []apitypes.Type) {
	t.Helper()
	open := strings.IndexByte(s, '(')
	name, body := s[:open], strings.TrimSuffix(s[open+1:], ")")
	var fields []apitypes.Type
	for _, f := range strings.Split(body, ",") {
		parts := strings.Fields(f)
		fields = append(fields, apitypes.Type{Type: parts[0], Name: parts[1]})
	}
	return name, fields
}

// gethDigest computes the EIP-712 digest with go-ethereum's generic
// implementation (what eth_signTypedData_v4 signs).
func gethDigest(t *testing.T, typeString string, d Domain, msg apitypes.TypedDataMessage) common.Hash {
	t.Helper()
	name, fields := parseType(t, typeString)
	_, domFields := parseType(t, DomainType)
	td := apitypes.TypedData{
		Types:       apitypes.Types{"EIP712Domain": domFields, name: fields},
		PrimaryType: name,
		Domain: apitypes.TypedDataDomain{
			Name: DomainName, Version: DomainVersion,
			ChainId:           (*math.HexOrDecimal256)(new(big.Int).SetUint64(d.ChainID)),
			VerifyingContract: d.VerifyingContract.Hex(),
		},
		Message: msg,
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	return common.BytesToHash(h)
}

func orderMessage(o *Order) apitypes.TypedDataMessage {
	m := apitypes.TypedDataMessage{
		"maker": o.Maker.Hex(), "nonce": fmt.Sprint(o.Nonce), "version": fmt.Sprint(o.Version),
		"created": fmt.Sprint(o.Created), "expires": fmt.Sprint(o.Expires),
		"country": o.Location.Country, "region": o.Location.Region, "city": o.Location.City,
		"asn": fmt.Sprint(o.Location.ASN), "ipType": fmt.Sprint(uint8(o.IPType)), "ips": fmt.Sprint(o.IPs),
		"protocols": fmt.Sprint(uint8(o.Protocols)),
	}
	if o.Kind == KindOffer {
		m["pricePerHour"], m["pricePerGB"] = o.PricePerHour.String(), o.PricePerGB.String()
		m["minDuration"], m["maxDuration"], m["bandwidth"] = fmt.Sprint(o.MinDuration), fmt.Sprint(o.MaxDuration), fmt.Sprint(o.Bandwidth)
		m["unverified"] = o.Unverified
	} else {
		m["maxPricePerHour"], m["maxPricePerGB"] = o.PricePerHour.String(), o.PricePerGB.String()
		m["duration"], m["minBandwidth"] = fmt.Sprint(o.Duration), fmt.Sprint(o.Bandwidth)
	}
	return m
}

// TestDigestsMatchGeth: our hand-rolled encoding equals go-ethereum's
// generic EIP-712 implementation for every message type.
func TestDigestsMatchGeth(t *testing.T) {
	k := testKey(t, 1)
	offer := signed(t, newOffer(testNow), k)
	req := signed(t, newRequest(testNow), k)
	maxed := newOffer(testNow)
	maxed.PricePerHour = new(big.Int).Sub(new(big.Int).Lsh(common.Big1, 256), common.Big1)
	maxed.Location = Location{Country: "JP", City: "Ōsaka"}
	signed(t, maxed, k)
	declared := newOffer(testNow)
	declared.Unverified = true
	signed(t, declared, k)
	for name, o := range map[string]*Order{"offer": offer, "request": req, "max price, unicode": maxed, "unverified": declared} {
		typ := OfferType
		if o.Kind == KindRequest {
			typ = RequestType
		}
		if got, want := o.ID(), gethDigest(t, typ, testDomain, orderMessage(o)); got != want {
			t.Errorf("%s: id %s, go-ethereum says %s", name, got.Hex(), want.Hex())
		}
	}
	c := &Cancel{ChainID: testDomain.ChainID, VerifyingContract: testDomain.VerifyingContract, OrderID: offer.ID(), Created: 5}
	if err := c.Sign(k); err != nil {
		t.Fatal(err)
	}
	if got, want := c.ID(), gethDigest(t, CancelType, testDomain, apitypes.TypedDataMessage{
		"maker": c.Maker.Hex(), "orderId": c.OrderID.Hex(), "created": "5",
	}); got != want {
		t.Errorf("cancel: %s, go-ethereum says %s", got.Hex(), want.Hex())
	}
	h := &Heartbeat{ChainID: testDomain.ChainID, VerifyingContract: testDomain.VerifyingContract, Country: "DE", Created: 9, Count: 2, Digest: offer.ID()}
	if err := h.Sign(k); err != nil {
		t.Fatal(err)
	}
	if got, want := h.ID(), gethDigest(t, HeartbeatType, testDomain, apitypes.TypedDataMessage{
		"maker": h.Maker.Hex(), "country": "DE", "created": "9", "count": "2", "digest": h.Digest.Hex(),
	}); got != want {
		t.Errorf("heartbeat: %s, go-ethereum says %s", got.Hex(), want.Hex())
	}
}

func TestSignRecover(t *testing.T) {
	k := testKey(t, 2)
	o := signed(t, newOffer(testNow), k)
	got, err := o.Signer()
	if err != nil || got != crypto.PubkeyToAddress(k.PublicKey) {
		t.Fatalf("signer %s, %v", got.Hex(), err)
	}
	if o.Signature[64] != 27 && o.Signature[64] != 28 {
		t.Errorf("v = %d, want 27 or 28", o.Signature[64])
	}
	// V as 0/1 is accepted too.
	alt := *o
	alt.Signature = append([]byte(nil), o.Signature...)
	alt.Signature[64] -= 27
	if s, err := alt.Signer(); err != nil || s != o.Maker {
		t.Errorf("v in 0/1 form: %s, %v", s.Hex(), err)
	}
	// The high-S twin of a valid signature is refused (one order, one
	// signature).
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(o.Signature[32:64])
	hi := append([]byte(nil), o.Signature...)
	new(big.Int).Sub(n, s).FillBytes(hi[32:64])
	hi[64] ^= 1
	alt.Signature = hi
	if _, err := alt.Signer(); err == nil {
		t.Error("high-S signature accepted")
	}
}

// vector is the test vector block in docs/orders.md.
type vector struct {
	PrivateKey string          `json:"privateKey"`
	Order      json.RawMessage `json:"order"`
	Digest     common.Hash     `json:"digest"`
	Signature  hexutil.Bytes   `json:"signature"`
}

// TestDocVector checks the test vector printed in docs/orders.md: the order
// JSON decodes, its digest and its signature by the key are as printed,
// and it passes validation at its created time.
func TestDocVector(t *testing.T) {
	doc, err := os.ReadFile("../docs/orders.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- test-vector -->"
	i := bytes.Index(doc, []byte(marker))
	if i < 0 {
		t.Fatalf("docs/orders.md has no %s block", marker)
	}
	rest := doc[i+len(marker):]
	start := bytes.Index(rest, []byte("```json\n"))
	end := bytes.Index(rest[start+8:], []byte("```"))
	if start < 0 || end < 0 {
		t.Fatal("no json code block after the test-vector marker")
	}
	var v vector
	if err := json.Unmarshal(rest[start+8:start+8+end], &v); err != nil {
		t.Fatalf("test vector: %v", err)
	}
	key, err := crypto.HexToECDSA(strings.TrimPrefix(v.PrivateKey, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeOrder(v.Order)
	if err != nil {
		t.Fatalf("decode vector order: %v", err)
	}
	if o.ID() != v.Digest {
		t.Errorf("digest %s, document says %s", o.ID().Hex(), v.Digest.Hex())
	}
	if !bytes.Equal(o.Signature, v.Signature) {
		t.Errorf("order signature %x, document's signature field %x", o.Signature, v.Signature)
	}
	fresh := *o
	if err := fresh.Sign(key); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh.Signature, v.Signature) {
		t.Errorf("signing with the vector key gives %x, document says %x", fresh.Signature, v.Signature)
	}
	if fresh.Maker != o.Maker {
		t.Errorf("vector key is %s, order maker %s", fresh.Maker.Hex(), o.Maker.Hex())
	}
	typ := OfferType
	if o.Kind == KindRequest {
		typ = RequestType
	}
	if g := gethDigest(t, typ, o.Domain(), orderMessage(o)); g != v.Digest {
		t.Errorf("go-ethereum's EIP-712 digest %s, document says %s", g.Hex(), v.Digest.Hex())
	}
	for _, s := range []string{OfferType, RequestType, CancelType, HeartbeatType, DomainType} {
		if !bytes.Contains(doc, []byte(s)) {
			t.Errorf("docs/orders.md does not state the type string %s", s)
		}
	}
	p := DefaultParams(o.Domain())
	if err := Validate(o, len(v.Order), timeOf(o.Created), p, nil, nil); err != nil {
		t.Errorf("vector order invalid at its created time: %v", err)
	}
}

// TestPrintVector prints a fresh vector for docs/orders.md (go test -run
// PrintVector -v -vector).
func TestPrintVector(t *testing.T) {
	if os.Getenv("IPSX_PRINT_VECTOR") == "" {
		t.Skip("set IPSX_PRINT_VECTOR=1 to print a test vector for docs/orders.md")
	}
	key, _ := crypto.HexToECDSA("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	o := newOffer(testNow)
	signed(t, o, key)
	b, _ := json.MarshalIndent(o, "  ", "  ")
	fmt.Printf("{\n  \"privateKey\": \"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\",\n  \"order\": %s,\n  \"digest\": %q,\n  \"signature\": %q\n}\n",
		b, o.ID().Hex(), hexutil.Encode(o.Signature))
}
