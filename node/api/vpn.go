package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/ipsx/ipsx/sdk"
)

// VPNBackend is a Backend that runs the requester's VPN (node.Node does).
// The routes answer 501 for a Backend that is not one. VPNUp returns once
// the VPN is up or has failed to come up; errors wrap ErrVPNParams (400),
// ErrVPNBusy (409) or ErrVPNFailed (502).
type VPNBackend interface {
	VPNStatus(ctx context.Context) sdk.VPNStatus
	VPNUp(ctx context.Context, p sdk.VPNParams) (sdk.VPNStatus, error)
	VPNDown(ctx context.Context) (sdk.VPNStatus, error)
}

// Errors of the VPN routes.
var (
	ErrVPNParams = errors.New("bad vpn parameters")
	ErrVPNBusy   = errors.New("the vpn is up already (take it down first)")
	ErrVPNFailed = errors.New("the vpn could not come up")
	errNoVPN     = errors.New("this node runs no vpn")
)

func (s *Server) vpn() (VPNBackend, error) {
	v, ok := s.b.(VPNBackend)
	if !ok {
		return nil, errNoVPN
	}
	return v, nil
}

func (s *Server) handleVPN(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r.URL.Query()); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.vpn()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v.VPNStatus(r.Context()))
}

// handleVPNUp takes sdk.VPNParams, or no body for the defaults.
func (s *Server) handleVPNUp(w http.ResponseWriter, r *http.Request) {
	var p sdk.VPNParams
	if err := readOptionalObject(w, r, &p, `a JSON object like {"routes": ["country-DE"], "defaultRoute": true}`); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.vpn()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := v.VPNUp(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleVPNDown(w http.ResponseWriter, r *http.Request) {
	if err := readEmptyObject(w, r); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.vpn()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := v.VPNDown(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
