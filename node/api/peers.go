package api

import (
	"net/http"

	"github.com/ipsx/ipsx/sdk"
)

// peersBody is the answer of GET /v1/peers.
type peersBody struct {
	Peers []sdk.Peer `json:"peers"`
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r.URL.Query()); err != nil {
		s.fail(w, r, err)
		return
	}
	peers := s.b.Peers(r.Context())
	if peers == nil {
		peers = []sdk.Peer{}
	}
	writeJSON(w, http.StatusOK, peersBody{Peers: peers})
}

// handlePing takes no body, or {"direct": true}.
func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	var p sdk.PingParams
	if err := readOptionalObject(w, r, &p, `a JSON object like {"direct": true}`); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.b.Ping(r.Context(), r.PathValue("peer"), p.Direct)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
