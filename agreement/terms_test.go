package agreement

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

var testDomain = Domain{ChainID: big.NewInt(1337), Escrow: common.HexToAddress("0x00000000000000000000000000000000000e5c40")}

func testTerms() Terms {
	return Terms{
		OfferID:        common.HexToHash("0x01"),
		RequestID:      common.HexToHash("0x02"),
		Provider:       common.HexToAddress("0xaaaa"),
		Requester:      common.HexToAddress("0xbbbb"),
		IPs:            3,
		PricePerIPHour: big.NewInt(1e15),
		PricePerGB:     big.NewInt(2e15),
		MaxAmount:      big.NewInt(5e17),
		Start:          1_700_000_000,
		Deadline:       1_700_003_600,
		Nonce:          7,
	}
}

// typedData builds the same messages with go-ethereum's generic EIP-712
// encoder, an implementation independent of ours.
func typedData(primary string, msg apitypes.TypedDataMessage) apitypes.TypedData {
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {
				{Name: "name", Type: "string"},
				{Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"},
				{Name: "verifyingContract", Type: "address"},
			},
			"Deal": {
				{Name: "offerId", Type: "bytes32"},
				{Name: "requestId", Type: "bytes32"},
				{Name: "provider", Type: "address"},
				{Name: "requester", Type: "address"},
				{Name: "ips", Type: "uint32"},
				{Name: "pricePerIpHour", Type: "uint256"},
				{Name: "pricePerGB", Type: "uint256"},
				{Name: "maxAmount", Type: "uint256"},
				{Name: "start", Type: "uint64"},
				{Name: "deadline", Type: "uint64"},
				{Name: "nonce", Type: "uint64"},
			},
			"Voucher": {
				{Name: "dealId", Type: "bytes32"},
				{Name: "amount", Type: "uint256"},
				{Name: "byteCount", Type: "uint64"},
				{Name: "connLogHash", Type: "bytes32"},
			},
			"Cancel": {{Name: "dealId", Type: "bytes32"}},
		},
		PrimaryType: primary,
		Domain: apitypes.TypedDataDomain{
			Name:              DomainName,
			Version:           DomainVersion,
			ChainId:           (*math.HexOrDecimal256)(testDomain.ChainID),
			VerifyingContract: testDomain.Escrow.Hex(),
		},
		Message: msg,
	}
}

func mustHash(t *testing.T, td apitypes.TypedData) common.Hash {
	t.Helper()
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	return common.BytesToHash(h)
}

func TestDigestsMatchGenericEIP712(t *testing.T) {
	tm := testTerms()
	td := typedData("Deal", apitypes.TypedDataMessage{
		"offerId":        tm.OfferID.Bytes(),
		"requestId":      tm.RequestID.Bytes(),
		"provider":       tm.Provider.Hex(),
		"requester":      tm.Requester.Hex(),
		"ips":            "3",
		"pricePerIpHour": tm.PricePerIPHour.String(),
		"pricePerGB":     tm.PricePerGB.String(),
		"maxAmount":      tm.MaxAmount.String(),
		"start":          "1700000000",
		"deadline":       "1700003600",
		"nonce":          "7",
	})
	if got := td.TypeHash("Deal"); common.BytesToHash(got) != DealTypeHash {
		t.Fatalf("deal type hash %x, want %s (type %q)", got, DealTypeHash, td.EncodeType("Deal"))
	}
	if got, want := tm.ID(testDomain), mustHash(t, td); got != want {
		t.Fatalf("deal id %s, want %s", got, want)
	}

	v := Voucher{DealID: tm.ID(testDomain), Amount: big.NewInt(12345), Bytes: 1 << 40, ConnLogHash: common.HexToHash("0xc0ffee")}
	vd := typedData("Voucher", apitypes.TypedDataMessage{
		"dealId":      v.DealID.Bytes(),
		"amount":      "12345",
		"byteCount":   "1099511627776",
		"connLogHash": v.ConnLogHash.Bytes(),
	})
	if got, want := v.Digest(testDomain), mustHash(t, vd); got != want {
		t.Fatalf("voucher digest %s, want %s", got, want)
	}

	cd := typedData("Cancel", apitypes.TypedDataMessage{"dealId": v.DealID.Bytes()})
	if got, want := CancelDigest(testDomain, v.DealID), mustHash(t, cd); got != want {
		t.Fatalf("cancel digest %s, want %s", got, want)
	}
}

func TestIDDependsOnEveryFieldAndDomain(t *testing.T) {
	base := testTerms()
	id := base.ID(testDomain)
	mutations := map[string]func(*Terms){
		"offer":     func(t *Terms) { t.OfferID[31] ^= 1 },
		"request":   func(t *Terms) { t.RequestID[31] ^= 1 },
		"provider":  func(t *Terms) { t.Provider[19] ^= 1 },
		"requester": func(t *Terms) { t.Requester[19] ^= 1 },
		"ips":       func(t *Terms) { t.IPs++ },
		"priceHour": func(t *Terms) { t.PricePerIPHour = big.NewInt(1) },
		"priceGB":   func(t *Terms) { t.PricePerGB = big.NewInt(1) },
		"max":       func(t *Terms) { t.MaxAmount = big.NewInt(1) },
		"start":     func(t *Terms) { t.Start++ },
		"deadline":  func(t *Terms) { t.Deadline++ },
		"nonce":     func(t *Terms) { t.Nonce++ },
	}
	for name, mutate := range mutations {
		m := testTerms()
		mutate(&m)
		if m.ID(testDomain) == id {
			t.Errorf("%s: id unchanged", name)
		}
	}
	other := Domain{ChainID: big.NewInt(1), Escrow: testDomain.Escrow}
	if base.ID(other) == id {
		t.Error("chain id not bound")
	}
	other = Domain{ChainID: testDomain.ChainID, Escrow: common.HexToAddress("0x01")}
	if base.ID(other) == id {
		t.Error("escrow address not bound")
	}
}

func TestSignVerify(t *testing.T) {
	pk, _ := crypto.GenerateKey()
	rk, _ := crypto.GenerateKey()
	tm := testTerms()
	tm.Provider = crypto.PubkeyToAddress(pk.PublicKey)
	tm.Requester = crypto.PubkeyToAddress(rk.PublicKey)
	ps, err := tm.Sign(testDomain, pk)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tm.Sign(testDomain, rk)
	if err != nil {
		t.Fatal(err)
	}
	if ps[64] != 27 && ps[64] != 28 {
		t.Fatalf("v = %d", ps[64])
	}
	if err := tm.VerifySignatures(testDomain, ps, rs); err != nil {
		t.Fatal(err)
	}
	if err := tm.VerifySignatures(testDomain, rs, ps); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("swapped signatures: %v", err)
	}
	// v in {0,1} is accepted too.
	low := append([]byte(nil), ps...)
	low[64] -= 27
	if err := Verify(tm.ID(testDomain), low, tm.Provider); err != nil {
		t.Fatalf("v-27: %v", err)
	}

	bad := map[string][]byte{
		"short":  ps[:64],
		"long":   append(append([]byte(nil), ps...), 0),
		"v=29":   append(append([]byte(nil), ps[:64]...), 29),
		"high s": highS(ps),
	}
	for name, sig := range bad {
		if err := Verify(tm.ID(testDomain), sig, tm.Provider); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}

	v := Voucher{DealID: tm.ID(testDomain), Amount: big.NewInt(10)}
	vs, err := v.Sign(testDomain, rk)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(v.Digest(testDomain), vs, tm.Requester); err != nil {
		t.Fatal(err)
	}
	cs, err := SignCancel(testDomain, v.DealID, pk)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(CancelDigest(testDomain, v.DealID), cs, tm.Provider); err != nil {
		t.Fatal(err)
	}
}

// highS returns the malleable twin (r, n-s, v^1) of a signature, which
// recovers to the same key but must be rejected.
func highS(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[32:64])
	s.Sub(crypto.S256().Params().N, s)
	copy(out[32:64], common.LeftPadBytes(s.Bytes(), 32))
	out[64] = 27 + (1 - (sig[64] - 27))
	return out
}

func TestValidate(t *testing.T) {
	tooBig := new(big.Int).Lsh(big.NewInt(1), 128)
	tests := []struct {
		name   string
		mutate func(*Terms)
		ok     bool
	}{
		{"valid", func(*Terms) {}, true},
		{"zero provider", func(t *Terms) { t.Provider = common.Address{} }, false},
		{"zero requester", func(t *Terms) { t.Requester = common.Address{} }, false},
		{"start == deadline", func(t *Terms) { t.Start = t.Deadline }, false},
		{"nil max", func(t *Terms) { t.MaxAmount = nil }, false},
		{"zero max", func(t *Terms) { t.MaxAmount = big.NewInt(0) }, false},
		{"max 2^128", func(t *Terms) { t.MaxAmount = tooBig }, false},
		{"max 2^128-1", func(t *Terms) { t.MaxAmount = new(big.Int).Sub(tooBig, big.NewInt(1)) }, true},
		{"negative price", func(t *Terms) { t.PricePerGB = big.NewInt(-1) }, false},
		{"nil price", func(t *Terms) { t.PricePerIPHour = nil }, false},
	}
	for _, tt := range tests {
		tm := testTerms()
		tt.mutate(&tm)
		err := tm.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidTerms) {
			t.Errorf("%s: %v is not ErrInvalidTerms", tt.name, err)
		}
	}
	if err := (Voucher{Amount: big.NewInt(-1)}).Validate(); !errors.Is(err, ErrInvalidVoucher) {
		t.Errorf("negative voucher: %v", err)
	}
	if err := (Voucher{Amount: big.NewInt(0)}).Validate(); err != nil {
		t.Errorf("zero voucher: %v", err)
	}
}
