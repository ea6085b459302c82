package vpn

import (
	"net/netip"
	"strings"
	"testing"
)

func planLines(cfg Config, v6 bool) []string {
	cfg.NoSystem = true
	cfg.setDefaults()
	var out []string
	for _, st := range plan(&cfg, "ipsx0", v6) {
		l := strings.Join(st.Args, " ")
		if st.Undo != nil {
			l += " | undo: " + strings.Join(st.Undo, " ")
		}
		if st.Kill {
			l += " | kill"
		}
		out = append(out, l)
	}
	return out
}

// TestPlanSplit: a split tunnel is addresses, the device up and a route
// per prefix in the main table; the routes go with the device, and each
// has its undo for a clean down.
func TestPlanSplit(t *testing.T) {
	got := planLines(Config{Routes: []netip.Prefix{netip.MustParsePrefix("11.81.0.0/24"), netip.MustParsePrefix("2001:db8::/32")}}, true)
	want := []string{
		"ip -4 addr add 100.127.0.1/32 dev ipsx0",
		"ip -6 addr add fd69:7073:7800::1/128 dev ipsx0 nodad",
		"ip link set ipsx0 up",
		"ip -4 route add 11.81.0.0/24 dev ipsx0 | undo: ip -4 route del 11.81.0.0/24 dev ipsx0",
		"ip -6 route add 2001:db8::/32 dev ipsx0 | undo: ip -6 route del 2001:db8::/32 dev ipsx0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without IPv6 in the kernel there is nothing to route for it.
	if got := planLines(Config{Routes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}, false); len(got) != 2 {
		t.Fatalf("plan without IPv6: %v", got)
	}
}

// TestPlanDefaultRoute: the marking goes in before the rules that need
// it; per family a default route in the VPN's table, the suppress rule
// that keeps the main table's more specific routes, and the fwmark rule;
// the kill switch last, marked as such; DNS needs no route of its own.
func TestPlanDefaultRoute(t *testing.T) {
	cfg := Config{DefaultRoute: true, KillSwitch: true, DNS: netip.MustParseAddrPort("11.81.0.53:53"),
		Bypass: Bypass{Ports: []uint16{4001}, Hosts: []netip.Addr{netip.MustParseAddr("11.80.0.10")}}}
	got := planLines(cfg, true)
	want := []string{
		"ip -4 addr add 100.127.0.1/32 dev ipsx0",
		"ip -6 addr add fd69:7073:7800::1/128 dev ipsx0 nodad",
		"ip link set ipsx0 up",
		"nft -f - | undo: nft delete table inet ipsx_vpn",
		"ip -4 route add default dev ipsx0 table 26992 | undo: ip -4 route flush table 26992",
		"ip -4 rule add table main suppress_prefixlength 0 priority 26991 | undo: ip -4 rule del priority 26991",
		"ip -4 rule add not fwmark 0x69707378 table 26992 priority 26992 | undo: ip -4 rule del priority 26992",
		"ip -6 route add default dev ipsx0 table 26992 | undo: ip -6 route flush table 26992",
		"ip -6 rule add table main suppress_prefixlength 0 priority 26991 | undo: ip -6 rule del priority 26991",
		"ip -6 rule add not fwmark 0x69707378 table 26992 priority 26992 | undo: ip -6 rule del priority 26992",
		"nft -f - | undo: nft delete table inet ipsx_killswitch | kill",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c := cfg
	c.setDefaults()
	mark := markRules(&c, "ipsx0", "0x69707378")
	for _, want := range []string{
		"type route hook output priority mangle",
		"meta l4proto { tcp, udp } th sport { 4001 } meta mark set 0x69707378 ct mark set meta mark",
		"ip daddr { 11.80.0.10 } meta mark set 0x69707378",
		`iifname != "ipsx0" ct state new ct mark set 0x69707378`,
	} {
		if !strings.Contains(mark, want) {
			t.Errorf("mark rules lack %q:\n%s", want, mark)
		}
	}
	kill := killRules(&c, "ipsx0", "0x69707378", true)
	for _, want := range []string{`oifname "ipsx0" accept`, "meta mark 0x69707378 accept", "th sport { 4001 } accept", "reject with icmpx type admin-prohibited"} {
		if !strings.Contains(kill, want) {
			t.Errorf("kill switch lacks %q:\n%s", want, kill)
		}
	}
}

// TestPlanSplitKillSwitch: a split tunnel's kill switch refuses only what
// is for its routes (and its resolver) outside the TUN.
func TestPlanSplitKillSwitch(t *testing.T) {
	c := Config{Routes: []netip.Prefix{netip.MustParsePrefix("11.81.0.0/24")}, KillSwitch: true, DNS: netip.MustParseAddrPort("11.81.0.53:53")}
	c.setDefaults()
	kill := killRules(&c, "ipsx0", "0x69707378", true)
	if !strings.Contains(kill, "ip daddr { 11.81.0.0/24, 100.127.0.53 } meta l4proto tcp reject with tcp reset") || strings.Contains(kill, "meta mark") {
		t.Fatalf("split kill switch:\n%s", kill)
	}
	got := planLines(c, true)
	if got[len(got)-2] != "ip -4 route add 100.127.0.53/32 dev ipsx0 | undo: ip -4 route del 100.127.0.53/32 dev ipsx0" {
		t.Fatalf("plan: %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"no state file": {},
		"long name":     {Name: "a-very-long-tun-name", StateFile: "x"},
		"bad name":      {Name: "tun 0", StateFile: "x"},
		"small MTU":     {MTU: 500, StateFile: "x"},
		"host bits":     {Routes: []netip.Prefix{netip.MustParsePrefix("11.81.0.1/24")}, StateFile: "x"},
		"v6 as v4":      {Addr4: netip.MustParsePrefix("fd00::1/128"), StateFile: "x"},
		"dns port 0":    {DNS: netip.AddrPortFrom(netip.MustParseAddr("1.1.1.1"), 0), StateFile: "x"},
		"main table":    {Table: 254, StateFile: "x"},
	} {
		if _, err := New(c, &testDialer{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{StateFile: "x"}, nil); err == nil {
		t.Error("no dialer: accepted")
	}
	if _, err := New(Config{StateFile: "x"}, &testDialer{}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
