// Package netns lets tests build a private network out of Linux network
// namespaces (switches, point-to-point links, NAT routers) and run processes
// inside it.
//
// It owns only the namespaces it creates. What it must not do: give the root
// namespace an address, a route, a sysctl or a firewall rule, or connect
// anything to a physical interface. Every link is a veth between two of its
// own namespaces, so no packet can leave the machine.
//
// It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), ip (iproute2) and nft
// (nftables). Tests call [Available] first and skip when it says no.
//
// A test binary killed before its cleanups run (a -timeout panic) leaves its
// namespaces behind. They are named ix<4 hex digits>-<name>; remove them with
// `ip netns del`.
package netns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// maxName bounds the caller's names so that a namespace name
// (prefix + "-" + name) and a switch port name (name + "-" + iface) fit the
// kernel's 15-byte interface name limit.
const maxName = 8

// Paths of the tools, set once by Available.
var ipPath, nftPath string

var available = sync.OnceValue(probe)

// Available returns nil when this machine can run the harness, or an error
// saying why not. It checks once per process.
func Available() error { return available() }

func probe() (err error) {
	if err := checkPrivilege(); err != nil {
		return err
	}
	if ipPath, err = exec.LookPath("ip"); err != nil {
		return errors.New("netns: ip (iproute2) not found in PATH")
	}
	if nftPath, err = exec.LookPath("nft"); err != nil {
		return errors.New("netns: nft (nftables) not found in PATH")
	}

	// Try what the harness does, in a throwaway namespace, so that a missing
	// kernel feature shows up here and not halfway through a test.
	name := newPrefix() + "-probe"
	if err := run("", ipPath, "netns", "add", name); err != nil {
		return fmt.Errorf("netns: cannot create a namespace: %w", err)
	}
	defer func() {
		if derr := run("", ipPath, "netns", "del", name); derr != nil && err == nil {
			err = fmt.Errorf("netns: cannot delete a namespace: %w", derr)
		}
	}()
	steps := []struct {
		what  string
		stdin string
		args  []string
	}{
		{"veth pairs", "", []string{"-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"}},
		{"bridges", "", []string{"-n", name, "link", "add", "probebr", "type", "bridge"}},
		{"nftables NAT", "table inet probe { chain p { type nat hook postrouting priority srcnat; masquerade; }; }\n",
			[]string{"netns", "exec", name, nftPath, "-f", "-"}},
	}
	for _, s := range steps {
		if err := run(s.stdin, ipPath, s.args...); err != nil {
			return fmt.Errorf("netns: no %s: %w", s.what, err)
		}
	}
	return nil
}

const (
	capNetAdmin = 12
	capSysAdmin = 21
)

func checkPrivilege() error {
	const need = 1<<capSysAdmin | 1<<capNetAdmin
	caps, err := effectiveCaps()
	switch {
	case err == nil && caps&need == need:
		return nil
	case os.Geteuid() != 0:
		return fmt.Errorf("netns: not root (euid %d): namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN", os.Geteuid())
	case err != nil:
		return nil // root, capabilities unknown: the probe decides
	default:
		return errors.New("netns: root without CAP_SYS_ADMIN and CAP_NET_ADMIN (an unprivileged container?)")
	}
}

// effectiveCaps reads the CapEff bit mask of this process.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// run runs a harness command. Its error holds the command line and output.
func run(stdin, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", cmd, err, bytes.TrimSpace(out))
	}
	return nil
}

func newPrefix() string { return fmt.Sprintf("ix%04x", rand.N(0x10000)) }

// Net is one test's private network: the namespaces it created and what
// connects them. Build it from the test goroutine (failures call t.Fatal);
// [NS.Exec] and [NS.Run] may be called from any goroutine.
type Net struct {
	t      testing.TB
	prefix string

	mu  sync.Mutex // guards nss and every NS's ifaces
	nss []*NS
}

// New returns an empty Net whose namespaces, and every process in them,
// are removed when t's cleanups run.
func New(t testing.TB) *Net {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	n := &Net{t: t, prefix: uniquePrefix(t)}
	t.Cleanup(n.cleanup)
	return n
}

// uniquePrefix picks a prefix no existing namespace uses, so that a
// namespace left by a killed run cannot get in the way.
func uniquePrefix(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(ipPath, "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("netns: %s netns list: %v\n%s", ipPath, err, out)
	}
	for range 100 {
		p := newPrefix()
		if !bytes.Contains(out, []byte(p+"-")) {
			return p
		}
	}
	t.Fatal("netns: no free namespace prefix")
	return ""
}

// NS is a network namespace of a Net.
type NS struct {
	net    *Net
	name   string   // the caller's name
	full   string   // the real namespace name
	ifaces []string // created by Attach and Link, in order
}

// Namespace creates a namespace with its loopback up. The name is 1 to 8
// lower-case letters or digits, unique within the Net.
func (n *Net) Namespace(name string) *NS {
	n.t.Helper()
	return n.add(name)
}

func (n *Net) add(name string) *NS {
	n.t.Helper()
	if !validName(name) {
		n.t.Fatalf("netns: name %q: want 1 to %d lower-case letters or digits", name, maxName)
	}
	ns := &NS{net: n, name: name, full: n.prefix + "-" + name}
	n.mu.Lock()
	dup := slices.ContainsFunc(n.nss, func(o *NS) bool { return o.name == name })
	n.mu.Unlock()
	if dup {
		n.t.Fatalf("netns: namespace %q exists already", name)
	}
	n.ip("", "netns", "add", ns.full)
	n.mu.Lock()
	n.nss = append(n.nss, ns)
	n.mu.Unlock()
	n.ip("", "-n", ns.full, "link", "set", "lo", "up")
	return ns
}

func validName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ip runs ip with args and fails the test if it fails.
func (n *Net) ip(stdin string, args ...string) {
	n.t.Helper()
	if err := run(stdin, ipPath, args...); err != nil {
		n.t.Fatalf("netns: %v", err)
	}
}

// own fails the test unless ns belongs to n.
func (n *Net) own(ns *NS) {
	n.t.Helper()
	if ns == nil || ns.net != n {
		n.t.Fatal("netns: namespace of another Net")
	}
}

// cleanup kills every process in the namespaces, then deletes them, which
// deletes their links too. Deleting first would not do: a namespace lives
// on, with its links, while a process is inside.
func (n *Net) cleanup() {
	n.mu.Lock()
	nss := slices.Clone(n.nss)
	n.mu.Unlock()
	if err := killAll(nss); err != nil {
		n.t.Errorf("netns: %v", err)
	}
	for _, ns := range nss {
		if err := run("", ipPath, "netns", "del", ns.full); err != nil {
			n.t.Errorf("netns: %v", err)
		}
	}
}

// killAll kills every process inside nss and waits until none is left.
// It finds them by namespace, not by remembered pid: that catches their
// children and processes not started through Exec, and it does not kill a
// stranger that was given the pid of a process long gone.
func killAll(nss []*NS) error {
	const wait = 10 * time.Second
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var left []string
		for _, ns := range nss {
			out, err := exec.Command(ipPath, "netns", "pids", ns.full).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s netns pids %s: %w\n%s", ipPath, ns.full, err, bytes.TrimSpace(out))
			}
			for _, f := range strings.Fields(string(out)) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					return fmt.Errorf("%s netns pids %s: bad pid %q", ipPath, ns.full, f)
				}
				syscall.Kill(pid, syscall.SIGKILL) // it may be gone already
				left = append(left, ns.full+":"+f)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still running %v after SIGKILL: %s", wait, strings.Join(left, " "))
		}
		<-tick.C
	}
}

// Name returns the real namespace name, as `ip netns` shows it.
func (ns *NS) Name() string { return ns.full }

// nextIface reserves the next free ethN name in ns.
func (ns *NS) nextIface() string {
	ns.net.mu.Lock()
	defer ns.net.mu.Unlock()
	name := "eth" + strconv.Itoa(len(ns.ifaces))
	ns.ifaces = append(ns.ifaces, name)
	return name
}

func (ns *NS) hasIface(name string) bool {
	ns.net.mu.Lock()
	defer ns.net.mu.Unlock()
	return slices.Contains(ns.ifaces, name)
}

// up gives iface its address and brings it up.
func (ns *NS) up(iface string, addr netip.Prefix) {
	n := ns.net
	n.t.Helper()
	if !addr.IsValid() {
		n.t.Fatalf("netns: %s %s: invalid address %v", ns.full, iface, addr)
	}
	args := []string{"-n", ns.full, "addr", "add", addr.String(), "dev", iface}
	if addr.Addr().Is6() {
		// Skip duplicate address detection: the address would otherwise
		// be unusable for a second or two, and the caller owns the segment.
		args = append(args, "nodad")
	}
	n.ip("", args...)
	n.ip("", "-n", ns.full, "link", "set", iface, "up")
}

// Switch is an L2 segment: a bridge in a namespace of its own.
type Switch struct {
	ns *NS
}

// Switch creates a switch. Its name shares the namespace names' rules and
// uniqueness.
func (n *Net) Switch(name string) *Switch {
	n.t.Helper()
	ns := n.add(name)
	n.ip("", "-n", ns.full, "link", "add", "br0", "type", "bridge")
	n.ip("", "-n", ns.full, "link", "set", "br0", "up")
	return &Switch{ns: ns}
}

// Attach plugs ns into the switch: a new interface in ns (eth0, eth1, … the
// next free), with address addr, up. It returns the interface's name.
func (s *Switch) Attach(ns *NS, addr netip.Prefix) string {
	n := s.ns.net
	n.t.Helper()
	n.own(ns)
	iface := ns.nextIface()
	port := ns.name + "-" + iface
	n.ip("", "-n", s.ns.full, "link", "add", port, "type", "veth", "peer", "name", iface, "netns", ns.full)
	n.ip("", "-n", s.ns.full, "link", "set", port, "master", "br0", "up")
	ns.up(iface, addr)
	return iface
}

// Link connects a and b point to point: a new interface in each (the next
// free ethN), with addresses aAddr and bAddr, up. It returns the
// interfaces' names.
func (n *Net) Link(a *NS, aAddr netip.Prefix, b *NS, bAddr netip.Prefix) (aIface, bIface string) {
	n.t.Helper()
	n.own(a)
	n.own(b)
	if a == b {
		n.t.Fatalf("netns: link from %s to itself", a.full)
	}
	aIface, bIface = a.nextIface(), b.nextIface()
	n.ip("", "-n", a.full, "link", "add", aIface, "type", "veth", "peer", "name", bIface, "netns", b.full)
	a.up(aIface, aAddr)
	b.up(bIface, bAddr)
	return aIface, bIface
}

// DefaultRoute sets ns's default route via the gateway via, replacing any
// default route of that address family.
func (ns *NS) DefaultRoute(via netip.Addr) {
	n := ns.net
	n.t.Helper()
	if !via.IsValid() {
		n.t.Fatalf("netns: %s: invalid gateway", ns.full)
	}
	via = via.Unmap()
	family := "-4"
	if via.Is6() {
		family = "-6"
	}
	n.ip("", "-n", ns.full, family, "route", "replace", "default", "via", via.String())
}

// routerRules make a typical home router: what leaves outIface is
// masqueraded, and from outIface only replies come back in (no port
// forwards). Unsolicited packets to the router itself are dropped too, not
// answered with a reset: a hole punch's SYN that arrives a moment before
// the router has mapped the inside host's own SYN is then retransmitted
// and gets through, as with most real routers.
const routerRules = `table inet netns_router {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "%[1]s" masquerade%[2]s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname != "%[1]s" accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "%[1]s" ct state established,related accept
		iifname "%[1]s" drop
	}
}
`

// Masquerade turns ns into an IPv4 home router whose outside is outIface,
// an interface Attach or Link made in ns: it forwards, masquerades what
// leaves through outIface, and drops new connections coming in on it.
func (ns *NS) Masquerade(outIface string) { ns.masquerade(outIface, "") }

// SymmetricNAT is Masquerade with a new random outside port for every
// flow, as carrier-grade and many corporate NATs do: what a peer observes
// of the inside host's address is of no use to any other peer, so hole
// punching cannot work and only a relay reaches the host.
func (ns *NS) SymmetricNAT(outIface string) { ns.masquerade(outIface, " fully-random") }

func (ns *NS) masquerade(outIface, flags string) {
	n := ns.net
	n.t.Helper()
	if !ns.hasIface(outIface) {
		n.t.Fatalf("netns: %s has no interface %q", ns.full, outIface)
	}
	// The sysctl is written from inside the namespace, where /proc/sys/net
	// is the namespace's own. Through sh rather than sysctl(8): procps is
	// not in minimal Debian images, sh always is.
	n.ip("", "netns", "exec", ns.full, "sh", "-c", "echo 1 >/proc/sys/net/ipv4/ip_forward")
	n.ip(fmt.Sprintf(routerRules, outIface, flags), "netns", "exec", ns.full, nftPath, "-f", "-")
}

// Exec returns a command that runs name with args inside ns, through
// `ip netns exec`. The command leads its own process group, and cancelling
// ctx kills the whole group. Whatever is still running in the Net's
// namespaces when the test ends is killed by the Net's cleanup.
func (ns *NS) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, ipPath, append([]string{"netns", "exec", ns.full, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// Out of the terminal's process group, ^C no longer reaches the
		// command; this kills it when the test process dies instead.
		Pdeathsig: syscall.SIGKILL,
	}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	return cmd
}

// Run runs name with args inside ns to completion and returns its combined
// output. Its error holds the command line and the output.
func (ns *NS) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := ns.Exec(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w\n%s", cmd, err, bytes.TrimSpace(out))
	}
	return out, nil
}
