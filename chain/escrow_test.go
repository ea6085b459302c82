package chain

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain/bindings"
)

func TestDigestsMatchContract(t *testing.T) {
	e := newEnv(t, nil)
	tm := e.terms(tokens(5))
	got, err := e.provider.DealID(e.ctx, tm)
	e.must(err)
	if want := tm.ID(e.domain()); got != want {
		t.Fatalf("contract deal id %s, Go %s", got, want)
	}
	v, _ := e.voucher(tm, tokens(2))
	got, err = e.provider.VoucherDigest(e.ctx, v)
	e.must(err)
	if want := v.Digest(e.domain()); got != want {
		t.Fatalf("contract voucher digest %s, Go %s", got, want)
	}
	got, err = e.provider.CancelDigest(e.ctx, v.DealID)
	e.must(err)
	if want := agreement.CancelDigest(e.domain(), v.DealID); got != want {
		t.Fatalf("contract cancel digest %s, Go %s", got, want)
	}
}

func TestToken(t *testing.T) {
	e := newEnv(t, nil)
	tok := bindings.NewIPSXToken()
	out, err := e.provider.s.call(e.ctx, e.dc.Contracts().Token, tok.PackTotalSupply())
	e.must(err)
	supply, err := tok.UnpackTotalSupply(out)
	e.must(err)
	if want := tokens(1_800_000_000); supply.Cmp(want) != 0 {
		t.Fatalf("supply %s, want %s", supply, want)
	}
	out, err = e.provider.s.call(e.ctx, e.dc.Contracts().Token, tok.PackDecimals())
	e.must(err)
	if d, _ := tok.UnpackDecimals(out); d != 18 {
		t.Fatalf("decimals %d", d)
	}
	// Every funded account got its tokens; the deployer holds the rest.
	b, err := e.provider.Balances(e.ctx, e.provider.Address())
	e.must(err)
	if b.Token.Cmp(tokens(1_000_000)) != 0 || b.Escrow.Sign() != 0 || b.Reserved.Sign() != 0 {
		t.Fatalf("provider balances %+v", b)
	}
	// Moving tokens works and cannot exceed the balance.
	_, err = e.provider.Transfer(e.ctx, e.other.Address(), tokens(1))
	e.must(err)
	before := e.snapshot()
	_, err = e.provider.Transfer(e.ctx, e.other.Address(), tokens(2_000_000))
	if !IsRevert(err, "ERC20InsufficientBalance") {
		t.Fatalf("overdraft transfer: %v", err)
	}
	e.assertUnchanged(before)
}

func TestHappyPaths(t *testing.T) {
	e := newEnv(t, nil)
	rq, pv := e.requester.Address(), e.provider.Address()
	escrow := e.dc.Contracts().Escrow

	// deposit
	r, err := e.requester.Deposit(e.ctx, tokens(100))
	e.must(err)
	if len(r.Logs) != 2 { // Transfer + Deposited
		t.Fatalf("deposit logs: %d", len(r.Logs))
	}
	b, err := e.requester.Balances(e.ctx, rq)
	e.must(err)
	if b.Escrow.Cmp(tokens(100)) != 0 || b.Token.Cmp(tokens(999_900)) != 0 {
		t.Fatalf("after deposit %+v", b)
	}

	// open
	tm := e.terms(tokens(40))
	id := tm.ID(e.domain())
	r, err = e.other.Open(e.ctx, tm, e.sign(id, e.pk), e.sign(id, e.rk)) // anyone may submit
	e.must(err)
	ev, err := bindings.NewEscrow().UnpackOpenedEvent(r.Logs[0])
	e.must(err)
	if ev.DealId != id || ev.Provider != pv || ev.Requester != rq || ev.MaxAmount.Cmp(tokens(40)) != 0 {
		t.Fatalf("opened event %+v", ev)
	}
	b, _ = e.requester.Balances(e.ctx, rq)
	if b.Escrow.Cmp(tokens(60)) != 0 || b.Reserved.Cmp(tokens(40)) != 0 {
		t.Fatalf("after open %+v", b)
	}
	if s, _ := e.requester.DealStatus(e.ctx, id); s != StatusOpen {
		t.Fatalf("status %s", s)
	}

	// settle: 10 of 40 paid, 1% commission
	v, sig := e.voucher(tm, tokens(10))
	r, err = e.provider.Settle(e.ctx, tm, v, sig)
	e.must(err)
	sev, err := bindings.NewEscrow().UnpackSettledEvent(r.Logs[0])
	e.must(err)
	fee := new(big.Int).Div(tokens(10), big.NewInt(100))
	if sev.ConnLogHash != v.ConnLogHash || sev.ByteCount != v.Bytes || sev.Commission.Cmp(fee) != 0 || sev.Amount.Cmp(tokens(10)) != 0 {
		t.Fatalf("settled event %+v", sev)
	}
	b, _ = e.requester.Balances(e.ctx, rq)
	if b.Escrow.Cmp(tokens(90)) != 0 || b.Reserved.Sign() != 0 {
		t.Fatalf("requester after settle %+v", b)
	}
	b, _ = e.provider.Balances(e.ctx, pv)
	if want := new(big.Int).Sub(tokens(10), fee); b.Escrow.Cmp(want) != 0 {
		t.Fatalf("provider after settle %+v, want %s", b, want)
	}
	b, _ = e.provider.Balances(e.ctx, e.treasury)
	if b.Escrow.Cmp(fee) != 0 {
		t.Fatalf("treasury after settle %+v", b)
	}
	if s, _ := e.requester.DealStatus(e.ctx, id); s != StatusSettled {
		t.Fatalf("status %s", s)
	}

	// withdraw: the provider takes its earnings out
	b, _ = e.provider.Balances(e.ctx, pv)
	earned := b.Escrow
	_, err = e.provider.Withdraw(e.ctx, earned)
	e.must(err)
	b2, _ := e.provider.Balances(e.ctx, pv)
	if b2.Escrow.Sign() != 0 || new(big.Int).Sub(b2.Token, b.Token).Cmp(earned) != 0 {
		t.Fatalf("provider after withdraw %+v", b2)
	}

	// cancel releases everything
	tm2 := e.terms(tokens(30))
	id2 := tm2.ID(e.domain())
	_, err = e.requester.Open(e.ctx, tm2, e.sign(id2, e.pk), e.sign(id2, e.rk))
	e.must(err)
	cd := agreement.CancelDigest(e.domain(), id2)
	_, err = e.provider.Cancel(e.ctx, tm2, e.sign(cd, e.pk), e.sign(cd, e.rk))
	e.must(err)
	b, _ = e.requester.Balances(e.ctx, rq)
	if b.Escrow.Cmp(tokens(90)) != 0 || b.Reserved.Sign() != 0 {
		t.Fatalf("requester after cancel %+v", b)
	}
	if s, _ := e.requester.DealStatus(e.ctx, id2); s != StatusCancelled {
		t.Fatalf("status %s", s)
	}

	// refund after deadline + grace
	tm3 := e.terms(tokens(20))
	id3 := tm3.ID(e.domain())
	_, err = e.requester.Open(e.ctx, tm3, e.sign(id3, e.pk), e.sign(id3, e.rk))
	e.must(err)
	e.must(e.dc.AdjustTime(time.Hour + time.Hour + time.Second)) // deadline is now+1h, grace 1h
	_, err = e.other.Refund(e.ctx, tm3)
	e.must(err)
	b, _ = e.requester.Balances(e.ctx, rq)
	if b.Escrow.Cmp(tokens(90)) != 0 || b.Reserved.Sign() != 0 {
		t.Fatalf("requester after refund %+v", b)
	}
	if s, _ := e.requester.DealStatus(e.ctx, id3); s != StatusRefunded {
		t.Fatalf("status %s", s)
	}
	eb, _ := e.requester.Balances(e.ctx, escrow)
	if want := new(big.Int).Add(tokens(90), fee); eb.Token.Cmp(want) != 0 {
		t.Fatalf("escrow holds %s, want %s", eb.Token, want)
	}
}

func TestReverts(t *testing.T) {
	e := newEnv(t, nil)
	e.deposit(e.requester, tokens(50))
	settled := e.open(tokens(10))
	v, sig := e.voucher(settled, tokens(5))
	_, err := e.provider.Settle(e.ctx, settled, v, sig)
	e.must(err)
	open := e.open(tokens(10))
	openID := open.ID(e.domain())
	fresh := e.terms(tokens(10))
	freshID := fresh.ID(e.domain())
	cd := agreement.CancelDigest(e.domain(), openID)

	garbage := make([]byte, 65)
	garbage[64] = 27
	highS := func(s []byte) []byte {
		out := append([]byte(nil), s...)
		n := new(big.Int).Sub(crypto.S256().Params().N, new(big.Int).SetBytes(s[32:64]))
		copy(out[32:64], common.LeftPadBytes(n.Bytes(), 32))
		out[64] ^= 1 // 27 <-> 28
		return out
	}

	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"open: bad signature (garbage)", func() error {
			_, err := e.requester.Open(e.ctx, fresh, garbage, e.sign(freshID, e.rk))
			return err
		}, "BadSignature"},
		{"open: bad signature (short)", func() error {
			_, err := e.requester.Open(e.ctx, fresh, e.sign(freshID, e.pk)[:64], e.sign(freshID, e.rk))
			return err
		}, "BadSignature"},
		{"open: bad signature (high s)", func() error {
			_, err := e.requester.Open(e.ctx, fresh, highS(e.sign(freshID, e.pk)), e.sign(freshID, e.rk))
			return err
		}, "BadSignature"},
		{"open: wrong signer", func() error {
			_, err := e.requester.Open(e.ctx, fresh, e.sign(freshID, e.ok), e.sign(freshID, e.rk))
			return err
		}, "WrongSigner"},
		{"open: requester signature by provider", func() error {
			_, err := e.requester.Open(e.ctx, fresh, e.sign(freshID, e.pk), e.sign(freshID, e.pk))
			return err
		}, "WrongSigner"},
		{"open: replay of a deal id", func() error {
			_, err := e.requester.Open(e.ctx, open, e.sign(openID, e.pk), e.sign(openID, e.rk))
			return err
		}, "DealExists"},
		{"open: replay of a settled deal id", func() error {
			id := settled.ID(e.domain())
			_, err := e.requester.Open(e.ctx, settled, e.sign(id, e.pk), e.sign(id, e.rk))
			return err
		}, "DealExists"},
		{"open: more than free balance", func() error {
			big := e.terms(tokens(1000)) // the requester's free balance is 55
			id := big.ID(e.domain())
			_, err := e.requester.Open(e.ctx, big, e.sign(id, e.pk), e.sign(id, e.rk))
			return err
		}, "InsufficientBalance"},
		{"open: deadline passed", func() error {
			tm := e.terms(tokens(1))
			tm.Start, tm.Deadline = tm.Start-100, tm.Start-1
			id := tm.ID(e.domain())
			_, err := e.requester.Open(e.ctx, tm, e.sign(id, e.pk), e.sign(id, e.rk))
			return err
		}, "InvalidTerms"},
		{"settle: twice", func() error {
			_, err := e.provider.Settle(e.ctx, settled, v, sig)
			return err
		}, "DealNotOpen"},
		{"settle: above the locked amount", func() error {
			v, sig := e.voucher(open, tokens(11))
			_, err := e.provider.Settle(e.ctx, open, v, sig)
			return err
		}, "AmountAboveLocked"},
		{"settle: voucher signed by the provider", func() error {
			v, _ := e.voucher(open, tokens(1))
			_, err := e.provider.Settle(e.ctx, open, v, e.sign(v.Digest(e.domain()), e.pk))
			return err
		}, "WrongSigner"},
		{"settle: voucher for another deal", func() error {
			v, _ := e.voucher(settled, tokens(1))
			_, err := e.provider.Settle(e.ctx, open, v, e.sign(v.Digest(e.domain()), e.rk))
			return err
		}, "VoucherDealMismatch"},
		{"settle: by someone other than the provider", func() error {
			v, sig := e.voucher(open, tokens(1))
			_, err := e.other.Settle(e.ctx, open, v, sig)
			return err
		}, "NotProvider"},
		{"settle: unknown deal", func() error {
			v, sig := e.voucher(fresh, tokens(1))
			_, err := e.provider.Settle(e.ctx, fresh, v, sig)
			return err
		}, "DealNotOpen"},
		{"refund: before the deadline", func() error {
			_, err := e.requester.Refund(e.ctx, open)
			return err
		}, "RefundTooEarly"},
		{"refund: after settle", func() error {
			_, err := e.requester.Refund(e.ctx, settled)
			return err
		}, "DealNotOpen"},
		{"withdraw: more than balance minus reserved", func() error {
			b, err := e.requester.Balances(e.ctx, e.requester.Address())
			e.must(err)
			_, err = e.requester.Withdraw(e.ctx, new(big.Int).Add(b.Escrow, big.NewInt(1)))
			return err
		}, "InsufficientBalance"},
		{"withdraw: zero", func() error {
			_, err := e.requester.Withdraw(e.ctx, new(big.Int))
			return err
		}, "ZeroAmount"},
		{"cancel: only the provider's signature", func() error {
			_, err := e.provider.Cancel(e.ctx, open, e.sign(cd, e.pk), e.sign(cd, e.pk))
			return err
		}, "WrongSigner"},
		{"cancel: only the requester's signature", func() error {
			_, err := e.provider.Cancel(e.ctx, open, e.sign(cd, e.rk), e.sign(cd, e.rk))
			return err
		}, "WrongSigner"},
		{"cancel: missing signature", func() error {
			_, err := e.provider.Cancel(e.ctx, open, nil, e.sign(cd, e.rk))
			return err
		}, "BadSignature"},
		{"cancel: settled deal", func() error {
			id := settled.ID(e.domain())
			c := agreement.CancelDigest(e.domain(), id)
			_, err := e.provider.Cancel(e.ctx, settled, e.sign(c, e.pk), e.sign(c, e.rk))
			return err
		}, "DealNotOpen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot()
			err := tt.do()
			if !IsRevert(err, tt.want) {
				t.Fatalf("err = %v, want revert %s", err, tt.want)
			}
			if !errors.Is(err, ErrReverted) {
				t.Fatalf("err %v is not ErrReverted", err)
			}
			e.assertUnchanged(before)
		})
	}
	// The open deal is still intact after all that.
	if s, _ := e.requester.DealStatus(e.ctx, openID); s != StatusOpen {
		t.Fatalf("open deal status %s", s)
	}
}

// A refund racing a settle: whichever is mined first wins, the other reverts.
func TestRefundThenSettle(t *testing.T) {
	e := newEnv(t, nil)
	tm := e.open(tokens(10))
	e.must(e.dc.AdjustTime(3 * time.Hour))
	_, err := e.requester.Refund(e.ctx, tm)
	e.must(err)
	before := e.snapshot()
	v, sig := e.voucher(tm, tokens(1))
	if _, err := e.provider.Settle(e.ctx, tm, v, sig); !IsRevert(err, "DealNotOpen") {
		t.Fatalf("settle after refund: %v", err)
	}
	if _, err := e.requester.Refund(e.ctx, tm); !IsRevert(err, "DealNotOpen") {
		t.Fatalf("refund twice: %v", err)
	}
	e.assertUnchanged(before)
}

func TestClientErrors(t *testing.T) {
	e := newEnv(t, nil)
	poor, err := crypto.GenerateKey()
	e.must(err)
	c, err := e.dc.NewClient(poor)
	e.must(err)
	// Estimation passes (a zero transfer), sending fails: no ETH for gas.
	if _, err := c.Transfer(e.ctx, e.other.Address(), new(big.Int)); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("unfunded sender: %v", err)
	}
	if _, err := e.requester.Withdraw(e.ctx, big.NewInt(-1)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative withdraw: %v", err)
	}
	if _, err := e.requester.Deposit(e.ctx, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("nil deposit: %v", err)
	}
	if _, err := LoadContracts(e.ctx, e.dc.Client(), common.HexToAddress("0x1234")); !errors.Is(err, ErrNoContract) {
		t.Fatalf("load contracts at empty address: %v", err)
	}
	got, err := LoadContracts(e.ctx, e.dc.Client(), e.dc.Contracts().Escrow)
	e.must(err)
	if got.Token != e.dc.Contracts().Token || got.ChainID.Int64() != DevChainID {
		t.Fatalf("loaded %+v", got)
	}
	if _, err := StartDevChain(e.ctx, DevChainConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("zero config: %v", err)
	}
	if _, err := Listen("0.0.0.0:0"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("non-loopback listen: %v", err)
	}
}
