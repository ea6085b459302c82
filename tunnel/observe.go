package tunnel

import "errors"

// Result is the outcome of one proxy request, as an [Observer] is told it:
// a short word fit for a metric label.
type Result string

// Results.
const (
	ResultOK                Result = "ok"
	ResultAuthRequired      Result = "auth_required" // no credentials sent (a browser's first try; it is challenged)
	ResultAuthFailed        Result = "auth_failed"   // wrong password, or a username that is not a route
	ResultRateLimited       Result = "rate_limited"  // the source is over its failed attempts
	ResultRouteRefused      Result = "route_refused" // the credential may not use the route, or nothing can serve it
	ResultNoRoute           Result = "no_route"      // no deal covers the route
	ResultPolicyDenied      Result = "policy_denied" // the provider's exit policy refused the target
	ResultNotPaid           Result = "not_paid"
	ResultDealInactive      Result = "deal_inactive"
	ResultTargetUnreachable Result = "target_unreachable" // refused, unreachable, or not resolved
	ResultTimeout           Result = "timeout"
	ResultBadRequest        Result = "bad_request"
	ResultError             Result = "error"
)

// ResultOf classifies the error a request ended with (nil: ok), from a
// Router, the provider, or the front door.
func ResultOf(err error) Result {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, errNoCredentials):
		return ResultAuthRequired
	case errors.Is(err, errAuthBlocked):
		return ResultRateLimited
	case errors.Is(err, ErrProxyAuth):
		return ResultAuthFailed
	}
	switch StatusOf(err) {
	case StatusOK:
		return ResultOK
	case StatusNotAllowed:
		return ResultPolicyDenied
	case StatusRouteRefused:
		return ResultRouteRefused
	case StatusNoRoute:
		return ResultNoRoute
	case StatusNotPaid:
		return ResultNotPaid
	case StatusDealInactive, StatusUnauthorized:
		return ResultDealInactive
	case StatusRefused, StatusNetUnreachable, StatusHostUnreachable, StatusDNSFailure:
		return ResultTargetUnreachable
	case StatusTimeout:
		return ResultTimeout
	case StatusBadRequest:
		return ResultBadRequest
	}
	return ResultError
}

// Observer is told the result of every proxy request: proxy is "socks"
// or "http". It is called from the connection's goroutine, concurrently,
// and must not block. A SOCKS connection is one request; an HTTP
// connection is one per CONNECT or forwarded request (and one for a
// request refused at the door).
type Observer func(proxy string, r Result)

// WithObserver has the proxy tell o the result of each request (node
// counts them in its metrics).
func WithObserver(o Observer) ProxyOption { return func(c *proxyConfig) { c.observer = o } }

// observe tells the observer, if any.
func (c *proxyConfig) observe(r Result) {
	if c.observer != nil {
		c.observer(c.name, r)
	}
}
