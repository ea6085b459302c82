package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
)

// Errors an [Authorizer] or a [Router] returns so that the front-ends and the
// stream protocol can answer with the right code. Wrap them with detail; they
// are matched with errors.Is.
var (
	// ErrUnauthorized: the stream's peer is not the deal's requester, or the
	// deal is unknown.
	ErrUnauthorized = errors.New("tunnel: not the deal's requester")
	// ErrDealInactive: the deal is not (or no longer) active.
	ErrDealInactive = errors.New("tunnel: deal not active")
	// ErrNotPaid: the requester has not paid ahead for more traffic.
	ErrNotPaid = errors.New("tunnel: deal not paid")
	// ErrNoRoute: on the requester's side, no active deal covers the route
	// (and none could be bought in time).
	ErrNoRoute = errors.New("tunnel: no deal covers the route")
	// ErrBadRequest: a malformed header, address or proxy request.
	ErrBadRequest = errors.New("tunnel: bad request")
)

// Status is the provider's answer to a tunnel header, and the outcome the
// front-ends report to the proxy client. The numeric values are on the wire
// (one byte in the status reply); never renumber them.
type Status uint8

const (
	StatusOK              Status = 0
	StatusGeneralFailure  Status = 1  // anything else
	StatusNotAllowed      Status = 2  // the exit policy refused the destination
	StatusUnauthorized    Status = 3  // not the deal's requester, or unknown deal
	StatusDealInactive    Status = 4  // deal not active (not started, ended, cancelled)
	StatusNotPaid         Status = 5  // paid-ahead amount used up
	StatusRefused         Status = 6  // the target refused the connection
	StatusNetUnreachable  Status = 7  // no route to the target's network
	StatusHostUnreachable Status = 8  // no route to the target host
	StatusDNSFailure      Status = 9  // the target's name did not resolve
	StatusTimeout         Status = 10 // resolving or connecting timed out
	StatusBadRequest      Status = 11 // malformed header or target
	StatusNoRoute         Status = 12 // requester side: no deal covers the route
	// StatusRouteRefused is the requester's own: the credential may not
	// use the route, or no offer can serve it. Never sent by a provider.
	StatusRouteRefused Status = 13
	statusMax          Status = StatusRouteRefused
)

var statusNames = [...]string{
	StatusOK:              "ok",
	StatusGeneralFailure:  "general failure",
	StatusNotAllowed:      "not allowed by exit policy",
	StatusUnauthorized:    "unauthorized",
	StatusDealInactive:    "deal not active",
	StatusNotPaid:         "deal not paid",
	StatusRefused:         "connection refused",
	StatusNetUnreachable:  "network unreachable",
	StatusHostUnreachable: "host unreachable",
	StatusDNSFailure:      "name not resolved",
	StatusTimeout:         "timed out",
	StatusBadRequest:      "bad request",
	StatusNoRoute:         "no deal covers the route",
	StatusRouteRefused:    "route refused",
}

func (s Status) String() string {
	if s <= statusMax {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	socksSucceeded          byte = 0x00
	socksGeneralFailure     byte = 0x01
	socksNotAllowed         byte = 0x02
	socksNetUnreachable     byte = 0x03
	socksHostUnreachable    byte = 0x04
	socksConnRefused        byte = 0x05
	socksTTLExpired         byte = 0x06
	socksCmdNotSupported    byte = 0x07
	socksAddrTypeNotSupport byte = 0x08
)

// SOCKSReply returns the RFC 1928 REP code for s.
func (s Status) SOCKSReply() byte {
	switch s {
	case StatusOK:
		return socksSucceeded
	case StatusNotAllowed, StatusUnauthorized, StatusDealInactive, StatusNotPaid, StatusRouteRefused:
		return socksNotAllowed // "connection not allowed by ruleset"
	case StatusRefused:
		return socksConnRefused
	case StatusNetUnreachable, StatusNoRoute:
		return socksNetUnreachable
	case StatusHostUnreachable, StatusDNSFailure:
		// socks5h clients (curl) report 0x04 as "host unreachable", which is
		// what a name that does not resolve looks like from their side.
		return socksHostUnreachable
	case StatusTimeout:
		return socksTTLExpired // what Dante and most clients read as a timeout
	default:
		return socksGeneralFailure
	}
}

// HTTPStatus returns the HTTP status code the HTTP proxy answers with.
func (s Status) HTTPStatus() int {
	switch s {
	case StatusOK:
		return http.StatusOK
	case StatusNotAllowed, StatusUnauthorized, StatusRouteRefused:
		return http.StatusForbidden
	case StatusNotPaid:
		return http.StatusPaymentRequired
	case StatusDealInactive, StatusNoRoute:
		return http.StatusServiceUnavailable
	case StatusTimeout:
		return http.StatusGatewayTimeout
	case StatusBadRequest:
		return http.StatusBadRequest
	default:
		return http.StatusBadGateway
	}
}

// StatusError is a non-OK status, as received from the provider (returned by
// [OpenStream]) or produced locally. It matches the sentinel of its kind with
// errors.Is, so a Router can pass it through unchanged.
type StatusError struct {
	Status Status
	Msg    string // the provider's detail, printable ASCII; may be empty
}

func (e *StatusError) Error() string {
	if e.Msg == "" {
		return "tunnel: provider answered " + e.Status.String()
	}
	return "tunnel: provider answered " + e.Status.String() + ": " + e.Msg
}

// Is lets errors.Is(err, ErrNotAllowed) and friends see through a status
// that came over the wire.
func (e *StatusError) Is(target error) bool {
	switch e.Status {
	case StatusNotAllowed:
		return target == ErrNotAllowed
	case StatusUnauthorized:
		return target == ErrUnauthorized
	case StatusDealInactive:
		return target == ErrDealInactive
	case StatusNotPaid:
		return target == ErrNotPaid
	case StatusNoRoute:
		return target == ErrNoRoute
	case StatusRouteRefused:
		return target == ErrRouteRefused
	case StatusBadRequest:
		return target == ErrBadRequest
	}
	return false
}

// StatusOf classifies err into the status a front-end or the exit reports.
// nil is StatusOK.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrNotAllowed):
		return StatusNotAllowed
	case errors.Is(err, ErrUnauthorized):
		return StatusUnauthorized
	case errors.Is(err, ErrDealInactive):
		return StatusDealInactive
	case errors.Is(err, ErrNotPaid):
		return StatusNotPaid
	case errors.Is(err, ErrNoRoute):
		return StatusNoRoute
	case errors.Is(err, ErrRouteRefused):
		return StatusRouteRefused
	case errors.Is(err, ErrBadRequest):
		return StatusBadRequest
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return StatusTimeout
		}
		return StatusDNSFailure
	case errors.Is(err, syscall.ECONNREFUSED):
		return StatusRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return StatusNetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return StatusHostUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT):
		return StatusTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return StatusTimeout
	}
	return StatusGeneralFailure
}
