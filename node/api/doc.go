// Package api is the node's local REST API: an HTTP handler over a Backend
// (node.Node in production), served on loopback.
//
// Every /v1 route needs "Authorization: Bearer <token>" (the token in
// <datadir>/api.token, compared in constant time); a missing or wrong token
// gets 401. GET /metrics is not under /v1 and is unauthenticated by
// default, because the API listens on loopback only and Prometheus scrapers
// are usually configured without credentials; WithMetricsAuth puts it
// behind the token too.
//
// Routes:
//
//	GET    /v1/status          node status (sdk.Status)
//	POST   /v1/offers          create, sign and publish an offer (body sdk.OfferParams) → 201 + order
//	GET    /v1/offers          the node's own offers               → {"orders": [...]}
//	POST   /v1/requests        create a request (body sdk.RequestParams) → 201 + order
//	GET    /v1/requests        the node's own requests             → {"orders": [...]}
//	GET    /v1/orders          the book: ?country=CC&kind=offer|request&maker=0x… (all optional)
//	GET    /v1/orders/{id}     one order
//	DELETE /v1/orders/{id}     cancel one of the node's own orders → 200 + signed cancel
//	POST   /v1/orders/import   an order signed elsewhere, in the wire form → 201 + order
//	GET    /v1/deals           the node's deals, newest first, no history → {"deals": [...]}
//	GET    /v1/deals/{id}      one deal with its history (sdk.Deal)
//	POST   /v1/deals/{id}/close end a deal from this side (no body or {}) → the deal
//	GET    /v1/events          server-sent events with ids (order.added, order.removed, deal.updated,
//	                           stream.reset, error); Last-Event-ID resumes
//	GET    /v1/log/level       the log level; PUT {"level": "debug"} changes it
//	GET    /v1/vpn             the requester's VPN: state, flows, the deal behind it (sdk.VPNStatus)
//	POST   /v1/vpn/up          bring it up (body sdk.VPNParams, or none) → the status once up
//	POST   /v1/vpn/down        take it down, disarming a kill switch left armed → the status
//	GET    /v1/openapi.json    the OpenAPI 3.0 description of all of this
//	GET    /metrics            Prometheus metrics (with WithMetrics)
//	GET    /healthz            liveness and readiness, no token (200, or 503 with the failing check)
//	GET    /ui/                the web dashboard (ui.go), after POST /ui/login with the token
//
// Orders are in orderbook's JSON wire form (docs/orders.md), always with
// their id. Every error is a JSON sdk.Error {"error": "...", "code": "..."}
// whose message names the field or parameter at fault. Status codes:
//
//	400 malformed, out_of_range, unknown_country: bad JSON, unknown field,
//	    trailing data, bad id or query parameter, fields out of range
//	401 unauthorized
//	402 insufficient_balance: the maker's free escrow balance does not
//	    cover the order (the request was understood; money is missing)
//	404 not_found: unknown order, deal or route
//	405 method_not_allowed (with an Allow header)
//	409 duplicate, cancelled, superseded: conflicts with the book's state;
//	    deal_over, not_now: a deal that is over or cannot be closed now;
//	    vpn_busy: the VPN is up already
//	413 too_large: a body over 64 KiB, or an order over the size limit
//	431 too_large: a request head (request line and fields) over 16 KiB
//	415 unsupported_media_type: a Content-Type other than application/json
//	422 bad_signature, wrong_signer, wrong_domain, bad_digest, expired,
//	    future, stale: well-formed, but the signature or the times make it
//	    unacceptable (so a client can tell "fix your JSON" from "re-sign")
//	500 internal (details only in the log), 501 not_implemented (a
//	    backend with no VPN), 502 vpn_failed (the VPN could not come up:
//	    no TUN, no privilege), 503 unavailable (the node is shutting down
//	    or the backend timed out)
//
// Errors net/http answers before any handler (431, a malformed request's
// 400, 501, 505) are JSON too (canned.go).
//
// Bad input never panics; a panic in a handler is a bug, is logged with its
// stack and answered with 500. The package starts no goroutines beyond the
// http.Server of Serve and one per open event stream (owned by net/http).
package api
