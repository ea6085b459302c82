package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

// inputError is a problem with the HTTP request itself (body, query, path),
// found before the backend is asked.
type inputError struct {
	status int
	code   string
	msg    string
}

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{http.StatusBadRequest, "malformed", fmt.Sprintf(format, args...)}
}

// errorMap maps orderbook's sentinels to a status and a code. The first
// match wins, so a sentinel that wraps another comes before it.
var errorMap = []struct {
	err    error
	status int
	code   string
}{
	{orderbook.ErrMalformed, http.StatusBadRequest, "malformed"},
	{orderbook.ErrOutOfRange, http.StatusBadRequest, "out_of_range"},
	{orderbook.ErrUnknownCountry, http.StatusBadRequest, "unknown_country"},
	{orderbook.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{orderbook.ErrWrongSigner, http.StatusUnprocessableEntity, "wrong_signer"}, // wraps ErrBadSignature
	{orderbook.ErrBadSignature, http.StatusUnprocessableEntity, "bad_signature"},
	{orderbook.ErrWrongDomain, http.StatusUnprocessableEntity, "wrong_domain"},
	{orderbook.ErrBadDigest, http.StatusUnprocessableEntity, "bad_digest"},
	{orderbook.ErrExpired, http.StatusUnprocessableEntity, "expired"},
	{orderbook.ErrFuture, http.StatusUnprocessableEntity, "future"},
	{orderbook.ErrStale, http.StatusUnprocessableEntity, "stale"},
	{orderbook.ErrDuplicate, http.StatusConflict, "duplicate"},
	{orderbook.ErrCancelled, http.StatusConflict, "cancelled"},
	{orderbook.ErrSuperseded, http.StatusConflict, "superseded"},
	{orderbook.ErrNotFound, http.StatusNotFound, "not_found"},
	{orderbook.ErrInsufficient, http.StatusPaymentRequired, "insufficient_balance"},
	{ErrNoChain, http.StatusServiceUnavailable, "no_chain"},
	{agreement.ErrUnknownDeal, http.StatusNotFound, "not_found"},
	{agreement.ErrDealOver, http.StatusConflict, "deal_over"},
	{agreement.ErrUnexpected, http.StatusConflict, "not_now"},
	{chain.ErrInvalidArgument, http.StatusBadRequest, "out_of_range"},
	{chain.ErrReverted, http.StatusUnprocessableEntity, "reverted"},
	{chain.ErrInsufficientFunds, http.StatusPaymentRequired, "insufficient_funds"},
	{chain.ErrNonce, http.StatusConflict, "nonce"},
	{chain.ErrReceiptTimeout, http.StatusGatewayTimeout, "receipt_timeout"},
	{chain.ErrNoContract, http.StatusBadGateway, "no_contract"},
	{ErrBadPeer, http.StatusBadRequest, "bad_peer"},
	{ErrNoLogLevel, http.StatusNotImplemented, "not_supported"},
	{ErrUnreachable, http.StatusBadGateway, "unreachable"},
	{ErrVPNParams, http.StatusBadRequest, "malformed"},
	{ErrVPNBusy, http.StatusConflict, "vpn_busy"},
	{ErrVPNFailed, http.StatusBadGateway, "vpn_failed"},
	{errNoVPN, http.StatusNotImplemented, "not_implemented"},
}

// StatusOf returns the HTTP status and code the API answers err with.
func StatusOf(err error) (status int, code string) {
	var ie *inputError
	if errors.As(err, &ie) {
		return ie.status, ie.code
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return m.status, m.code
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// fail answers err. 4xx carry the error's text, which names the problem;
// 5xx carry a generic text and the details go to the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := StatusOf(err)
	msg := err.Error()
	switch {
	case status == http.StatusInternalServerError:
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error (details in the node's log)"
	case status == http.StatusServiceUnavailable:
		s.log.Debug("API request cut short", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "the node did not answer in time or is shutting down"
	}
	writeError(w, status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, sdk.Error{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only an order that does not encode (a bug upstream) gets here.
		status = http.StatusInternalServerError
		b, _ = json.Marshal(sdk.Error{Error: "internal error: encode response", Code: "internal"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
