package orderbook

import (
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// TestIDStringCache checks ids against go-ethereum's EIP-712 for strings
// that hit the cache, evict each other (more cities than slots), span
// several Keccak blocks and are too long to be cached, also when hashed
// from several goroutines at once.
func TestIDStringCache(t *testing.T) {
	var cities []string
	for i := range 3 * len(stringCache) {
		cities = append(cities, fmt.Sprintf("city-%d", i))
	}
	cities = append(cities, strings.Repeat("x", 135), strings.Repeat("y", 136), strings.Repeat("z", 137),
		strings.Repeat("ü", 200), "", "DE", "de")
	want := make([]string, len(cities))
	for i, c := range cities {
		o := newOffer(testNow)
		o.Location.City, o.Location.Region = c, c
		want[i] = gethDigest(t, OfferType, testDomain, orderMessage(o)).Hex()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for round := range 2 {
				for i, c := range cities {
					o := newOffer(testNow)
					o.Location.City, o.Location.Region = c, c
					if got := o.ID().Hex(); got != want[i] {
						errs <- fmt.Errorf("goroutine %d round %d city %.20q: id %s, go-ethereum says %s", g, round, c, got, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestScalarRange compares the byte-wise range check of recoverSigner with
// go-ethereum's big.Int one (homestead rules: low S) at the edges.
func TestScalarRange(t *testing.T) {
	n := crypto.S256().Params().N
	half := new(big.Int).Rsh(n, 1)
	one := big.NewInt(1)
	vals := []*big.Int{
		big.NewInt(0), one, big.NewInt(2),
		new(big.Int).Sub(half, one), half, new(big.Int).Add(half, one),
		new(big.Int).Sub(n, one), n, new(big.Int).Add(n, one),
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), one),
	}
	for _, r := range vals {
		for _, s := range vals {
			var rb, sb [32]byte
			r.FillBytes(rb[:])
			s.FillBytes(sb[:])
			got := scalarIn(rb[:], &secp256k1NMinus1) && scalarIn(sb[:], &secp256k1HalfN)
			want := crypto.ValidateSignatureValues(0, r, s, true)
			if got != want {
				t.Errorf("r=%x s=%x: in range %v, go-ethereum says %v", r, s, got, want)
			}
		}
	}
}

// TestSignerAddressCache recovers signatures by more keys than the address
// cache has slots, twice, so that hits, misses and evictions all happen,
// each answer checked against go-ethereum.
func TestSignerAddressCache(t *testing.T) {
	n := len(addressCache) + len(addressCache)/2
	orders := make([]*Order, n)
	for i := range orders {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		orders[i] = signed(t, newOffer(testNow), k)
	}
	for round := range 2 {
		for i, o := range orders {
			got, err := o.Signer()
			if err != nil {
				t.Fatal(err)
			}
			if got != o.Maker {
				t.Fatalf("round %d order %d: signer %s, maker %s", round, i, got.Hex(), o.Maker.Hex())
			}
		}
	}
}

// TestIDOfOutOfRangePrice: an order's id is defined whatever its prices
// hold (Validate refuses those out of uint256 range, but ids are taken
// before that, e.g. in logs): no panic, and not the id of the order with
// its valid price. (An out-of-range price hashes as its low 256 bits, so
// 2^256 as 0: Validate refuses such an order for the range, whatever its
// digest.)
func TestIDOfOutOfRangePrice(t *testing.T) {
	for _, v := range []*big.Int{
		new(big.Int).Lsh(big.NewInt(1), 256),
		new(big.Int).Lsh(big.NewInt(1), 300),
		big.NewInt(-5),
	} {
		o := newOffer(testNow)
		ok := o.ID()
		o.PricePerHour = v
		if id := o.ID(); id == ok {
			t.Errorf("price %v hashes like the valid order", v)
		}
	}
}
