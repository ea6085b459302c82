package orderbook_test

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
)

var domain = orderbook.Domain{ChainID: 1337, VerifyingContract: common.HexToAddress("0x00000000000000000000000000000000000e5c40")}

func openBook(t testing.TB, dir string, own common.Address) (*orderbook.Book, *badger.DB) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "db")).WithLogger(nil).WithMemTableSize(8 << 20))
	if err != nil {
		t.Fatal(err)
	}
	return orderbook.NewBook(db, orderbook.BookConfig{TTL: 90 * time.Second, Own: own}), db
}

func newBook(t *testing.T) *orderbook.Book {
	b, db := openBook(t, t.TempDir(), common.Address{})
	t.Cleanup(func() { db.Close() })
	return b
}

func key(t *testing.T) *ecdsa.PrivateKey {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// check is what every entry point does with a message: decode, validate
// against the book, apply.
func check(b *orderbook.Book, msg []byte, now time.Time) error {
	p := orderbook.DefaultParams(domain)
	m, err := orderbook.DecodeMessage(msg, p.MaxSize)
	if err != nil {
		return err
	}
	if m.Cancel != nil {
		if err := orderbook.ValidateCancel(m.Cancel, now, p); err != nil {
			return err
		}
		_, err := b.Cancel(m.Cancel)
		return err
	}
	if err := orderbook.Validate(m.Order, len(msg), now, p, b, nil); err != nil {
		return err
	}
	_, err = b.Add(m.Order)
	return err
}

func TestBadOrders(t *testing.T) {
	now := time.Now()
	b := newBook(t)
	fx := orderbooktest.BadOrders(domain, "DE", key(t), key(t), now)
	for _, o := range fx.Seed {
		if _, err := b.Add(o); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	for _, c := range fx.Cancels {
		if _, err := b.Cancel(c); err != nil {
			t.Fatalf("seed cancel: %v", err)
		}
	}
	if len(fx.Cases) < 15 {
		t.Fatalf("only %d bad cases", len(fx.Cases))
	}
	for _, c := range fx.Cases {
		t.Run(c.Name, func(t *testing.T) {
			err := check(b, c.Msg, now)
			if !errors.Is(err, c.Err) {
				t.Fatalf("got %v, want %v", err, c.Err)
			}
			if v := orderbook.VerdictOf(err); v != c.Verdict {
				t.Errorf("verdict %s, want %s", v, c.Verdict)
			}
			t.Logf("%s: %v", orderbook.VerdictOf(err), err)
		})
	}
	// And a good one passes, so the table is not refusing everything.
	good := orderbooktest.Sign(orderbooktest.Offer(domain, "DE", 1, now), key(t))
	msg, _ := orderbook.Message{Order: good}.Encode()
	if err := check(b, msg, now); err != nil {
		t.Fatalf("valid offer refused: %v", err)
	}
}

func TestCost(t *testing.T) {
	r := orderbooktest.Request(domain, "DE", 1, time.Now())
	r.IPs, r.Duration = 3, 5400 // 1.5 h
	r.PricePerHour.SetInt64(1001)
	// 3 × 1001 × 1.5 = 4504.5 → rounds up.
	if got := r.Cost().Int64(); got != 4505 {
		t.Errorf("cost %d, want 4505", got)
	}
	if c := orderbooktest.Offer(domain, "DE", 1, time.Now()).Cost(); c.Sign() != 0 {
		t.Errorf("offer cost %s, want 0", c)
	}
}

type balances map[common.Address]int64

func (b balances) Free(a common.Address) (*big.Int, bool) {
	v, ok := b[a]
	return big.NewInt(v), ok
}

func TestValidateBalance(t *testing.T) {
	k := key(t)
	now := time.Now()
	r := orderbooktest.Sign(orderbooktest.Request(domain, "DE", 1, now), k)
	p := orderbook.DefaultParams(domain)
	cost := r.Cost().Int64()
	for _, tc := range []struct {
		name string
		view balances
		want error
	}{
		{"covered", balances{r.Maker: cost}, nil},
		{"short by one", balances{r.Maker: cost - 1}, orderbook.ErrInsufficient},
		{"unknown maker", balances{}, orderbook.ErrInsufficient},
	} {
		if err := orderbook.Validate(r, 0, now, p, nil, tc.view); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}
