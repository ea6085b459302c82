package orderbook

import (
	"crypto/ecdsa"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

var (
	testDomain = Domain{ChainID: 1337, VerifyingContract: common.HexToAddress("0x00000000000000000000000000000000000e5c40")}
	testNow    = time.Unix(1_800_000_000, 0)
)

func testKey(t testing.TB, seed byte) *ecdsa.PrivateKey {
	t.Helper()
	var d [32]byte
	d[31] = seed
	d[0] = 0x42
	k, err := crypto.ToECDSA(d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newOffer(now time.Time) *Order {
	c := uint64(now.Unix())
	return &Order{
		Kind: KindOffer, ChainID: testDomain.ChainID, VerifyingContract: testDomain.VerifyingContract,
		Nonce: 7, Version: 1, Created: c, Expires: c + 3600,
		Location: Location{Country: "DE", Region: "BE", City: "Berlin", ASN: 3320},
		IPType:   IPResidential, IPs: 4, Protocols: ProtoTCP,
		PricePerHour: big.NewInt(1_000_000_000_000_000), PricePerGB: big.NewInt(5_000_000_000_000_000),
		MinDuration: 5, MaxDuration: 86400, Bandwidth: 100,
	}
}

func newRequest(now time.Time) *Order {
	c := uint64(now.Unix())
	return &Order{
		Kind: KindRequest, ChainID: testDomain.ChainID, VerifyingContract: testDomain.VerifyingContract,
		Nonce: 9, Version: 1, Created: c, Expires: c + 600,
		Location: Location{Country: "US"}, IPType: IPAny, IPs: 2, Protocols: ProtoTCP,
		PricePerHour: big.NewInt(2_000_000_000_000_000), PricePerGB: big.NewInt(1),
		Duration: 3600, Bandwidth: 10,
	}
}

func signed(t testing.TB, o *Order, k *ecdsa.PrivateKey) *Order {
	t.Helper()
	if err := o.Sign(k); err != nil {
		t.Fatal(err)
	}
	return o
}

func timeOf(unix uint64) time.Time { return time.Unix(int64(unix), 0) }
