package netns_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipsx/ipsx/internal/netns"
)

// helperEnv makes the test binary a helper program instead of running
// tests, so that the tests can run Go code inside their namespaces.
const helperEnv = "NETNS_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	goleak.VerifyTestMain(m)
}

func runHelper(role string) int {
	addr := os.Getenv("NETNS_ADDR")
	var err error
	switch role {
	case "tcpecho":
		err = tcpEcho(addr)
	case "tcpclient":
		var wait time.Duration
		if wait, err = time.ParseDuration(os.Getenv("NETNS_WAIT")); err == nil {
			err = tcpClient(addr, wait)
		}
	default:
		err = fmt.Errorf("unknown helper %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// tcpEcho answers each connection with the peer's address as it sees it,
// until killed.
func tcpEcho(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintln(c, host)
		c.Close()
	}
}

// tcpClient prints what the server at addr says. It retries until wait has
// passed, since the server may still be starting.
func tcpClient(addr string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, left); err == nil {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(os.Stdout, c)
			return err
		}
		<-tick.C
	}
}

// helper returns a command running this test binary as helper role in ns.
func helper(ctx context.Context, t *testing.T, ns *netns.NS, role, addr string, wait time.Duration) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Exec(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "NETNS_ADDR="+addr, "NETNS_WAIT="+wait.String(),
		// Under -race a process lingers a second at exit unless told not to.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return cmd
}

// serve runs a tcpEcho server in ns until the test ends.
func serve(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	cmd := helper(t.Context(), t, ns, "tcpecho", addr, 0)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Wait() }) // t.Context is done by now, which kills it
}

// dial connects from ns to a tcpEcho server at addr and returns the
// address the server saw.
func dial(t *testing.T, ns *netns.NS, addr string, wait time.Duration) (string, error) {
	t.Helper()
	out, err := helper(t.Context(), t, ns, "tcpclient", addr, wait).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func skipUnlessAvailable(t *testing.T) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
}

// TestHomeRouter builds a home behind a NAT router on a shared "internet"
// segment:
//
//	pub 10.201.0.2 ─┐
//	                inet
//	router 10.201.0.1 ─┘ (masquerades) ─ 192.168.201.1 ── home 192.168.201.2
func TestHomeRouter(t *testing.T) {
	skipUnlessAvailable(t)
	t.Parallel()
	forwardBefore := rootForwarding(t)

	var (
		pubAddr  = netip.MustParsePrefix("10.201.0.2/24")
		wanAddr  = netip.MustParsePrefix("10.201.0.1/24")
		lanAddr  = netip.MustParsePrefix("192.168.201.1/24")
		homeAddr = netip.MustParsePrefix("192.168.201.2/24")
	)
	n := netns.New(t)
	inet := n.Switch("inet")
	pub, router, home := n.Namespace("pub"), n.Namespace("router"), n.Namespace("home")
	inet.Attach(pub, pubAddr)
	wan := inet.Attach(router, wanAddr)
	n.Link(router, lanAddr, home, homeAddr)
	router.Masquerade(wan)
	home.DefaultRoute(lanAddr.Addr())
	// pub sends what it has for the home LAN to the router, as a host on
	// the router's segment trying to get in would.
	pub.DefaultRoute(wanAddr.Addr())

	t.Run("outbound is masqueraded", func(t *testing.T) {
		target := netip.AddrPortFrom(pubAddr.Addr(), 7070).String()
		serve(t, pub, target)
		seen, err := dial(t, home, target, 10*time.Second)
		if err != nil {
			t.Fatalf("home to pub: %v", err)
		}
		if want := wanAddr.Addr().String(); seen != want {
			t.Errorf("pub saw the connection from %s, want the router's %s", seen, want)
		}
	})

	t.Run("no way in", func(t *testing.T) {
		target := netip.AddrPortFrom(homeAddr.Addr(), 7070).String()
		serve(t, home, target)
		// The router reaches the server (its own traffic is not forwarded):
		// the server is up, so what follows fails because of the router.
		if _, err := dial(t, router, target, 10*time.Second); err != nil {
			t.Fatalf("router to home: %v", err)
		}
		seen, err := dial(t, pub, target, time.Second)
		if err == nil {
			t.Fatalf("pub connected to home through the router (home saw %s)", seen)
		}
		// A timeout, not "unreachable": the SYN went to the router and was dropped.
		if !strings.Contains(err.Error(), "i/o timeout") {
			t.Errorf("pub to home: %v, want an i/o timeout", err)
		}
	})

	t.Run("root namespace untouched", func(t *testing.T) {
		for _, args := range [][]string{{"-o", "addr"}, {"route"}, {"-6", "route"}} {
			out, err := exec.Command("ip", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			for _, s := range []string{"10.201.0.", "192.168.201."} {
				if strings.Contains(string(out), s) {
					t.Errorf("root namespace `ip %s` shows %s:\n%s", strings.Join(args, " "), s, out)
				}
			}
		}
		out, err := exec.Command("nft", "list", "tables").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list tables: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "netns_router") {
			t.Errorf("root namespace has the router's nft table:\n%s", out)
		}
		if got := rootForwarding(t); got != forwardBefore {
			t.Errorf("root net.ipv4.ip_forward went from %s to %s", forwardBefore, got)
		}
	})
}

func rootForwarding(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCleanup checks that a Net's cleanup kills what runs in its
// namespaces and deletes them.
func TestCleanup(t *testing.T) {
	skipUnlessAvailable(t)
	t.Parallel()

	var (
		prefix string
		server *exec.Cmd
	)
	t.Run("net", func(t *testing.T) {
		n := netns.New(t)
		a, b := n.Namespace("a"), n.Namespace("b")
		n.Link(a, netip.MustParsePrefix("10.202.0.1/30"), b, netip.MustParsePrefix("10.202.0.2/30"))
		n.Switch("sw").Attach(a, netip.MustParsePrefix("10.203.0.1/24"))
		prefix, _, _ = strings.Cut(a.Name(), "-")
		prefix += "-"

		// Not cancelled and not waited for here: only the cleanup stops it.
		server = helper(context.Background(), t, a, "tcpecho", "10.202.0.1:7070", 0)
		if err := server.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := dial(t, b, "10.202.0.1:7070", 10*time.Second); err != nil {
			t.Fatalf("b to a: %v", err)
		}
	})
	if server == nil || server.Process == nil {
		t.Fatal("the server did not start")
	}

	done := make(chan error, 1)
	go func() { done <- server.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("server ended with %v, want killed", err)
		}
	case <-time.After(10 * time.Second):
		server.Process.Kill()
		<-done
		t.Fatal("server still running after the cleanup")
	}

	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, prefix) {
			t.Errorf("namespace left after the cleanup: %s", line)
		}
	}
}
