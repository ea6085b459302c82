package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/ipsx/ipsx/sdk"
)

// dealsBody is the answer of GET /v1/deals: an object, as ordersBody is, so
// a paging cursor can be added later.
type dealsBody struct {
	Deals []sdk.Deal `json:"deals"`
}

func (s *Server) handleDeals(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r.URL.Query()); err != nil {
		s.fail(w, r, err)
		return
	}
	deals, err := s.b.Deals(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if deals == nil {
		deals = []sdk.Deal{} // "deals": [], never null
	}
	writeJSON(w, http.StatusOK, dealsBody{Deals: deals})
}

func (s *Server) handleDeal(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "a deal")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.b.Deal(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// handleCloseDeal ends a deal from this side. It takes no parameters yet;
// an empty JSON object is accepted too, so clients that always send a body
// work, and fields can be added later without a new route.
func (s *Server) handleCloseDeal(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "a deal")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := readEmptyObject(w, r); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.b.CloseDeal(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// readEmptyObject accepts no body or the JSON object {} (with any
// whitespace), under the same Content-Type and size rules as readJSON.
func readEmptyObject(w http.ResponseWriter, r *http.Request) error {
	return readOptionalObject(w, r, &struct{}{}, "an empty JSON object")
}

// readOptionalObject decodes a body that may be absent into v, strictly.
func readOptionalObject(w http.ResponseWriter, r *http.Request, v any, want string) error {
	b, err := readOptionalBody(w, r)
	if err != nil {
		return err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	if b[0] != '{' {
		return badInput("body: want no body or %s", want)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return badInput("body: trailing data after the JSON object")
	}
	return nil
}
