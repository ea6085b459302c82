package api

import (
	"context"
	"math/big"
	"net/http"

	"github.com/ipsx/ipsx/sdk"
)

func (s *Server) handleWallet(w http.ResponseWriter, r *http.Request) {
	wal, err := s.b.Wallet(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wal)
}

// handleWalletTx serves deposit and withdraw: a positive decimal amount of
// token base units in, the receipt and the wallet after it out.
func (s *Server) handleWalletTx(do func(context.Context, *big.Int) (sdk.TxResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p sdk.AmountParams
		if err := readJSON(w, r, &p); err != nil {
			s.fail(w, r, err)
			return
		}
		amount, ok := new(big.Int).SetString(p.Amount, 10)
		if !ok || p.Amount == "" || p.Amount[0] == '+' {
			s.fail(w, r, badInput("amount %q is not a decimal integer of token base units", p.Amount))
			return
		}
		if amount.Sign() <= 0 || amount.BitLen() > 128 {
			s.fail(w, r, &inputError{http.StatusBadRequest, "out_of_range", "amount must be positive and below 2^128"})
			return
		}
		res, err := do(r.Context(), amount)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}
