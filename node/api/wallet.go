package api

import (
	"context"
	"math/big"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"
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

// positiveAmount reads a wallet amount: base units or tokens ("2.5tok",
// sdk.ParseAmount), positive and below 2^128 (the escrow's bound).
func positiveAmount(s string) (*big.Int, error) {
	if strings.HasPrefix(s, "-") {
		return nil, &inputError{http.StatusBadRequest, "out_of_range", "amount must be positive and below 2^128"}
	}
	amount, err := sdk.ParseAmount(s)
	if err != nil {
		return nil, badInput("%v", err)
	}
	if amount.Sign() <= 0 || amount.BitLen() > 128 {
		return nil, &inputError{http.StatusBadRequest, "out_of_range", "amount must be positive and below 2^128"}
	}
	return amount, nil
}

// handleSend serves POST /v1/wallet/send: tokens or ETH to an address.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	var p sdk.SendParams
	if err := readJSON(w, r, &p); err != nil {
		s.fail(w, r, err)
		return
	}
	if !common.IsHexAddress(p.To) {
		s.fail(w, r, badInput("to %q is not an Ethereum address", p.To))
		return
	}
	var eth bool
	switch p.Asset {
	case "", "token":
	case "eth":
		eth = true
	default:
		s.fail(w, r, badInput("asset %q: want token or eth", p.Asset))
		return
	}
	amount, err := positiveAmount(p.Amount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.b.Send(r.Context(), common.HexToAddress(p.To), amount, eth)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleRequestDetail serves GET /v1/requests/{id}: the request, its best
// candidates and why the others do not match.
func (s *Server) handleRequestDetail(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "a request")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.b.RequestDetail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if d.Candidates == nil {
		d.Candidates = []sdk.Candidate{}
	}
	writeJSON(w, http.StatusOK, d)
}

// handleWalletTx serves deposit and withdraw: a positive amount of token
// base units (or tokens, "2.5tok") in, the receipt and the wallet after it
// out.
func (s *Server) handleWalletTx(do func(context.Context, *big.Int) (sdk.TxResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p sdk.AmountParams
		if err := readJSON(w, r, &p); err != nil {
			s.fail(w, r, err)
			return
		}
		amount, err := positiveAmount(p.Amount)
		if err != nil {
			s.fail(w, r, err)
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
