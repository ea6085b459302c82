package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
)

var errGuard = errors.New("test guard: refused to dial a non-loopback address")

// guarded returns a policy whose dials can only ever reach loopback, and a
// record of every address the policy let through to connect(2).
func guarded(t testing.TB, cfg PolicyConfig) (*Policy, func() []netip.AddrPort) {
	p := mustPolicy(t, cfg)
	var mu sync.Mutex
	var reached []netip.AddrPort
	p.guard = func(ap netip.AddrPort) error {
		mu.Lock()
		reached = append(reached, ap)
		mu.Unlock()
		if !ap.Addr().Unmap().IsLoopback() {
			return errGuard
		}
		return nil
	}
	return p, func() []netip.AddrPort {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(reached)
	}
}

type policyRow struct {
	name   string
	target string
	rule   error // the rule that refuses it (with the loopback switch off)
	// allowedForTests: allowed when UnsafeAllowLoopbackForTests is on.
	allowedForTests bool
}

// acceptanceRows are the exit-policy acceptance targets. p4, p4b and p6 are
// the ports of loopback listeners on 127.0.0.1, 127.0.0.2 and ::1 that
// record every connection they accept.
func acceptanceRows(p4, p4b, p6 uint16) []policyRow {
	hp := func(h string, p uint16) string { return net.JoinHostPort(h, strconv.Itoa(int(p))) }
	return []policyRow{
		// Loopback, in every spelling, against live listeners.
		{"loopback", hp("127.0.0.1", p4), ErrDestLoopback, true},
		{"loopback other 127.x", hp("127.0.0.2", p4b), ErrDestLoopback, true},
		{"hostname resolving to 127.0.0.1", hp("localhost", p4), ErrDestLoopback, true},
		{"IPv4-mapped loopback", hp("::ffff:127.0.0.1", p4), ErrDestLoopback, true},
		{"IPv6 loopback", hp("::1", p6), ErrDestLoopback, false},
		{"decimal spelling", hp("2130706433", p4), ErrDestNumericHost, false},
		{"hex spelling", hp("0x7f000001", p4), ErrDestNumericHost, false},
		{"short spelling", hp("127.1", p4), ErrDestNumericHost, false},
		{"octal spelling", hp("0177.0.0.1", p4), ErrDestNumericHost, false},
		{"dotted hex spelling", hp("0x7f.0.0.1", p4), ErrDestNumericHost, false},
		{"unspecified v4 (reaches local listeners on Linux)", hp("0.0.0.0", p4), ErrDestUnspecified, false},
		{"unspecified v6", hp("::", p6), ErrDestUnspecified, false},
		{"IPv4-compatible loopback", hp("::127.0.0.1", p4), ErrDestReserved, false},
		{"NAT64 embedding loopback", hp("64:ff9b::127.0.0.1", p4), ErrDestLoopback, false},
		{"6to4 embedding loopback", hp("2002:7f00:1::1", p4), ErrDestLoopback, false},
		{"port 25 on loopback", hp("127.0.0.1", 25), ErrDestPort, false},
		{"port 445 on loopback", hp("127.0.0.1", 445), ErrDestPort, false},

		// Special ranges (never reachable here: the guard would refuse them
		// even if the policy did not).
		{"RFC 1918 10/8", "10.0.0.1:80", ErrDestPrivate, false},
		{"RFC 1918 172.16/12", "172.16.5.4:80", ErrDestPrivate, false},
		{"RFC 1918 192.168/16", "192.168.1.1:80", ErrDestPrivate, false},
		{"cloud metadata", "169.254.169.254:80", ErrDestLinkLocal, false},
		{"CGNAT", "100.64.0.1:80", ErrDestCGNAT, false},
		{"multicast v4", "224.0.0.1:80", ErrDestMulticast, false},
		{"broadcast", "255.255.255.255:80", ErrDestBroadcast, false},
		{"benchmarking", "198.18.0.1:80", ErrDestBenchmarking, false},
		{"TEST-NET-1", "192.0.2.1:80", ErrDestDocumentation, false},
		{"TEST-NET-2", "198.51.100.7:80", ErrDestDocumentation, false},
		{"TEST-NET-3", "203.0.113.9:80", ErrDestDocumentation, false},
		{"this network 0/8", "0.1.2.3:80", ErrDestReserved, false},
		{"reserved 240/4", "240.0.0.1:80", ErrDestReserved, false},
		{"IETF protocol assignments", "192.0.0.8:80", ErrDestReserved, false},
		{"ULA fc00::/7", "[fc00::1]:80", ErrDestPrivate, false},
		{"ULA fd00::/8", "[fd12:3456::1]:80", ErrDestPrivate, false},
		{"link-local v6", "[fe80::1]:80", ErrDestLinkLocal, false},
		{"zoned link-local v6", "[fe80::1%lo]:80", ErrDestLinkLocal, false},
		{"multicast v6", "[ff02::1]:80", ErrDestMulticast, false},
		{"documentation v6", "[2001:db8::1]:80", ErrDestDocumentation, false},
		{"IPv4-mapped private", "[::ffff:10.0.0.1]:80", ErrDestPrivate, false},
		{"IPv4-mapped metadata", "[::ffff:169.254.169.254]:80", ErrDestLinkLocal, false},
		{"NAT64 embedding private", "[64:ff9b::10.1.2.3]:80", ErrDestPrivate, false},
		{"6to4 embedding private", "[2002:c0a8:101::1]:80", ErrDestPrivate, false},
		{"Teredo", "[2001::1]:80", ErrDestReserved, false},
		{"provider's own address", "1.2.3.4:8080", ErrDestOwnAddress, false},
		{"SMTP on a public address", "93.184.215.14:25", ErrDestPort, false},
		{"BitTorrent port", "93.184.215.14:6881", ErrDestPort, false},
		{"NetBIOS port", "93.184.215.14:137", ErrDestPort, false},
	}
}

// TestExitPolicyAcceptance is the exit-policy table: every target is
// refused with the rule that names it and never dialled; with the
// test-only loopback switch on, plain 127.x targets go through and nothing
// else changes. "Never dialled" is proven twice: the guard behind the
// policy sees no refused address, and the loopback listeners accept
// nothing but the connections that were allowed (a marker connection made
// last must be the next one each listener accepts).
func TestExitPolicyAcceptance(t *testing.T) {
	l4 := listenRecording(t, "127.0.0.1:0", nil)
	l4b := listenRecording(t, "127.0.0.2:0", nil)
	l6 := listenRecording(t, "[::1]:0", nil)
	rows := acceptanceRows(l4.port(), l4b.port(), l6.port())
	if len(rows) < 25 {
		t.Fatalf("only %d targets", len(rows))
	}
	egress := netip.MustParseAddr("127.0.0.1")

	for _, unsafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("UnsafeAllowLoopbackForTests=%v", unsafe), func(t *testing.T) {
			p, reached := guarded(t, PolicyConfig{
				OwnAddrs:                    []netip.Addr{netip.MustParseAddr("1.2.3.4")},
				UnsafeAllowLoopbackForTests: unsafe,
			})
			before := map[*recordingListener]int{l4: len(l4.accepted()), l4b: len(l4b.accepted()), l6: len(l6.accepted())}
			var allowed []string // local addresses of connections that went through
			for _, row := range rows {
				// Through DialContext (pre-checks, then Control), and, where
				// no DNS query is involved, through the bare Dialer whose
				// Control hook is then the only gate.
				dials := map[string]func() (net.Conn, error){
					"DialContext": func() (net.Conn, error) {
						return p.DialContext(context.Background(), egress, "tcp", row.target)
					},
				}
				if isLiteralOrLocalhost(row.target) {
					dials["Dialer.Control"] = func() (net.Conn, error) {
						return p.Dialer(netip.Addr{}).DialContext(context.Background(), "tcp", row.target)
					}
				}
				for how, dial := range dials {
					n := len(reached())
					c, err := dial()
					if unsafe && row.allowedForTests {
						if err != nil {
							t.Errorf("%s %s (%s): want allowed, got %v", row.name, row.target, how, err)
							continue
						}
						allowed = append(allowed, c.LocalAddr().String())
						_ = c.Close()
						continue
					}
					if err == nil {
						_ = c.Close()
						t.Errorf("%s %s (%s): dialled, want refused by %v", row.name, row.target, how, row.rule)
						continue
					}
					if !errors.Is(err, ErrNotAllowed) || !errors.Is(err, row.rule) {
						t.Errorf("%s %s (%s): got %v, want %v", row.name, row.target, how, err, row.rule)
					}
					if got := reached(); len(got) != n {
						t.Errorf("%s %s (%s): policy let %v through to connect", row.name, row.target, how, got[n:])
					}
				}
			}
			for _, l := range []*recordingListener{l4, l4b, l6} {
				marker, err := net.Dial("tcp", l.addr())
				if err != nil {
					t.Fatal(err)
				}
				want := marker.LocalAddr().String()
				await(t, "marker accepted", func() bool { return slices.Contains(l.accepted(), want) })
				_ = marker.Close()
				got := l.accepted()[before[l]:]
				var exp []string
				for _, a := range allowed {
					if slices.Contains(got, a) {
						exp = append(exp, a)
					}
				}
				exp = append(exp, want)
				if !slices.Equal(got, exp) {
					t.Errorf("listener %s accepted %v, want only %v", l.addr(), got, exp)
				}
			}
			wantAllowed := 0
			if unsafe {
				for _, row := range rows {
					if row.allowedForTests {
						wantAllowed++ // DialContext
						if isLiteralOrLocalhost(row.target) {
							wantAllowed++ // and the bare Dialer
						}
					}
				}
			}
			if len(allowed) != wantAllowed {
				t.Errorf("%d connections allowed, want %d: %v", len(allowed), wantAllowed, allowed)
			}
			for _, ap := range reached() {
				if !ap.Addr().Unmap().IsLoopback() {
					t.Errorf("policy let non-loopback %s through to connect", ap)
				}
			}
		})
	}
}

func isLiteralOrLocalhost(target string) bool {
	host, _, _ := net.SplitHostPort(target)
	_, err := netip.ParseAddr(host)
	return err == nil || host == "localhost"
}

// TestPolicyGuardIsReached checks the test harness itself: an address the
// policy allows does reach the guard (so "guard not reached" above means
// something).
func TestPolicyGuardIsReached(t *testing.T) {
	p, reached := guarded(t, PolicyConfig{})
	_, err := p.DialContext(context.Background(), netip.Addr{}, "tcp", "93.184.215.14:80")
	if !errors.Is(err, errGuard) {
		t.Fatalf("got %v, want the guard's refusal", err)
	}
	if got := reached(); len(got) != 1 || got[0].String() != "93.184.215.14:80" {
		t.Fatalf("reached %v", got)
	}
}

func TestPolicyCheck(t *testing.T) {
	own := netip.MustParseAddr("5.6.7.8")
	egress := netip.MustParseAddr("9.9.9.1")
	tests := []struct {
		name string
		cfg  PolicyConfig
		ap   string
		want error // nil = allowed
	}{
		{"public v4", PolicyConfig{}, "93.184.215.14:443", nil},
		{"public v6", PolicyConfig{}, "[2606:4700::1111]:443", nil},
		{"mapped public", PolicyConfig{}, "[::ffff:93.184.215.14]:443", nil},
		{"NAT64 public", PolicyConfig{}, "[64:ff9b::93.184.215.14]:443", nil},
		{"6to4 public", PolicyConfig{}, "[2002:5db8:d70e::1]:443", nil},
		{"NAT64 local-use", PolicyConfig{}, "[64:ff9b:1::1]:443", ErrDestReserved},
		{"6to4 embedding 10/8", PolicyConfig{}, "[2002:a00:1::1]:443", ErrDestPrivate},
		{"egress itself", PolicyConfig{}, "9.9.9.1:443", ErrDestOwnAddress},
		{"own address", PolicyConfig{OwnAddrs: []netip.Addr{own}}, "5.6.7.8:443", ErrDestOwnAddress},
		{"own address mapped", PolicyConfig{OwnAddrs: []netip.Addr{own}}, "[::ffff:5.6.7.8]:443", ErrDestOwnAddress},
		{"allow list carves private", PolicyConfig{AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, "10.1.2.3:80", nil},
		{"allow list does not carve loopback", PolicyConfig{AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "127.0.0.1:80", ErrDestLoopback},
		{"allow list does not carve own", PolicyConfig{AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("9.9.9.0/24")}}, "9.9.9.1:80", ErrDestOwnAddress},
		{"deny list", PolicyConfig{DenyPrefixes: []netip.Prefix{netip.MustParsePrefix("93.184.0.0/16")}}, "93.184.215.14:443", ErrDestDenyList},
		{"deny list beats switch", PolicyConfig{UnsafeAllowLoopbackForTests: true, DenyPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}}, "127.0.0.9:80", ErrDestDenyList},
		{"switch allows 127/8", PolicyConfig{UnsafeAllowLoopbackForTests: true}, "127.9.9.9:80", nil},
		{"switch allows mapped 127/8", PolicyConfig{UnsafeAllowLoopbackForTests: true}, "[::ffff:127.0.0.1]:80", nil},
		{"switch leaves ::1", PolicyConfig{UnsafeAllowLoopbackForTests: true}, "[::1]:80", ErrDestLoopback},
		{"switch leaves NAT64 127", PolicyConfig{UnsafeAllowLoopbackForTests: true}, "[64:ff9b::127.0.0.1]:80", ErrDestLoopback},
		{"switch leaves 10/8", PolicyConfig{UnsafeAllowLoopbackForTests: true}, "10.0.0.1:80", ErrDestPrivate},
		{"switch leaves port 25", PolicyConfig{UnsafeAllowLoopbackForTests: true}, "127.0.0.1:25", ErrDestPort},
		{"port 0", PolicyConfig{}, "93.184.215.14:0", ErrDestPort},
		{"tor range edge 6346", PolicyConfig{}, "93.184.215.14:6346", ErrDestPort},
		{"tor range edge 6429", PolicyConfig{}, "93.184.215.14:6429", ErrDestPort},
		{"just outside 6430", PolicyConfig{}, "93.184.215.14:6430", nil},
		{"allow port 25", PolicyConfig{AllowPorts: []PortRange{{25, 25}}}, "93.184.215.14:25", nil},
		{"deny port beats allow", PolicyConfig{AllowPorts: []PortRange{{25, 25}}, DenyPorts: []PortRange{{1, 1024}}}, "93.184.215.14:25", ErrDestPort},
		{"deny port", PolicyConfig{DenyPorts: []PortRange{{8000, 8999}}}, "93.184.215.14:8080", ErrDestPort},
		{"site-local v6", PolicyConfig{}, "[fec0::1]:80", ErrDestLinkLocal},
		{"discard-only v6", PolicyConfig{}, "[100::1]:80", ErrDestReserved},
		{"documentation 3fff::/20", PolicyConfig{}, "[3fff::1]:80", ErrDestDocumentation},
		{"benchmarking v6", PolicyConfig{}, "[2001:2::1]:80", ErrDestBenchmarking},
		{"IPv4-translated", PolicyConfig{}, "[::ffff:0:a00:1]:80", ErrDestReserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, tt.cfg)
			err := p.Check(netip.MustParseAddrPort(tt.ap), egress)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPolicyErrorNamesRule(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{})
	_, err := p.DialContext(context.Background(), netip.Addr{}, "tcp", "169.254.169.254:80")
	if got, want := err.Error(), "tunnel: destination not allowed: link-local: 169.254.169.254:80"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	if StatusOf(err) != StatusNotAllowed {
		t.Fatalf("status %v", StatusOf(err))
	}
	for _, network := range []string{"ip4", "unix", "udpx"} {
		if _, err := p.DialContext(context.Background(), netip.Addr{}, network, "93.184.215.14:53"); !errors.Is(err, ErrDestNetwork) {
			t.Fatalf("%s: %v", network, err)
		}
	}
	// UDP goes through the same rules, on the resolved address.
	_, err = p.DialContext(context.Background(), netip.Addr{}, "udp", "169.254.169.254:53")
	if got, want := fmt.Sprint(err), "tunnel: destination not allowed: link-local: 169.254.169.254:53"; got != want {
		t.Fatalf("udp: error %q, want %q", got, want)
	}
	if _, err := p.DialContext(context.Background(), netip.Addr{}, "udp", "93.184.215.14:137"); !errors.Is(err, ErrDestPort) {
		t.Fatalf("udp to a rejected port: %v", err)
	}
	for _, bad := range []string{"93.184.215.14", "93.184.215.14:080", "93.184.215.14:+80", "93.184.215.14:65536", ":80", "exa mple.com:80"} {
		if _, err := p.DialContext(context.Background(), netip.Addr{}, "tcp", bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%q: got %v, want bad request", bad, err)
		}
	}
}

func TestNewPolicyValidates(t *testing.T) {
	for _, cfg := range []PolicyConfig{
		{AllowPorts: []PortRange{{0, 10}}},
		{DenyPorts: []PortRange{{20, 10}}},
		{DenyPrefixes: []netip.Prefix{{}}},
		{OwnAddrs: []netip.Addr{{}}},
	} {
		if _, err := NewPolicy(cfg); err == nil {
			t.Errorf("NewPolicy(%+v) accepted", cfg)
		}
	}
}

func TestEndsInNumber(t *testing.T) {
	for h, want := range map[string]bool{
		"2130706433": true, "0x7f000001": true, "127.1": true, "0177.0.0.1": true, "1.2.3.4.": true,
		"0x": true, "example.com": false, "1e100.net": false, "0xg": false, "a.0x1f": true, "": false,
	} {
		if got := endsInNumber(h); got != want {
			t.Errorf("endsInNumber(%q) = %v", h, got)
		}
	}
}
