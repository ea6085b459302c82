package chain

import (
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// deployRaw deploys a contract whose runtime code is code, whatever it is.
func deployRaw(t *testing.T, e *env, code []byte) common.Address {
	t.Helper()
	n := len(code)
	// PUSH2 n PUSH1 14 PUSH1 0 CODECOPY PUSH2 n PUSH1 0 RETURN, then code.
	init := []byte{0x61, byte(n >> 8), byte(n), 0x60, 14, 0x60, 0, 0x39, 0x61, byte(n >> 8), byte(n), 0x60, 0, 0xf3}
	r, err := e.other.s.send(e.ctx, nil, append(init, code...))
	e.must(err)
	return r.ContractAddress
}

// TestVerifyDeployment: the dev chain's deployment and one with other
// constructor arguments pass; an escrow address that holds other code —
// the token, a copy of the escrow's code at another address, the code with
// a byte added — and a token that is not the escrow's are refused with
// ErrWrongCode, an address without code with ErrNoContract.
func TestVerifyDeployment(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dc.Contracts()
	d, err := VerifyDeployment(e.ctx, e.dc.Client(), c)
	if err != nil {
		t.Fatal(err)
	}
	if d.CommissionBps != 100 || d.GraceSeconds != 3600 || d.Treasury != e.treasury {
		t.Fatalf("read %+v", d)
	}
	other, err := Deploy(e.ctx, e.dc.Client(), e.ok, DeployConfig{Treasury: e.treasury, CommissionBps: 250, GraceSeconds: 60}, WithPollInterval(e.dc.poll))
	e.must(err)
	if d, err := VerifyDeployment(e.ctx, e.dc.Client(), other); err != nil || d.CommissionBps != 250 {
		t.Fatalf("a deployment with other arguments: %+v %v", d, err)
	}

	code, err := e.dc.Client().CodeAt(e.ctx, c.Escrow, nil)
	e.must(err)
	clone := deployRaw(t, e, code)
	longer := deployRaw(t, e, append(append([]byte(nil), code...), 0))
	for name, bad := range map[string]Contracts{
		"token as escrow":        {ChainID: c.ChainID, Token: c.Token, Escrow: c.Token},
		"clone of the escrow":    {ChainID: c.ChainID, Token: c.Token, Escrow: clone},
		"escrow code plus 1":     {ChainID: c.ChainID, Token: c.Token, Escrow: longer},
		"another deploy's token": {ChainID: c.ChainID, Token: other.Token, Escrow: c.Escrow},
		"another chain id":       {ChainID: bigInt(5), Token: c.Token, Escrow: c.Escrow},
	} {
		if _, err := VerifyDeployment(e.ctx, e.dc.Client(), bad); !errors.Is(err, ErrWrongCode) {
			t.Errorf("%s: %v, want ErrWrongCode", name, err)
		}
	}
	if _, err := VerifyDeployment(e.ctx, e.dc.Client(), Contracts{ChainID: c.ChainID, Token: c.Token, Escrow: common.HexToAddress("0x1234")}); !errors.Is(err, ErrNoContract) {
		t.Errorf("no code: %v, want ErrNoContract", err)
	}
}
