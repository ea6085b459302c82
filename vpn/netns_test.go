package vpn

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsx/ipsx/internal/netns"
)

// The real device, in network namespaces the test makes: namespace "a"
// runs a VPN (this test binary as a helper process) whose Dialer dials
// straight out, namespace "b" the servers. Addresses exist only inside
// the namespaces.

const helperEnv = "IPSX_VPN_TEST_HELPER"

// helperConfig is what a helper process is told, as JSON in its
// environment.
type helperConfig struct {
	Role string
	VPN  Config
	// Map sends a TUN target (ip:port) to a real address.
	Map map[string]string
}

// helperMain runs a helper role and returns its exit code.
func helperMain(spec string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(spec), &hc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch hc.Role {
	case "vpn":
		var v *VPN
		v, err = New(hc.VPN, mapDialer(hc.Map))
		if err == nil {
			err = v.Run(ctx, func() { fmt.Println("up") })
		}
	case "serve":
		err = serveTargets(ctx)
	case "udpask":
		// Map["to"] is the target; the answer's text up to the port is
		// printed (the source port varies).
		var c net.Conn
		if c, err = net.Dial("udp", hc.Map["to"]); err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			var n int
			if _, err = c.Write([]byte(hc.Map["msg"])); err == nil {
				if n, err = c.Read(buf); err == nil {
					ans := string(buf[:n])
					fmt.Println(ans[:strings.LastIndexByte(ans[:strings.LastIndexByte(ans, ' ')], ':')+1])
				}
			}
		}
	case "recover", "recover-keep":
		_, err = Recover(hc.VPN.StateFile, hc.Role == "recover-keep")
	default:
		err = fmt.Errorf("unknown role %q", hc.Role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// mapDialer dials each target's mapped address directly.
type mapDialer map[string]string

func (m mapDialer) dial(ctx context.Context, network, target string) (net.Conn, error) {
	to, ok := m[target]
	if !ok {
		return nil, fmt.Errorf("no route to %s", target)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

func (m mapDialer) DialTCP(ctx context.Context, t string) (net.Conn, error) {
	return m.dial(ctx, "tcp", t)
}
func (m mapDialer) DialUDP(ctx context.Context, t string) (net.Conn, error) {
	return m.dial(ctx, "udp", t)
}

// serveTargets answers HTTP on :8080 with the caller's address and echoes
// UDP on :7, until ctx ends.
func serveTargets(ctx context.Context) error {
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", ":7")
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte("echo "+from.String()+" "+string(buf[:n])), from)
		}
	}()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "you are %s", host)
	})}
	go func() { <-ctx.Done(); _ = srv.Close(); _ = pc.Close() }()
	fmt.Println("up")
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// helper starts this binary as a helper in ns and waits for it to say
// "up". kill stops it: cleanly (SIGTERM) or not (SIGKILL).
func helper(t *testing.T, ns *netns.NS, hc helperConfig) (kill func(clean bool) error) {
	t.Helper()
	spec, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Exec(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec), "GORACE=atexit_sleep_ms=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "up" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper %s said %q, %v: %s", hc.Role, line, err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	done := false
	stop := func(clean bool) error {
		if done {
			return nil
		}
		done = true
		sig := syscall.SIGKILL
		if clean {
			sig = syscall.SIGTERM
		}
		_ = syscall.Kill(-cmd.Process.Pid, sig)
		err := cmd.Wait()
		if clean && err != nil {
			return fmt.Errorf("helper %s: %w: %s", hc.Role, err, stderr.String())
		}
		return nil
	}
	t.Cleanup(func() { _ = stop(false) })
	return stop
}

// udpAsk sends msg to target from a UDP socket in ns and returns the
// answer of serveTargets' echo up to the source port ("echo 11.98.0.1:").
func udpAsk(t *testing.T, ns *netns.NS, target, msg string) string {
	t.Helper()
	spec, _ := json.Marshal(helperConfig{Role: "udpask", Map: map[string]string{"to": target, "msg": msg}})
	cmd := ns.Exec(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec), "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("udp to %s: %v: %s", target, err, out)
	}
	return strings.TrimSpace(string(out))
}

// runHelper runs a helper role to its end.
func runHelper(t *testing.T, ns *netns.NS, hc helperConfig) {
	t.Helper()
	spec, _ := json.Marshal(hc)
	cmd := ns.Exec(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec), "GORACE=atexit_sleep_ms=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper %s: %v: %s", hc.Role, err, out)
	}
}

// snapshot is a namespace's routing and firewall state.
func snapshot(t *testing.T, ns *netns.NS) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"ip", "-4", "rule"}, {"ip", "-6", "rule"}, {"ip", "-4", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"}, {"nft", "list", "ruleset"}, {"ip", "-br", "link"},
		{"cat", "/proc/sys/net/ipv4/conf/all/src_valid_mark"},
	} {
		out, err := ns.Run(t.Context(), args[0], args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), out)
	}
	return b.String()
}

func curlIn(t *testing.T, ns *netns.NS, url string) (string, error) {
	t.Helper()
	out, err := ns.Run(t.Context(), "curl", "-sS", "--noproxy", "*", "--max-time", "10", url)
	return string(out), err
}

func setupNamespaces(t *testing.T) (a, b *netns.NS) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	n := netns.New(t)
	a, b = n.Namespace("a"), n.Namespace("b")
	n.Link(a, netip.MustParsePrefix("11.98.0.1/24"), b, netip.MustParsePrefix("11.98.0.2/24"))
	// b's second address stands for "the internet": a reaches it only
	// through its default route.
	if _, err := b.Run(t.Context(), "ip", "addr", "add", "11.97.0.1/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	helper(t, b, helperConfig{Role: "serve"})
	return a, b
}

// TestTUNSplitRoute: with a route for 11.99.0.0/24 into the TUN, curl
// (no proxy) reaches what the Dialer maps that address to, and UDP does
// too; when the VPN stops the namespace's routes and firewall are as
// before.
func TestTUNSplitRoute(t *testing.T) {
	a, _ := setupNamespaces(t)
	before := snapshot(t, a)
	if _, err := curlIn(t, a, "http://11.99.0.1:8080/"); err == nil {
		t.Fatal("11.99.0.1 reachable before the VPN")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "vpn-state.json")
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 11.98.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := helper(t, a, helperConfig{Role: "vpn",
		VPN: Config{Routes: []netip.Prefix{netip.MustParsePrefix("11.99.0.0/24")}, StateFile: state,
			DNS: netip.MustParseAddrPort("11.99.0.53:53"), ResolvConf: resolv},
		Map: map[string]string{"11.99.0.1:8080": "11.98.0.2:8080", "11.99.0.1:7": "11.98.0.2:7", "11.99.0.53:53": "11.98.0.2:7"}})
	out, err := curlIn(t, a, "http://11.99.0.1:8080/")
	if err != nil || out != "you are 11.98.0.1" {
		t.Fatalf("curl through the TUN: %q %v", out, err)
	}
	if got := udpAsk(t, a, "11.99.0.1:7", "ping"); got != "echo 11.98.0.1:" {
		t.Fatalf("UDP through the TUN: answer %q", got)
	}
	// --dns: the system's resolver is the TUN's, whose queries go to the
	// configured server through the tunnel.
	if b, _ := os.ReadFile(resolv); !strings.Contains(string(b), "nameserver 100.127.0.53\n") {
		t.Fatalf("resolv.conf during the VPN: %q", b)
	}
	if got := udpAsk(t, a, "100.127.0.53:53", "query"); got != "echo 11.98.0.1:" {
		t.Fatalf("DNS through the TUN: answer %q", got)
	}
	if err := stop(true); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, a); after != before {
		t.Fatalf("the namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("state file left: %v", err)
	}
	if b, _ := os.ReadFile(resolv); string(b) != "nameserver 11.98.0.2\n" {
		t.Fatalf("resolv.conf after the VPN: %q", b)
	}
}

// TestTUNDefaultRouteKillSwitch: with a default route into the TUN the
// Dialer's own connections (to a bypass host, through the namespace's
// default route) stay outside it; after a crash the kill switch blocks
// what would leave outside the TUN, Recover keeps it armed or takes it
// away, and then the namespace is as before.
func TestTUNDefaultRouteKillSwitch(t *testing.T) {
	a, _ := setupNamespaces(t)
	if _, err := a.Run(t.Context(), "ip", "route", "add", "default", "via", "11.98.0.2"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, a)
	if out, err := curlIn(t, a, "http://11.97.0.1:8080/"); err != nil || out != "you are 11.98.0.1" {
		t.Fatalf("11.97.0.1 before the VPN: %q %v", out, err)
	}
	state := filepath.Join(t.TempDir(), "vpn-state.json")
	cfg := Config{DefaultRoute: true, KillSwitch: true, StateFile: state,
		Bypass: Bypass{Hosts: []netip.Addr{netip.MustParseAddr("11.97.0.1")}}}
	kill := helper(t, a, helperConfig{Role: "vpn", VPN: cfg,
		Map: map[string]string{"11.99.0.1:8080": "11.97.0.1:8080"}})
	out, err := curlIn(t, a, "http://11.99.0.1:8080/")
	if err != nil || out != "you are 11.98.0.1" {
		t.Fatalf("curl through the TUN's default route: %q %v", out, err)
	}
	// 11.98.0.2 is on the LAN: the main table's route for it is more
	// specific than the default and wins (as with wg-quick), but the
	// kill switch refuses what leaves outside the TUN.
	if out, err := curlIn(t, a, "http://11.98.0.2:8080/"); err == nil {
		t.Fatalf("the kill switch let %q through to the LAN", out)
	}

	// A crash: the device is gone with the process, the rules and the
	// kill switch are not. Traffic that would now leave outside the TUN
	// is refused.
	if err := kill(false); err != nil {
		t.Fatal(err)
	}
	if out, err := curlIn(t, a, "http://11.98.0.2:8080/"); err == nil {
		t.Fatalf("the kill switch let %q through after a crash", out)
	}
	runHelper(t, a, helperConfig{Role: "recover-keep", VPN: cfg})
	if !KillSwitchArmed(state) {
		t.Fatal("the state file does not record the kill switch kept")
	}
	if out, err := curlIn(t, a, "http://11.98.0.2:8080/"); err == nil {
		t.Fatalf("the kill switch let %q through after Recover(keep)", out)
	}
	// The bypass host still gets through (the node's own traffic).
	if out, err := curlIn(t, a, "http://11.97.0.1:8080/"); err != nil || out != "you are 11.98.0.1" {
		t.Fatalf("bypass host with the kill switch armed: %q %v", out, err)
	}
	runHelper(t, a, helperConfig{Role: "recover", VPN: cfg})
	if after := snapshot(t, a); after != before {
		t.Fatalf("the namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out, err := curlIn(t, a, "http://11.98.0.2:8080/"); err != nil || out != "you are 11.98.0.1" {
		t.Fatalf("after Recover: %q %v", out, err)
	}
}
