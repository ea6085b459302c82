package chain

import (
	"bytes"
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm/runtime"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain/bindings"
)

// Deployment is what VerifyDeployment read of a deployment: the escrow's
// constants fixed at deployment.
type Deployment struct {
	Contracts
	Treasury common.Address
	Params
}

// VerifyDeployment checks that c is a deployment of this build's
// contracts: that c.Escrow holds exactly the code this build's Escrow
// deploys for the token, treasury, commission and grace period it reports
// (on this chain, at this address), that its token is c.Token, and that
// c.Token holds this build's IPSXToken. A node refuses to run against
// anything else: an escrow with other code could take deposits and never
// give them back, whatever it answers to calls.
//
// The expected code is made by running the committed creation code with
// those constructor arguments in an in-memory EVM; the one immutable that
// depends on the contract's own address (its EIP-712 domain separator) is
// put in for c.Escrow before the comparison. Errors wrap ErrNoContract or
// ErrWrongCode.
func VerifyDeployment(ctx context.Context, b Backend, c Contracts) (Deployment, error) {
	d := Deployment{Contracts: c}
	if c.ChainID == nil {
		return d, fmt.Errorf("%w: no chain id", ErrInvalidConfig)
	}
	code, err := b.CodeAt(ctx, c.Escrow, nil)
	if err != nil {
		return d, fmt.Errorf("escrow code: %w", err)
	}
	if len(code) == 0 {
		return d, fmt.Errorf("%w: escrow %s", ErrNoContract, c.Escrow.Hex())
	}
	e := bindings.NewEscrow()
	read := func(what string, data []byte) ([]byte, error) {
		out, err := b.CallContract(ctx, ethereum.CallMsg{To: &c.Escrow, Data: data}, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: escrow %s does not answer %s(): %v", ErrWrongCode, c.Escrow.Hex(), what, classify(err))
		}
		return out, nil
	}
	var token common.Address
	if out, err := read("token", e.PackToken()); err != nil {
		return d, err
	} else if token, err = e.UnpackToken(out); err != nil {
		return d, fmt.Errorf("%w: escrow token(): %v", ErrWrongCode, err)
	}
	if out, err := read("treasury", e.PackTreasury()); err != nil {
		return d, err
	} else if d.Treasury, err = e.UnpackTreasury(out); err != nil {
		return d, fmt.Errorf("%w: escrow treasury(): %v", ErrWrongCode, err)
	}
	if out, err := read("commissionBps", e.PackCommissionBps()); err != nil {
		return d, err
	} else if d.CommissionBps, err = e.UnpackCommissionBps(out); err != nil {
		return d, fmt.Errorf("%w: escrow commissionBps(): %v", ErrWrongCode, err)
	}
	if out, err := read("graceSeconds", e.PackGraceSeconds()); err != nil {
		return d, err
	} else if d.GraceSeconds, err = e.UnpackGraceSeconds(out); err != nil {
		return d, fmt.Errorf("%w: escrow graceSeconds(): %v", ErrWrongCode, err)
	}

	ctor := e.PackConstructor(token, d.Treasury, d.CommissionBps, d.GraceSeconds) // fixed-size arguments: cannot fail
	want, at, err := deployedCode(c.ChainID, append(common.FromHex(bindings.EscrowMetaData.Bin), ctor...))
	if err != nil {
		return d, fmt.Errorf("expected escrow code: %w", err)
	}
	here := agreement.Domain{ChainID: c.ChainID, Escrow: at}.Separator()
	there := agreement.Domain{ChainID: c.ChainID, Escrow: c.Escrow}.Separator()
	want = bytes.ReplaceAll(want, here[:], there[:])
	if !bytes.Equal(code, want) {
		return d, fmt.Errorf("%w: escrow %s on chain %s is not this build's Escrow (%d bytes of code, want %d)", ErrWrongCode, c.Escrow.Hex(), c.ChainID, len(code), len(want))
	}

	if c.Token != token {
		return d, fmt.Errorf("%w: escrow %s holds token %s, not %s", ErrWrongCode, c.Escrow.Hex(), token.Hex(), c.Token.Hex())
	}
	tcode, err := b.CodeAt(ctx, token, nil)
	if err != nil {
		return d, fmt.Errorf("token code: %w", err)
	}
	twant, _, err := deployedCode(c.ChainID, common.FromHex(bindings.IPSXTokenMetaData.Bin))
	if err != nil {
		return d, fmt.Errorf("expected token code: %w", err)
	}
	if !bytes.Equal(tcode, twant) {
		return d, fmt.Errorf("%w: token %s is not this build's IPSXToken (%d bytes of code, want %d)", ErrWrongCode, token.Hex(), len(tcode), len(twant))
	}
	return d, nil
}

// deployedCode runs creation code in an empty in-memory EVM and returns
// the code it deploys and where.
func deployedCode(chainID *big.Int, initcode []byte) ([]byte, common.Address, error) {
	rules := MainnetRules()
	rules.ChainID = new(big.Int).Set(chainID)
	code, at, _, err := runtime.Create(initcode, &runtime.Config{
		ChainConfig: rules,
		Origin:      common.HexToAddress("0x1959"),
		GasLimit:    30_000_000,
	})
	if err != nil {
		return nil, common.Address{}, err
	}
	return code, at, nil
}
