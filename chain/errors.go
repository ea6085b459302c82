package chain

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/ipsx/ipsx/chain/bindings"
)

var (
	// ErrReverted: the contract rejected the call; errors.As to *RevertError
	// for the reason.
	ErrReverted = errors.New("chain: transaction reverted")
	// ErrInsufficientFunds: the sender cannot pay gas * price + value.
	ErrInsufficientFunds = errors.New("chain: insufficient funds for gas")
	// ErrNonce: the node rejected the transaction's nonce (too low, too high
	// or an underpriced replacement of a pending one).
	ErrNonce = errors.New("chain: nonce rejected")
	// ErrReceiptTimeout: no receipt arrived within the receipt timeout. The
	// transaction may still be mined later.
	ErrReceiptTimeout = errors.New("chain: timed out waiting for receipt")
	// ErrNoContract: no code at the configured contract address.
	ErrNoContract = errors.New("chain: no contract code at address")
	// ErrWrongCode: the code at a contract address is not what this
	// build's contracts deploy (see VerifyDeployment).
	ErrWrongCode = errors.New("chain: contract code is not this build's")
	// ErrInvalidArgument: an argument cannot be encoded for the contract
	// (for example a negative amount).
	ErrInvalidArgument = errors.New("chain: invalid argument")
	// ErrInvalidConfig: a configuration value is out of range.
	ErrInvalidConfig = errors.New("chain: invalid config")
)

// RevertError is a decoded revert. Name is the custom error's name (for
// example "InsufficientBalance"), "Error" for require/revert strings and
// "Panic" for Solidity panics; it is empty when the data matched nothing.
type RevertError struct {
	Name string
	Args []any
	Data []byte // raw revert data
}

func (e *RevertError) Error() string {
	if e.Name == "" {
		if len(e.Data) == 0 {
			return ErrReverted.Error()
		}
		return fmt.Sprintf("%s: data %s", ErrReverted, hexutil.Encode(e.Data))
	}
	args := make([]string, len(e.Args))
	for i, a := range e.Args {
		args[i] = fmt.Sprint(a)
	}
	return fmt.Sprintf("%s: %s(%s)", ErrReverted, e.Name, strings.Join(args, ", "))
}

// Is makes errors.Is(err, ErrReverted) true.
func (e *RevertError) Is(target error) bool { return target == ErrReverted }

// IsRevert reports whether err is a revert with the given custom error name.
func IsRevert(err error, name string) bool {
	var re *RevertError
	return errors.As(err, &re) && re.Name == name
}

var errorABIs = func() []*abi.ABI {
	var out []*abi.ABI
	for _, md := range []*bind.MetaData{&bindings.EscrowMetaData, &bindings.IPSXTokenMetaData} {
		a, err := md.ParseABI()
		if err != nil {
			panic(err) // generated ABI; cannot fail
		}
		out = append(out, a)
	}
	return out
}()

// decodeRevert names revert data using the escrow's and token's ABIs.
func decodeRevert(data []byte) *RevertError {
	re := &RevertError{Data: data}
	if len(data) < 4 {
		return re
	}
	if reason, err := abi.UnpackRevert(data); err == nil {
		re.Args = []any{reason}
		if bytes.Equal(data[:4], []byte{0x4e, 0x48, 0x7b, 0x71}) {
			re.Name = "Panic"
		} else {
			re.Name = "Error"
		}
		return re
	}
	for _, a := range errorABIs {
		for name, e := range a.Errors {
			if !bytes.Equal(e.ID[:4], data[:4]) {
				continue
			}
			re.Name = name
			if args, err := e.Inputs.Unpack(data[4:]); err == nil {
				re.Args = args
			}
			return re
		}
	}
	return re
}

// classify wraps err from a node in the package's sentinels where it
// recognises one. Revert data travels as an rpc.DataError.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var de rpc.DataError
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			if data, derr := hexutil.Decode(s); derr == nil {
				return decodeRevert(data)
			}
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "execution reverted"):
		return fmt.Errorf("%w: %s", ErrReverted, msg)
	case strings.Contains(msg, "insufficient funds"):
		return fmt.Errorf("%w: %s", ErrInsufficientFunds, msg)
	case nonceTaken(msg), strings.Contains(msg, "nonce too high"):
		return fmt.Errorf("%w: %s", ErrNonce, msg)
	}
	return err
}

// nonceTaken reports whether a node's error message refuses a transaction
// because its nonce is already used (as opposed to too high, or any other
// reason).
func nonceTaken(msg string) bool {
	return strings.Contains(msg, "nonce too low") || strings.Contains(msg, "replacement transaction underpriced") ||
		strings.Contains(msg, "already known")
}
