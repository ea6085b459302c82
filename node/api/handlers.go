package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

const (
	kindOffer   = orderbook.KindOffer
	kindRequest = orderbook.KindRequest
)

// ordersBody is the answer of every list route. An object rather than a
// bare array, so a paging cursor can be added without breaking clients.
type ordersBody struct {
	Orders []*orderbook.Order `json:"orders"`
	// Reputation is the node's own record of the offers' makers, by
	// address (GET /v1/orders only; makers it has no deals with are left
	// out).
	Reputation map[string]sdk.Reputation `json:"reputation,omitempty"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Status(r.Context()))
}

// orderParams is what POST /v1/offers and /v1/requests take.
type orderParams interface {
	sdk.OfferParams | sdk.RequestParams
	Order(now time.Time) (*orderbook.Order, error)
}

// handleCreate serves POST /v1/offers and /v1/requests: decode the params,
// check the order they describe here too (so bad params get the same
// answer whatever the backend, and never reach it), then have the backend
// sign and publish it.
func handleCreate[P orderParams](s *Server, create func(context.Context, P) (*orderbook.Order, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p P
		if err := readJSON(w, r, &p); err != nil {
			s.fail(w, r, err)
			return
		}
		// An offer may leave its location to the node's geolocation
		// database: its other fields are checked here with a stand-in
		// country, and the node answers if it cannot locate itself.
		dp := p
		if op, ok := any(&dp).(*sdk.OfferParams); ok && op.Country == "" {
			op.Country = "DE"
		}
		draft, err := dp.Order(s.cfg.now())
		if err == nil {
			err = s.checkDraft(draft)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		o, err := create(r.Context(), p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.created(w, o)
	}
}

// checkDraft runs orderbook's field checks on an unsigned order built from
// params, with the node's maker filled in.
func (s *Server) checkDraft(o *orderbook.Order) error {
	o.Maker = s.b.Maker()
	if o.Maker == (common.Address{}) {
		o.Maker = common.Address{19: 1} // only to get past the maker check
	}
	return orderbook.CheckFields(o)
}

func (s *Server) created(w http.ResponseWriter, o *orderbook.Order) {
	if o == nil {
		writeError(w, http.StatusInternalServerError, "internal", "internal error: the node returned no order")
		return
	}
	w.Header().Set("Location", "/v1/orders/"+o.ID().Hex())
	writeJSON(w, http.StatusCreated, o)
}

func (s *Server) handleOwn(kind orderbook.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkQuery(r.URL.Query()); err != nil {
			s.fail(w, r, err)
			return
		}
		q := orderbook.Query{Kind: kind, Maker: s.b.Maker()}
		s.list(w, r, q, false)
	}
}

func (s *Server) handleBook(w http.ResponseWriter, r *http.Request) {
	vals := r.URL.Query()
	if err := checkQuery(vals, "country", "kind", "maker"); err != nil {
		s.fail(w, r, err)
		return
	}
	var q orderbook.Query
	if cc, ok := vals["country"]; ok {
		if !orderbook.ValidCountry(cc[0]) {
			s.fail(w, r, &inputError{http.StatusBadRequest, "unknown_country",
				fmt.Sprintf("query parameter country: %q is not an upper-case ISO 3166-1 alpha-2 code such as DE", cc[0])})
			return
		}
		q.Country = cc[0]
	}
	if k, ok := vals["kind"]; ok {
		kind, err := orderbook.ParseKind(k[0])
		if err != nil {
			s.fail(w, r, badInput("query parameter kind: %q is not offer or request", k[0]))
			return
		}
		q.Kind = kind
	}
	if m, ok := vals["maker"]; ok {
		if !common.IsHexAddress(m[0]) || !strings.HasPrefix(m[0], "0x") {
			s.fail(w, r, badInput("query parameter maker: %q is not a 0x-prefixed 20-byte hex address", m[0]))
			return
		}
		q.Maker = common.HexToAddress(m[0])
	}
	s.list(w, r, q, true)
}

// list answers the orders matching q, with the reputation of the offers'
// makers if rep. The filters are applied here again, so the answer holds
// to q whatever the backend's indices do.
func (s *Server) list(w http.ResponseWriter, r *http.Request, q orderbook.Query, rep bool) {
	orders, err := s.b.Orders(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	kept := make([]*orderbook.Order, 0, len(orders))
	for _, o := range orders {
		if o == nil ||
			(q.Country != "" && o.Location.Country != q.Country) ||
			(q.Kind != 0 && o.Kind != q.Kind) ||
			(q.Maker != (common.Address{}) && o.Maker != q.Maker) {
			continue
		}
		kept = append(kept, o)
	}
	body := ordersBody{Orders: kept}
	if rep {
		var makers []common.Address
		for _, o := range kept {
			if o.Kind == orderbook.KindOffer {
				makers = append(makers, o.Maker)
			}
		}
		if len(makers) > 0 {
			body.Reputation = s.b.Reputation(r.Context(), makers)
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleOrder(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "an order")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	o, err := s.b.Order(r.Context(), id)
	if err == nil && o == nil {
		err = fmt.Errorf("%w: %s", orderbook.ErrNotFound, id.Hex())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "an order")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.b.Cancel(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The size as received counts, as it does for a gossiped message.
	if s.cfg.maxOrder > 0 && len(body) > s.cfg.maxOrder {
		s.fail(w, r, fmt.Errorf("%w: order is %d bytes, max %d", orderbook.ErrTooLarge, len(body), s.cfg.maxOrder))
		return
	}
	o, err := orderbook.DecodeOrder(body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.b.Import(r.Context(), o); err != nil {
		s.fail(w, r, err)
		return
	}
	s.created(w, o)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPI)
}

// pathID parses the {id} path segment, the id of an order or a deal
// (what): a 0x-prefixed 32-byte hex hash.
func pathID(r *http.Request, what string) (common.Hash, error) {
	s := r.PathValue("id")
	var h common.Hash
	if len(s) != 66 || !strings.HasPrefix(s, "0x") || h.UnmarshalText([]byte(s)) != nil {
		return common.Hash{}, badInput("path parameter id: %q is not %s id (0x and 64 hex digits)", truncate(s), what)
	}
	return h, nil
}

// checkQuery refuses parameters outside allowed and repeated ones, so a
// typo (?contry=DE) is an error rather than an unfiltered answer.
func checkQuery(vals url.Values, allowed ...string) error {
	for k, v := range vals {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			if len(allowed) == 0 {
				return badInput("unknown query parameter %q (this route takes none)", truncate(k))
			}
			return badInput("unknown query parameter %q (known: %s)", truncate(k), strings.Join(allowed, ", "))
		}
		if len(v) != 1 {
			return badInput("query parameter %q is given %d times", k, len(v))
		}
	}
	return nil
}

// readBody reads a JSON body of at most MaxBodySize bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := readOptionalBody(w, r)
	if err == nil && len(bytes.TrimSpace(b)) == 0 {
		return nil, badInput("body is empty: want a JSON object")
	}
	return b, err
}

// readOptionalBody is readBody for routes where the body may be absent.
func readOptionalBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &inputError{http.StatusUnsupportedMediaType, "unsupported_media_type",
				fmt.Sprintf("Content-Type %q: send application/json", truncate(ct))}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &inputError{http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("body is larger than %d bytes", MaxBodySize)}
	case err != nil:
		return nil, badInput("body: %v", err)
	}
	return b, nil
}

// readJSON decodes a body strictly into v: one JSON object, no unknown
// fields, nothing after it.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if bytes.TrimSpace(b)[0] != '{' {
		return badInput("body: want a JSON object")
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

func jsonError(err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return badInput("body is not valid JSON (at byte %d): %v", se.Offset, se)
	case errors.As(err, &te) && te.Field != "":
		return badInput("field %q: want %s, got JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &te):
		return badInput("body: want a JSON object, got JSON %s", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badInput("body: JSON ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badInput("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badInput("body: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "uint8", "uint16", "uint32", "uint64":
		return "a non-negative integer (" + goKind + ")"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct":
		return "an object"
	}
	return goKind
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
