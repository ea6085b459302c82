package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotAllowed matches every refusal by the exit policy. The rule that
// refused is a more specific error in the chain (ErrDestLoopback, ...).
var ErrNotAllowed = errors.New("tunnel: destination not allowed")

// ruleError is a refusal naming its rule; errors.Is(err, ErrNotAllowed)
// holds for every one.
type ruleError struct{ rule string }

func (e *ruleError) Error() string        { return "tunnel: destination not allowed: " + e.rule }
func (e *ruleError) Is(target error) bool { return target == ErrNotAllowed }

// The exit policy's rules. Errors returned by [Policy] wrap exactly one of
// them, with the address or port that broke it.
var (
	ErrDestLoopback      error = &ruleError{"loopback"}
	ErrDestUnspecified   error = &ruleError{"unspecified address"}
	ErrDestPrivate       error = &ruleError{"private network"}
	ErrDestLinkLocal     error = &ruleError{"link-local"}
	ErrDestCGNAT         error = &ruleError{"shared address space (CGNAT)"}
	ErrDestMulticast     error = &ruleError{"multicast"}
	ErrDestBroadcast     error = &ruleError{"broadcast"}
	ErrDestDocumentation error = &ruleError{"documentation range"}
	ErrDestBenchmarking  error = &ruleError{"benchmarking range"}
	ErrDestReserved      error = &ruleError{"reserved range"}
	ErrDestOwnAddress    error = &ruleError{"provider's own address"}
	ErrDestDenyList      error = &ruleError{"deny list"}
	ErrDestPort          error = &ruleError{"port"}
	ErrDestNumericHost   error = &ruleError{"non-canonical numeric host"}
	ErrDestNetwork       error = &ruleError{"network (only tcp and udp)"}
)

// embedding says where an IPv6 range carries an IPv4 address that has to
// pass the policy in its place.
type embedding uint8

const (
	embedNone  embedding = iota
	embedLow32           // ::ffff:a.b.c.d (mapped), 64:ff9b::a.b.c.d (NAT64)
	embed6to4            // 2002:AABB:CCDD::/48 carries AA.BB.CC.DD
)

type rangeRule struct {
	prefix netip.Prefix
	err    error
	embed  embedding
}

// specialRanges is the default deny list: IANA's special-purpose registries
// (IPv4 and IPv6) minus nothing an exit should reach. Order matters only
// where prefixes nest: the first match wins, so narrower ones come first.
var specialRanges = func() []rangeRule {
	r := func(s string, err error) rangeRule { return rangeRule{netip.MustParsePrefix(s), err, embedNone} }
	e := func(s string, how embedding) rangeRule { return rangeRule{netip.MustParsePrefix(s), nil, how} }
	return []rangeRule{
		// IPv4.
		r("0.0.0.0/32", ErrDestUnspecified),
		r("0.0.0.0/8", ErrDestReserved), // "this network"
		r("10.0.0.0/8", ErrDestPrivate),
		r("100.64.0.0/10", ErrDestCGNAT),
		r("127.0.0.0/8", ErrDestLoopback),
		r("169.254.0.0/16", ErrDestLinkLocal), // includes 169.254.169.254, the cloud metadata service
		r("172.16.0.0/12", ErrDestPrivate),
		r("192.0.0.0/24", ErrDestReserved), // IETF protocol assignments
		r("192.0.2.0/24", ErrDestDocumentation),
		r("192.88.99.0/24", ErrDestReserved), // deprecated 6to4 relay anycast
		r("192.168.0.0/16", ErrDestPrivate),
		r("198.18.0.0/15", ErrDestBenchmarking),
		r("198.51.100.0/24", ErrDestDocumentation),
		r("203.0.113.0/24", ErrDestDocumentation),
		r("224.0.0.0/4", ErrDestMulticast),
		r("255.255.255.255/32", ErrDestBroadcast),
		r("240.0.0.0/4", ErrDestReserved),

		// IPv6.
		r("::/128", ErrDestUnspecified),
		r("::1/128", ErrDestLoopback),
		e("::ffff:0:0/96", embedLow32),        // IPv4-mapped; checkAddr unmaps first, kept for completeness
		r("::ffff:0:0:0/96", ErrDestReserved), // IPv4-translated (RFC 2765)
		r("::/96", ErrDestReserved),           // IPv4-compatible, deprecated since RFC 4291
		e("64:ff9b::/96", embedLow32),         // NAT64 well-known prefix
		r("64:ff9b:1::/48", ErrDestReserved),  // local-use NAT64: the v4 side is private by definition
		r("100::/64", ErrDestReserved),        // discard-only
		r("2001:2::/48", ErrDestBenchmarking),
		r("2001:db8::/32", ErrDestDocumentation),
		r("2001::/23", ErrDestReserved), // IETF protocol assignments, Teredo (obfuscated v4) included
		e("2002::/16", embed6to4),
		r("3fff::/20", ErrDestDocumentation),
		r("5f00::/16", ErrDestReserved), // SRv6 SIDs
		r("fc00::/7", ErrDestPrivate),   // unique local
		r("fe80::/10", ErrDestLinkLocal),
		r("fec0::/10", ErrDestLinkLocal), // site-local, deprecated
		r("ff00::/8", ErrDestMulticast),
	}
}()

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

// torRejectPorts is port 25 plus the ports Tor's default exit policy rejects.
var torRejectPorts = []PortRange{
	{25, 25}, {119, 119}, {135, 139}, {445, 445}, {563, 563}, {1214, 1214},
	{4661, 4666}, {6346, 6429}, {6699, 6699}, {6881, 6999},
}

// PortRange is an inclusive range of ports; Lo ≥ 1. The port rules are
// the same for TCP and UDP flows.
type PortRange struct{ Lo, Hi uint16 }

func (r PortRange) contains(p uint16) bool { return r.Lo <= p && p <= r.Hi }

// PolicyConfig configures a [Policy]. The zero value is the default policy:
// deny every special-purpose range and the default reject ports.
type PolicyConfig struct {
	// OwnAddrs are the provider's own addresses (all its interfaces and
	// public IPs). The egress address passed to [Policy.Dialer] is added
	// automatically.
	OwnAddrs []netip.Addr

	// AllowPrefixes carve exceptions out of the special ranges (say, a
	// provider that deliberately exposes a lab network). They cannot allow
	// loopback, the unspecified address or the provider's own addresses.
	AllowPrefixes []netip.Prefix
	// DenyPrefixes are refused before anything else is considered.
	DenyPrefixes []netip.Prefix

	// AllowPorts carve exceptions out of the default reject ports.
	AllowPorts []PortRange
	// DenyPorts are refused whatever AllowPorts says.
	DenyPorts []PortRange

	// DialTimeout bounds name resolution plus connect; default 10 s.
	DialTimeout time.Duration

	// UnsafeAllowLoopbackForTests allows 127.0.0.0/8 (and nothing else
	// special) so a test suite or a local testnet can reach its own echo
	// servers. It must never be set on a provider serving the public: it
	// opens the provider's own services to every requester.
	UnsafeAllowLoopbackForTests bool
}

// Policy is a provider's exit policy. It is immutable and safe for
// concurrent use.
type Policy struct {
	cfg PolicyConfig

	// guard, if set, runs in the dial Control hook after the policy has
	// allowed an address. Tests use it as a second safety net so that no
	// packet can leave for a non-loopback address even if the policy had a
	// bug.
	guard func(netip.AddrPort) error
}

// NewPolicy validates cfg and returns the policy.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	for _, p := range append(append([]netip.Prefix(nil), cfg.AllowPrefixes...), cfg.DenyPrefixes...) {
		if !p.IsValid() {
			return nil, fmt.Errorf("tunnel: invalid prefix %v in policy", p)
		}
	}
	for _, r := range append(append([]PortRange(nil), cfg.AllowPorts...), cfg.DenyPorts...) {
		if r.Lo == 0 || r.Lo > r.Hi {
			return nil, fmt.Errorf("tunnel: invalid port range %d-%d in policy", r.Lo, r.Hi)
		}
	}
	for _, a := range cfg.OwnAddrs {
		if !a.IsValid() {
			return nil, errors.New("tunnel: invalid own address in policy")
		}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	cfg.OwnAddrs = append([]netip.Addr(nil), cfg.OwnAddrs...)
	cfg.AllowPrefixes = append([]netip.Prefix(nil), cfg.AllowPrefixes...)
	cfg.DenyPrefixes = append([]netip.Prefix(nil), cfg.DenyPrefixes...)
	cfg.AllowPorts = append([]PortRange(nil), cfg.AllowPorts...)
	cfg.DenyPorts = append([]PortRange(nil), cfg.DenyPorts...)
	return &Policy{cfg: cfg}, nil
}

// Check reports whether the policy lets a connection go to ap, with egress
// the address the connection leaves from (its own address is refused as a
// destination; pass the zero Addr if there is none).
func (p *Policy) Check(ap netip.AddrPort, egress netip.Addr) error {
	if err := p.checkPort(ap.Port()); err != nil {
		return err
	}
	if err := p.checkAddr(ap.Addr(), egress, 0); err != nil {
		return fmt.Errorf("%w: %s", err, ap)
	}
	return nil
}

func (p *Policy) checkPort(port uint16) error {
	if port == 0 {
		return fmt.Errorf("%w 0", ErrDestPort)
	}
	for _, r := range p.cfg.DenyPorts {
		if r.contains(port) {
			return fmt.Errorf("%w %d (deny list)", ErrDestPort, port)
		}
	}
	for _, r := range p.cfg.AllowPorts {
		if r.contains(port) {
			return nil
		}
	}
	for _, r := range torRejectPorts {
		if r.contains(port) {
			return fmt.Errorf("%w %d", ErrDestPort, port)
		}
	}
	return nil
}

// checkAddr returns the bare rule error (no address attached).
func (p *Policy) checkAddr(a, egress netip.Addr, depth int) error {
	if !a.IsValid() {
		return ErrDestUnspecified
	}
	if a.Zone() != "" {
		// A zone only makes sense for scoped (link-local) addresses.
		return ErrDestLinkLocal
	}
	a = a.Unmap()

	for _, d := range p.cfg.DenyPrefixes {
		if d.Contains(a) {
			return ErrDestDenyList
		}
	}
	// The switch applies to plain IPv4 (or IPv4-mapped) only: an IPv6
	// address that embeds 127.x (NAT64, 6to4) would leave the host.
	if p.cfg.UnsafeAllowLoopbackForTests && depth == 0 && loopback4.Contains(a) {
		return nil
	}
	// Rules no allow list can override.
	if a.IsUnspecified() {
		return ErrDestUnspecified
	}
	if a.IsLoopback() {
		return ErrDestLoopback
	}
	if a == egress.Unmap() {
		return ErrDestOwnAddress
	}
	for _, o := range p.cfg.OwnAddrs {
		if a == o.Unmap() {
			return ErrDestOwnAddress
		}
	}

	for _, al := range p.cfg.AllowPrefixes {
		if al.Contains(a) {
			return nil
		}
	}
	for _, r := range specialRanges {
		if !r.prefix.Contains(a) {
			continue
		}
		switch r.embed {
		case embedNone:
			return r.err
		case embedLow32, embed6to4:
			if depth > 0 {
				return ErrDestReserved // v4 inside v6 inside v6: nobody needs that
			}
			return p.checkAddr(embedded(a, r.embed), egress, depth+1)
		}
	}
	return nil
}

// embedded extracts the IPv4 address an IPv6 address carries.
func embedded(a netip.Addr, how embedding) netip.Addr {
	b := a.As16()
	switch how {
	case embed6to4:
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	default:
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
}

// CheckHost runs the checks that need no resolution on a host as a client
// wrote it: IP literals go through the address rules; spellings that some
// resolvers read as IPv4 and others as names (2130706433, 0x7f000001,
// 127.1, 0177.0.0.1) are refused outright, whatever they would resolve to,
// since the exit and the requester's software could disagree on them.
func (p *Policy) CheckHost(host string, egress netip.Addr) error {
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.checkAddr(a, egress, 0); err != nil {
			return fmt.Errorf("%w: %s", err, host)
		}
		return nil
	}
	if endsInNumber(host) {
		return fmt.Errorf("%w: %q", ErrDestNumericHost, host)
	}
	if !validHostname(host) {
		return fmt.Errorf("%w: invalid host name %q", ErrBadRequest, host)
	}
	return nil
}

// endsInNumber is the WHATWG URL standard's "ends in a number" test: a host
// whose last label is decimal digits or 0x-hex is parsed as IPv4 by
// browsers and by inet_aton, in forms netip rejects.
func endsInNumber(host string) bool {
	h := strings.TrimSuffix(host, ".")
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last == "" {
		return false
	}
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		for i := 2; i < len(last); i++ {
			if !isHexDigit(last[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validHostname accepts DNS names of letters, digits, '-' and '_' (which
// real hosts use, though RFC 952 does not), labels of 1 to 63 bytes, at most
// 253 bytes without the optional trailing dot.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// Dialer returns a dialer that binds the source address to egress (if
// valid) and runs the policy on every resolved address in its Control hook,
// right before connect(2). Use it through [Policy.DialContext], which also
// refuses bad ports and numeric spellings before resolving.
func (p *Policy) Dialer(egress netip.Addr) *net.Dialer {
	return p.dialer(egress, "tcp")
}

// dialer is Dialer for network "tcp…" or "udp…": the source address is a
// *net.TCPAddr or a *net.UDPAddr to match (net.Dialer wants the kind of
// the network). The Control hook runs for a UDP socket's connect(2) as
// for TCP's.
func (p *Policy) dialer(egress netip.Addr, network string) *net.Dialer {
	d := &net.Dialer{
		Timeout: p.cfg.DialTimeout,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: unparsable address %q", ErrBadRequest, address)
			}
			if err := p.Check(ap, egress); err != nil {
				return err
			}
			if p.guard != nil {
				return p.guard(ap)
			}
			return nil
		},
	}
	if egress.IsValid() {
		if strings.HasPrefix(network, "udp") {
			d.LocalAddr = &net.UDPAddr{IP: egress.AsSlice(), Zone: egress.Zone()}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: egress.AsSlice(), Zone: egress.Zone()}
		}
	}
	return d
}

// DialContext resolves address (host:port), checks the policy and connects
// from egress. TCP and UDP networks are served; a UDP "connection" is a
// connected socket that takes datagrams from address only.
func (p *Policy) DialContext(ctx context.Context, egress netip.Addr, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("%w: %q", ErrDestNetwork, network)
	}
	host, port, err := splitTarget(address)
	if err != nil {
		return nil, err
	}
	if err := p.checkPort(port); err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.checkAddr(a, egress, 0); err != nil {
			return nil, fmt.Errorf("%w: %s", err, address)
		}
	} else if err := p.CheckHost(host, egress); err != nil {
		return nil, err
	}
	return p.dialer(egress, network).DialContext(ctx, network, address)
}

// splitTarget splits host:port strictly: a decimal port 1..65535 without
// sign or leading zeros, a non-empty host.
func splitTarget(target string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(target)
	if err != nil {
		return "", 0, fmt.Errorf("%w: target %q: %v", ErrBadRequest, target, err)
	}
	if host == "" || len(host) > maxHostLen {
		return "", 0, fmt.Errorf("%w: target %q: bad host", ErrBadRequest, target)
	}
	if len(ps) == 0 || len(ps) > 5 || ps[0] == '0' {
		return "", 0, fmt.Errorf("%w: target %q: bad port", ErrBadRequest, target)
	}
	for i := 0; i < len(ps); i++ {
		if ps[i] < '0' || ps[i] > '9' {
			return "", 0, fmt.Errorf("%w: target %q: bad port", ErrBadRequest, target)
		}
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%w: target %q: bad port", ErrBadRequest, target)
	}
	return host, uint16(n), nil
}
