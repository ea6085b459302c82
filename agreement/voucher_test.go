package agreement

import (
	"errors"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestCost(t *testing.T) {
	tm := testTerms() // 3 IPs, 1e15 per IP-hour, 2e15 per GB
	for _, c := range []struct {
		secs, n uint64
		want    string
	}{
		{0, 0, "0"},
		{3600, 0, "3000000000000000"},
		{0, 1_000_000_000, "2000000000000000"},
		{1, 0, "833333333334"},  // 3e15/3600 = 833333333333.33…, rounded up
		{0, 1, "2000000"},       // 2e15/1e9
		{1, 1, "833335333334"},  // one ceiling over the exact sum
		{7, 3, "5833339333334"}, // 7·833333333333.33 + 3·2e6 = 5833339333333.33…
	} {
		if got := tm.Cost(c.secs, c.n); got.String() != c.want {
			t.Errorf("Cost(%d, %d) = %s, want %s", c.secs, c.n, got, c.want)
		}
	}
	if got := tm.CappedCost(1<<40, 0); got.Cmp(tm.MaxAmount) != 0 {
		t.Errorf("CappedCost = %s, want max %s", got, tm.MaxAmount)
	}
	// Cumulative: the sum of interval costs is the cost of the whole, never
	// more than one unit above the exact price.
	var sum big.Int
	prev := new(big.Int)
	for s := uint64(1); s <= 100; s++ {
		c := tm.Cost(s, s*1000)
		sum.Add(&sum, new(big.Int).Sub(c, prev))
		prev = c
	}
	if sum.Cmp(tm.Cost(100, 100_000)) != 0 {
		t.Errorf("intervals sum to %s, whole is %s", &sum, tm.Cost(100, 100000))
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(partyKey("p"))
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no signer":         func(c *Config) { c.Signer = nil },
		"no chain":          func(c *Config) { c.Domain.ChainID = nil },
		"zero interval":     func(c *Config) { c.IntervalSeconds = 0 },
		"zero bytes":        func(c *Config) { c.IntervalBytes = 0 },
		"short proposal":    func(c *Config) { c.ProposalTimeout = time.Millisecond },
		"funding > reserve": func(c *Config) { c.FundingTimeout = c.ReservationTimeout + time.Second },
		"negative grace":    func(c *Config) { c.PaymentGrace = -time.Second },
	} {
		c := good
		mut(&c)
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

// activeProvider returns a pair whose provider is active, having served 5 s
// and 5000 bytes, with the requester's vouchers applied.
func activeProvider(t *testing.T) *pair {
	x := newPair(t, 1000, 1)
	x.active()
	x.now += 4
	x.step(x.p, Usage{At: x.at(), DealID: x.id, Bytes: 5000})
	return x
}

func (x *pair) voucherFrom(key KeySigner, v Voucher) Receive {
	sig, err := v.Sign(testDomain, key.key)
	if err != nil {
		x.t.Fatal(err)
	}
	return Receive{At: x.at(), From: x.rs.Address(), Msg: &SignedVoucher{Voucher: v, Signature: sig}}
}

func TestVoucherChecks(t *testing.T) {
	x := activeProvider(t)
	d, _ := x.p.Deal(x.id)
	paid := d.Paid()
	limit := x.p.aheadLimit(&d, x.now)
	if paid.Sign() == 0 || limit.Cmp(paid) <= 0 {
		t.Fatalf("paid %s, limit %s", paid, limit)
	}
	other := crypto.Keccak256Hash([]byte("other deal"))
	more := func(n int64) *big.Int { return new(big.Int).Add(paid, big.NewInt(n)) }
	for _, c := range []struct {
		name string
		ev   Receive
		want error
	}{
		{"wrong signer", x.voucherFrom(x.ps, Voucher{DealID: x.id, Amount: more(1), Bytes: d.Bytes}), ErrWrongSigner},
		{"unknown deal", x.voucherFrom(x.rs, Voucher{DealID: other, Amount: more(1)}), ErrVoucherDeal},
		{"decreasing", x.voucherFrom(x.rs, Voucher{DealID: x.id, Amount: more(-1), Bytes: d.Bytes}), ErrVoucherDecreases},
		{"bytes decrease", x.voucherFrom(x.rs, Voucher{DealID: x.id, Amount: more(1), Bytes: 0}), nil},
		{"above max", x.voucherFrom(x.rs, Voucher{DealID: x.id, Amount: more(1000)}), ErrVoucherAboveMax},
		{"too far ahead", x.voucherFrom(x.rs, Voucher{DealID: x.id, Amount: new(big.Int).Add(limit, big.NewInt(1))}), ErrVoucherTooFar},
		{"from a stranger", Receive{At: x.at(), From: partyKey("mallory").Address(), Msg: x.voucherFrom(x.rs,
			Voucher{DealID: x.id, Amount: more(1)}).Msg}, ErrWrongPeer},
		{"bad signature", Receive{At: x.at(), From: x.rs.Address(), Msg: &SignedVoucher{
			Voucher: Voucher{DealID: x.id, Amount: more(1)}, Signature: make([]byte, 65)}}, ErrBadSignature},
	} {
		if c.name == "bytes decrease" {
			// The current voucher carries bytes; one with fewer is refused.
			if d.Voucher.Voucher.Bytes == 0 {
				continue
			}
			c.want = ErrVoucherBytes
		}
		before, _ := x.p.Deal(x.id)
		err := x.p.Step(c.ev)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		after, _ := x.p.Deal(x.id)
		if !reflect.DeepEqual(before, after) || x.p.HasReady() {
			t.Errorf("%s: refused voucher changed the state", c.name)
		}
	}
	// The limit itself is accepted, and the same voucher again is a no-op
	// update.
	ok := x.voucherFrom(x.rs, Voucher{DealID: x.id, Amount: limit, Bytes: d.Voucher.Voucher.Bytes})
	if err := x.p.Step(ok); err != nil {
		t.Fatalf("voucher at the limit: %v", err)
	}
	if err := x.p.Step(ok); err != nil {
		t.Fatalf("same voucher again: %v", err)
	}
	if got, _ := x.p.Deal(x.id); got.Paid().Cmp(limit) != 0 {
		t.Errorf("paid %s, want %s", got.Paid(), limit)
	}
}

// A voucher signed for the same deal id under another domain (another chain
// or escrow) does not verify.
func TestVoucherOtherDomain(t *testing.T) {
	x := activeProvider(t)
	d, _ := x.p.Deal(x.id)
	v := Voucher{DealID: x.id, Amount: new(big.Int).Add(d.Paid(), big.NewInt(1)), Bytes: d.Voucher.Voucher.Bytes}
	sig, _ := v.Sign(Domain{ChainID: big.NewInt(1), Escrow: common.Address{1}}, x.rs.key)
	err := x.p.Step(Receive{At: x.at(), From: x.rs.Address(), Msg: &SignedVoucher{Voucher: v, Signature: sig}})
	if !errors.Is(err, ErrWrongSigner) && !errors.Is(err, ErrBadSignature) {
		t.Errorf("got %v", err)
	}
}

// The requester never pays more than one interval ahead of its own meter,
// and the provider accepts every honest voucher.
func TestPayAheadBound(t *testing.T) {
	x := newPair(t, 1000, 1)
	x.active()
	cfg := testConfig(x.rs)
	var bytes uint64 = 5000
	for now := x.now + 1; now < x.tm.Deadline; now++ {
		x.now = now
		bytes += 37_000
		x.step(x.r, Usage{At: x.at(), DealID: x.id, Bytes: bytes})
		x.step(x.p, Usage{At: x.at(), DealID: x.id, Bytes: bytes})
		x.tick(x.r, now)
		x.tick(x.p, now)
		x.deliver()
		rd, _ := x.r.Deal(x.id)
		pd, _ := x.p.Deal(x.id)
		used := x.tm.CappedCost(elapsed(&rd, now), bytes)
		ahead := new(big.Int).Sub(rd.Paid(), used)
		interval := x.tm.Cost(cfg.IntervalSeconds, cfg.IntervalBytes)
		if ahead.Cmp(new(big.Int).Add(interval, big.NewInt(1))) > 0 {
			t.Fatalf("at %d the requester is %s ahead, more than an interval (%s)", now, ahead, interval)
		}
		if pd.Paid().Cmp(rd.Paid()) != 0 {
			t.Fatalf("at %d provider holds %s, requester sent %s", now, pd.Paid(), rd.Paid())
		}
		if !pd.Serving {
			t.Fatalf("at %d the provider stopped serving an honest requester", now)
		}
	}
}
