package chain

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/ipsx/ipsx/agreement"
)

func tokens(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), Token) }

type env struct {
	t         testing.TB
	ctx       context.Context
	dc        *DevChain
	pk, rk    *ecdsa.PrivateKey // provider, requester
	ok        *ecdsa.PrivateKey // a third party
	provider  *Client
	requester *Client
	other     *Client
	treasury  common.Address
	nonce     uint64
}

func newEnv(t testing.TB, rules *params.ChainConfig) *env {
	t.Helper()
	cfg := DefaultDevChainConfig()
	cfg.Accounts = 3
	cfg.ChainConfig = rules
	ctx := context.Background()
	dc, err := StartDevChain(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	e := &env{t: t, ctx: ctx, dc: dc, pk: DevKey(1), rk: DevKey(2), ok: DevKey(3),
		treasury: crypto.PubkeyToAddress(dc.Deployer().PublicKey)}
	for _, p := range []struct {
		c   **Client
		key *ecdsa.PrivateKey
	}{{&e.provider, e.pk}, {&e.requester, e.rk}, {&e.other, e.ok}} {
		if *p.c, err = dc.NewClient(p.key); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) domain() agreement.Domain { return e.dc.Contracts().Domain() }

func (e *env) now() uint64 {
	e.t.Helper()
	h, err := e.dc.Client().HeaderByNumber(e.ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Time
}

// terms returns fresh terms between the env's provider and requester,
// ending an hour from the chain's now.
func (e *env) terms(maxAmount *big.Int) agreement.Terms {
	e.nonce++
	now := e.now()
	return agreement.Terms{
		OfferID:        common.BytesToHash([]byte("offer")),
		RequestID:      common.BytesToHash([]byte("request")),
		Provider:       e.provider.Address(),
		Requester:      e.requester.Address(),
		IPs:            2,
		PricePerIPHour: big.NewInt(1e15),
		PricePerGB:     big.NewInt(1e16),
		MaxAmount:      maxAmount,
		Start:          now,
		Deadline:       now + 3600,
		Nonce:          e.nonce,
	}
}

func (e *env) sign(digest common.Hash, key *ecdsa.PrivateKey) []byte {
	e.t.Helper()
	sig, err := agreement.Sign(digest, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return sig
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) deposit(c *Client, amount *big.Int) {
	e.t.Helper()
	_, err := c.Deposit(e.ctx, amount)
	e.must(err)
}

// open deposits maxAmount for the requester and opens a deal for it.
func (e *env) open(maxAmount *big.Int) agreement.Terms {
	e.t.Helper()
	e.deposit(e.requester, maxAmount)
	tm := e.terms(maxAmount)
	id := tm.ID(e.domain())
	_, err := e.requester.Open(e.ctx, tm, e.sign(id, e.pk), e.sign(id, e.rk))
	e.must(err)
	return tm
}

func (e *env) voucher(tm agreement.Terms, amount *big.Int) (agreement.Voucher, []byte) {
	v := agreement.Voucher{DealID: tm.ID(e.domain()), Amount: amount, Bytes: 123456, ConnLogHash: crypto.Keccak256Hash([]byte("log"))}
	return v, e.sign(v.Digest(e.domain()), e.rk)
}

type snapshot map[common.Address]Balances

func (e *env) snapshot() snapshot {
	e.t.Helper()
	s := snapshot{}
	for _, a := range []common.Address{e.provider.Address(), e.requester.Address(), e.other.Address(), e.treasury, e.dc.Contracts().Escrow} {
		b, err := e.provider.Balances(e.ctx, a)
		e.must(err)
		s[a] = b
	}
	return s
}

func (e *env) assertUnchanged(before snapshot) {
	e.t.Helper()
	after := e.snapshot()
	for a, b := range before {
		x := after[a]
		if b.Token.Cmp(x.Token) != 0 || b.Escrow.Cmp(x.Escrow) != 0 || b.Reserved.Cmp(x.Reserved) != 0 {
			e.t.Errorf("balances of %s changed: %+v -> %+v", a, b, x)
		}
	}
}

func cancelDigest(e *env, id common.Hash) common.Hash { return agreement.CancelDigest(e.domain(), id) }

type big0 = big.Int

func bigInt(x int64) *big.Int { return big.NewInt(x) }
