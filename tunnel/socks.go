package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// SOCKS5 constants (RFC 1928, RFC 1929).
const (
	socksVersion         = 0x05
	socksAuthNone        = 0x00
	socksAuthPassword    = 0x02
	socksAuthNoneOK      = 0xff
	socksAuthVersion     = 0x01
	socksCmdConnect      = 0x01
	socksCmdUDPAssociate = 0x03
	socksAtypIPv4        = 0x01
	socksAtypDomain      = 0x03
	socksAtypIPv6        = 0x04
)

// socksError is a request the server answers with a specific reply code.
type socksError struct {
	reply byte
	err   error
}

func (e *socksError) Error() string { return e.err.Error() }
func (e *socksError) Unwrap() error { return e.err }

// ErrSOCKS is wrapped by every SOCKS5 protocol error.
var ErrSOCKS = fmt.Errorf("%w: socks5", ErrBadRequest)

// readSOCKSGreeting reads VER NMETHODS METHODS and returns the methods.
func readSOCKSGreeting(r io.Reader) ([]byte, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("%w: greeting: %v", ErrSOCKS, err)
	}
	if b[0] != socksVersion {
		return nil, fmt.Errorf("%w: version %d", ErrSOCKS, b[0])
	}
	if b[1] == 0 {
		return nil, fmt.Errorf("%w: no methods", ErrSOCKS)
	}
	methods := make([]byte, b[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, fmt.Errorf("%w: methods: %v", ErrSOCKS, err)
	}
	return methods, nil
}

// readSOCKSUserPass reads an RFC 1929 request. Empty username or password
// (length 0) are accepted: curl sends them for "user:" and ":".
func readSOCKSUserPass(r io.Reader) (user, pass string, err error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", fmt.Errorf("%w: auth: %v", ErrSOCKS, err)
	}
	if b[0] != socksAuthVersion {
		return "", "", fmt.Errorf("%w: auth version %d", ErrSOCKS, b[0])
	}
	u := make([]byte, b[1])
	if _, err := io.ReadFull(r, u); err != nil {
		return "", "", fmt.Errorf("%w: auth username: %v", ErrSOCKS, err)
	}
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return "", "", fmt.Errorf("%w: auth: %v", ErrSOCKS, err)
	}
	p := make([]byte, b[0])
	if _, err := io.ReadFull(r, p); err != nil {
		return "", "", fmt.Errorf("%w: auth password: %v", ErrSOCKS, err)
	}
	return string(u), string(p), nil
}

// readSOCKSRequest reads VER CMD RSV ATYP DST.ADDR DST.PORT and returns the
// command and the address as host:port (a domain is left unresolved;
// addresses are canonical). For CONNECT the address is the target; for
// UDP ASSOCIATE it is where the client will send its datagrams from, and
// may be 0.0.0.0:0 (unknown). Errors that deserve a specific reply are
// *socksError.
func readSOCKSRequest(r io.Reader) (byte, string, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, "", fmt.Errorf("%w: request: %v", ErrSOCKS, err)
	}
	if b[0] != socksVersion {
		return 0, "", fmt.Errorf("%w: request version %d", ErrSOCKS, b[0])
	}
	if b[2] != 0 {
		return 0, "", &socksError{socksGeneralFailure, fmt.Errorf("%w: reserved byte %d", ErrSOCKS, b[2])}
	}
	cmd := b[1]
	host, port, err := readSOCKSAddr(r, b[3])
	if err != nil {
		return 0, "", err
	}
	switch cmd {
	case socksCmdConnect:
		if port == 0 {
			return 0, "", &socksError{socksHostUnreachable, fmt.Errorf("%w: port 0", ErrSOCKS)}
		}
	case socksCmdUDPAssociate:
	default:
		return 0, "", &socksError{socksCmdNotSupported, fmt.Errorf("%w: command %d not supported (only CONNECT and UDP ASSOCIATE)", ErrSOCKS, cmd)}
	}
	return cmd, net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

// readSOCKSAddr reads DST.ADDR of address type atyp and DST.PORT. Errors
// that deserve a specific reply are *socksError.
func readSOCKSAddr(r io.Reader, atyp byte) (string, uint16, error) {
	var host string
	switch atyp {
	case socksAtypIPv4:
		var a [4]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return "", 0, fmt.Errorf("%w: address: %v", ErrSOCKS, err)
		}
		host = netip.AddrFrom4(a).String()
	case socksAtypIPv6:
		var a [16]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return "", 0, fmt.Errorf("%w: address: %v", ErrSOCKS, err)
		}
		host = netip.AddrFrom16(a).String()
	case socksAtypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", 0, fmt.Errorf("%w: domain: %v", ErrSOCKS, err)
		}
		d := make([]byte, l[0])
		if _, err := io.ReadFull(r, d); err != nil {
			return "", 0, fmt.Errorf("%w: domain: %v", ErrSOCKS, err)
		}
		h, err := canonicalHost(string(d))
		if err != nil {
			// The request is refused and the connection closed, so what
			// follows does not matter.
			return "", 0, &socksError{socksHostUnreachable, err}
		}
		host = h
	default:
		return "", 0, &socksError{socksAddrTypeNotSupport, fmt.Errorf("%w: address type %d", ErrSOCKS, atyp)}
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return "", 0, fmt.Errorf("%w: port: %v", ErrSOCKS, err)
	}
	return host, binary.BigEndian.Uint16(p[:]), nil
}

// canonicalHost accepts a DNS name or an IP literal (returned in canonical
// form, without zone) as a client wrote it.
func canonicalHost(h string) (string, error) {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("%w: zoned address %q", ErrBadRequest, h)
		}
		return a.String(), nil
	}
	if !validHostname(h) {
		return "", fmt.Errorf("%w: invalid host %q", ErrBadRequest, h)
	}
	return h, nil
}

// SOCKSServer is the requester's SOCKS5 front-end: CONNECT with remote
// name resolution (clients should use socks5h://) and, when the Router is
// a [UDPRouter], UDP ASSOCIATE (see socks_udp.go); no-auth or RFC 1929
// username/password where the username selects the [Route].
type SOCKSServer struct {
	router Router
	cfg    proxyConfig
}

// NewSOCKSServer returns a server handing connections to r. It starts
// nothing.
func NewSOCKSServer(r Router, opts ...ProxyOption) *SOCKSServer {
	cfg := newProxyConfig(opts)
	cfg.name = "socks"
	return &SOCKSServer{router: r, cfg: cfg}
}

// Serve accepts connections on ln until ctx is done or ln fails, and
// returns after every connection it accepted is closed. It closes ln.
func (s *SOCKSServer) Serve(ctx context.Context, ln net.Listener) error {
	return serveListener(ctx, ln, s.handle)
}

func (s *SOCKSServer) handle(ctx context.Context, c net.Conn) {
	auth, cmd, target, err := s.handshake(ctx, c)
	if err != nil {
		if r := ResultOf(err); r == ResultOK || r == ResultError {
			s.cfg.observe(ResultBadRequest)
		} else {
			s.cfg.observe(r)
		}
		s.cfg.logger.Debug("socks5 handshake", "source", c.RemoteAddr().String(), "err", err)
		_ = c.Close()
		return
	}
	if cmd == socksCmdUDPAssociate {
		s.associate(ctx, c, auth, target)
		return
	}
	route := auth.route
	rctx, cancel := context.WithTimeout(WithCredential(ctx, auth.credential), s.cfg.connectTimeout)
	up, err := s.router.Route(rctx, route, target)
	cancel()
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.handshakeTimeout))
	s.cfg.observe(ResultOf(err))
	if err != nil {
		st := StatusOf(err)
		s.cfg.logger.Debug("socks5 connect", "route", route.String(), "status", st.String(), "err", err)
		_, _ = c.Write(socksReply(st.SOCKSReply()))
		_ = c.Close()
		return
	}
	if _, err := c.Write(socksReply(socksSucceeded)); err != nil {
		abort(c)
		abort(up)
		return
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		abort(c)
		abort(up)
		return
	}
	_, _, _ = splice(ctx, c, up, nil, s.cfg.tunnelIdle)
}

// handshake runs method negotiation, authentication and the request under
// the handshake deadline, and returns the command and its address.
func (s *SOCKSServer) handshake(ctx context.Context, c net.Conn) (authResult, byte, string, error) {
	if err := c.SetDeadline(time.Now().Add(s.cfg.handshakeTimeout)); err != nil {
		return authResult{}, 0, "", err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	methods, err := readSOCKSGreeting(c)
	if err != nil {
		return authResult{}, 0, "", err
	}
	method := byte(socksAuthNoneOK)
	for _, m := range methods {
		if m == socksAuthPassword {
			method = socksAuthPassword
			break
		}
		if m == socksAuthNone && s.cfg.auth == nil {
			method = socksAuthNone
		}
	}
	if _, err := c.Write([]byte{socksVersion, method}); err != nil {
		return authResult{}, 0, "", err
	}
	if method == socksAuthNoneOK {
		if s.cfg.auth != nil {
			return authResult{}, 0, "", fmt.Errorf("%w: client offered no username/password (methods %v); credentials are required", ErrSOCKS, methods)
		}
		return authResult{}, 0, "", fmt.Errorf("%w: no acceptable auth method in %v", ErrSOCKS, methods)
	}
	var auth authResult
	if method == socksAuthPassword {
		user, pass, err := readSOCKSUserPass(c)
		if err != nil {
			return authResult{}, 0, "", err
		}
		if auth, err = s.cfg.authenticate(ctx, s.router, sourceAddr(c), user, pass); err != nil {
			_, _ = c.Write([]byte{socksAuthVersion, 1})
			return authResult{}, 0, "", err
		}
		if _, err := c.Write([]byte{socksAuthVersion, 0}); err != nil {
			return authResult{}, 0, "", err
		}
	}
	cmd, target, err := readSOCKSRequest(c)
	if err == nil && cmd == socksCmdUDPAssociate {
		if _, ok := s.router.(UDPRouter); !ok {
			err = &socksError{socksCmdNotSupported, fmt.Errorf("%w: UDP ASSOCIATE: the router carries no UDP", ErrSOCKS)}
		}
	}
	if err != nil {
		var se *socksError
		if errors.As(err, &se) {
			_, _ = c.Write(socksReply(se.reply))
		}
		return authResult{}, 0, "", err
	}
	return auth, cmd, target, nil
}

// socksReply is a reply with BND.ADDR 0.0.0.0:0: the bound address is the
// provider's, which the requester does not know and clients do not use for
// CONNECT.
func socksReply(rep byte) []byte {
	return []byte{socksVersion, rep, 0, socksAtypIPv4, 0, 0, 0, 0, 0, 0}
}
