package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/internal/netns"
	"github.com/ipsx/ipsx/sdk"
)

// The VPN end to end, every node an `ipsx node` process in a network
// namespace of the test's own:
//
//	req ── gw ──┬── inet (11.80.0.0/24) ──┬── prov1 ──┬── tnet (11.81.0.0/24, 10.81.0.0/24) ── target
//	            │                          ├── prov2 ──┘
//	            └ (routes only to inet)    └── chain (dev chain, JSON-RPC on 11.80.0.10)
//
// The requester's default route is its gateway, which reaches the
// providers and the chain but not the target's network: its only way to
// the target is the TUN. The addresses look public so that the exit
// policy lets them through (except 10.81.0.100, the target's private
// address, which it must refuse); they exist only in these namespaces.

const vpnRoleEnv = "IPSX_TEST_VPN_ROLE"

// The VPN test's helper roles run before TestMain (init), so they need no
// change to its role switch.
func init() {
	if role := os.Getenv(vpnRoleEnv); role != "" {
		os.Exit(vpnRole(role))
	}
}

func vpnRole(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch role {
	case "chain":
		err = vpnChain(ctx, os.Getenv("IPSX_VPN_CHAIN_ADDR"))
	case "targets":
		err = vpnTargets(ctx)
	case "udpask":
		err = udpAsk(os.Getenv("IPSX_VPN_TO"), os.Getenv("IPSX_VPN_MSG"))
	case "benchtarget":
		err = benchTarget()
	case "benchclient":
		err = benchClient()
	case "wg":
		err = wgPeer()
	case "vpnstack":
		err = vpnStack(ctx)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// vpnChain serves a dev chain on addr (an address of its namespace, where
// `ipsx devchain` takes loopback only), prints its addresses, then funds
// each address read from stdin with ETH and 10 tokens and says "funded".
func vpnChain(ctx context.Context, addr string) error {
	dc, err := chain.StartDevChain(ctx, chain.DefaultDevChainConfig())
	if err != nil {
		return err
	}
	defer dc.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { _ = dc.Serve(ctx, ln) }()
	c := dc.Contracts()
	rpc := "http://" + ln.Addr().String()
	fmt.Printf("chain id: %s\nescrow: %s\nrpc: %s\n", c.ChainID, c.Escrow.Hex(), rpc)
	b, err := chain.Dial(ctx, rpc)
	if err != nil {
		return err
	}
	defer b.Close()
	contracts, err := chain.LoadContracts(ctx, b, c.Escrow)
	if err != nil {
		return err
	}
	funder, err := chain.NewClient(b, contracts, chain.DevKey(1))
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		a := common.HexToAddress(strings.TrimSpace(sc.Text()))
		if _, err := funder.SendETH(ctx, a, chain.Ether); err != nil {
			return err
		}
		if _, err := funder.Transfer(ctx, a, new(big.Int).Mul(big.NewInt(10), chain.Token)); err != nil {
			return err
		}
		fmt.Println("funded")
	}
	<-ctx.Done()
	return nil
}

// vpnTargets is the target host: HTTP on :8080 (/ answers the caller's
// address; /slow sends a byte every 100 ms for a minute), a UDP echo on
// :7 that answers with the sender's address, and a DNS server on :53
// that answers target.ipsx.test with 11.81.0.100. It prints a line per
// request: "http <from> <to>", "udp <from>", "dns <from> <name>".
func vpnTargets(ctx context.Context) error {
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		return err
	}
	echo, err := net.ListenPacket("udp", ":7")
	if err != nil {
		return err
	}
	dns, err := net.ListenPacket("udp", ":53")
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			logf("udp %s", from)
			_, _ = echo.WriteTo([]byte("from "+from.String()+": "+string(buf[:n])), from)
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := dns.ReadFrom(buf)
			if err != nil {
				return
			}
			ans, name, err := dnsAnswer(buf[:n])
			logf("dns %s %s", from, name)
			if err == nil {
				_, _ = dns.WriteTo(ans, from)
			}
		}
	}()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		logf("http %s %s", host, local)
		if r.URL.Path == "/slow" {
			for range 600 {
				if _, err := w.Write([]byte(".")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			return
		}
		fmt.Fprintf(w, "you are %s", host)
	})}
	go func() { <-ctx.Done(); _ = srv.Close(); _ = echo.Close(); _ = dns.Close() }()
	logf("up")
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// dnsAnswer answers an A query for target.ipsx.test.
func dnsAnswer(q []byte) ([]byte, string, error) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, "", err
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return nil, "", fmt.Errorf("want one question: %v", err)
	}
	name := qs[0].Name.String()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(qs[0])
	_ = b.StartAnswers()
	if name == "target.ipsx.test." && qs[0].Type == dnsmessage.TypeA {
		_ = b.AResource(dnsmessage.ResourceHeader{Name: qs[0].Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.AResource{A: [4]byte{11, 81, 0, 100}})
	}
	out, err := b.Finish()
	return out, name, err
}

// udpAsk sends msg to to and prints the answer.
func udpAsk(to, msg string) error {
	c, err := net.Dial("udp", to)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 1024)
	for range 5 { // a lost datagram is retried, as any UDP client does
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err == nil {
			fmt.Print(string(buf[:n]))
			return nil
		}
	}
	return fmt.Errorf("no answer from %s", to)
}

// roleProc is a helper role's process; its stdout lines are kept.
type roleProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	lines chan string
}

func startRole(t *testing.T, ns *netns.NS, role string, env ...string) *roleProc {
	t.Helper()
	cmd := ns.Exec(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), vpnRoleEnv+"="+role, "GORACE=atexit_sleep_ms=0"), env...)
	p := &roleProc{cmd: cmd, out: &syncBuffer{}, lines: make(chan string, 1000)}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.scan(stdout)
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("role %s stderr:\n%s", role, stderr.String())
		}
	})
	return p
}

// scan keeps the lines of r.
func (p *roleProc) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		_, _ = p.out.Write([]byte(sc.Text() + "\n"))
		select {
		case p.lines <- sc.Text():
		default:
		}
	}
}

// next waits for the process's next line starting with prefix.
func (p *roleProc) next(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	for {
		select {
		case l := <-p.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-ctx.Done():
			t.Fatalf("no %q line; output so far:\n%s", prefix, p.out.String())
		}
	}
}

// vpnNode is an `ipsx node` process that the test can kill.
type vpnNode struct {
	*meshNode
	cmd *exec.Cmd
}

func startVPNNode(t *testing.T, ns *netns.NS, args ...string) *vpnNode {
	t.Helper()
	m := &meshNode{t: t, ns: ns, dir: t.TempDir(), logs: &syncBuffer{}}
	if _, err := ipsxIn(t.Context(), ns, "init", "--datadir", m.dir, "--scrypt", "light"); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Exec(context.Background(), os.Args[0], append([]string{"-test.run=^$", "--", "node", "--datadir", m.dir, "--log-level", "debug",
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1"}, args...)...)
	cmd.Env = append(os.Environ(), "IPSX_TEST_AS_CLI=1", "IPSX_PASSWORD=pw", "GORACE=atexit_sleep_ms=0")
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &vpnNode{meshNode: m, cmd: cmd}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("node in %s logged:\n%s", ns.Name(), tail(m.logs.String(), 120))
		}
	})
	return n
}

func (n *vpnNode) kill() {
	if n.cmd.ProcessState == nil {
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		_ = n.cmd.Wait()
	}
}

// nsSnapshot is a namespace's routes, rules, firewall and resolver.
func nsSnapshot(t *testing.T, ctx context.Context, ns *netns.NS) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"ip", "-4", "rule"}, {"ip", "-6", "rule"}, {"ip", "-4", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"}, {"nft", "list", "ruleset"}, {"ip", "-br", "link"},
		{"cat", "/etc/resolv.conf"}, {"cat", "/proc/sys/net/ipv4/conf/all/src_valid_mark"},
	} {
		out, err := ns.Run(ctx, args[0], args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), out)
	}
	return b.String()
}

func curlNoProxy(ctx context.Context, ns *netns.NS, args ...string) (string, error) {
	out, err := ns.Run(ctx, "curl", append([]string{"-sS", "--noproxy", "*", "--max-time", "15"}, args...)...)
	return string(out), err
}

func (n *vpnNode) vpn(ctx context.Context, args ...string) (sdk.VPNStatus, error) {
	var st sdk.VPNStatus
	err := n.cli(ctx, &st, append([]string{"vpn"}, args...)...)
	return st, err
}

// TestVPN is the VPN mode's acceptance test (see the picture above).
func TestVPN(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	n := netns.New(t)
	inet, tnet := n.Switch("inet"), n.Switch("tnet")
	reqNS, gwNS, p1NS, p2NS, chainNS, targetNS := n.Namespace("req"), n.Namespace("gw"), n.Namespace("prov1"),
		n.Namespace("prov2"), n.Namespace("chain"), n.Namespace("target")
	pfx := netip.MustParsePrefix
	inet.Attach(gwNS, pfx("11.80.0.254/24"))
	n.Link(gwNS, pfx("11.90.1.1/24"), reqNS, pfx("11.90.1.2/24"))
	reqNS.DefaultRoute(netip.MustParseAddr("11.90.1.1"))
	if _, err := gwNS.Run(ctx, "sh", "-c", "echo 1 >/proc/sys/net/ipv4/ip_forward"); err != nil {
		t.Fatal(err)
	}
	inet.Attach(chainNS, pfx("11.80.0.10/24"))
	for i, p := range []*netns.NS{p1NS, p2NS} {
		inet.Attach(p, pfx(fmt.Sprintf("11.80.0.%d/24", i+1)))
		eth := tnet.Attach(p, pfx(fmt.Sprintf("11.81.0.%d/24", i+1)))
		if _, err := p.Run(ctx, "ip", "addr", "add", fmt.Sprintf("10.81.0.%d/24", i+1), "dev", eth); err != nil {
			t.Fatal(err)
		}
	}
	eth := tnet.Attach(targetNS, pfx("11.81.0.100/24"))
	if _, err := targetNS.Run(ctx, "ip", "addr", "add", "10.81.0.100/24", "dev", eth); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []*netns.NS{chainNS, p1NS, p2NS} {
		if _, err := ns.Run(ctx, "ip", "route", "add", "11.90.1.0/24", "via", "11.80.0.254"); err != nil {
			t.Fatal(err)
		}
	}
	// The requester's resolver file: `ip netns exec` mounts it over
	// /etc/resolv.conf for every process of the namespace, the node's
	// included, which --dns rewrites in place.
	resolvDir := filepath.Join("/etc/netns", reqNS.Name())
	if err := os.MkdirAll(resolvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(resolvDir) })
	const resolvBefore = "nameserver 11.90.1.1\n"
	if err := os.WriteFile(filepath.Join(resolvDir, "resolv.conf"), []byte(resolvBefore), 0o644); err != nil {
		t.Fatal(err)
	}

	targets := startRole(t, targetNS, "targets")
	targets.next(t, ctx, "up")
	ch := startRole(t, chainNS, "chain", "IPSX_VPN_CHAIN_ADDR=11.80.0.10:8545")
	info := map[string]string{}
	for _, k := range []string{"chain id", "escrow", "rpc"} {
		l := ch.next(t, ctx, k+": ")
		info[k] = strings.TrimPrefix(l, k+": ")
	}
	chainArgs := []string{"--chain-rpc", info["rpc"], "--chain-id", info["chain id"], "--escrow", info["escrow"]}

	prov1 := startVPNNode(t, p1NS, append([]string{"--dht-server"}, chainArgs...)...)
	var p1 sdk.Status
	await(t, ctx, "provider 1 up", func() (bool, string) {
		var err error
		p1, err = prov1.status(ctx)
		return err == nil, fmt.Sprint(err)
	})
	boot := fmt.Sprintf("/ip4/11.80.0.1/tcp/4001/p2p/%s", p1.PeerID)
	prov2 := startVPNNode(t, p2NS, append([]string{"--bootstrap", boot}, chainArgs...)...)
	req := startVPNNode(t, reqNS, append([]string{"--bootstrap", boot, "--countries", "DE"}, chainArgs...)...)
	ipOf := map[string]string{}
	for i, m := range []*vpnNode{prov1, prov2, req} {
		var st sdk.Status
		await(t, ctx, "node up", func() (bool, string) {
			var err error
			st, err = m.status(ctx)
			return err == nil, fmt.Sprint(err)
		})
		if i < 2 {
			ipOf[st.Address] = fmt.Sprintf("11.81.0.%d", i+1)
		}
		if _, err := io.WriteString(ch.stdin, st.Address+"\n"); err != nil {
			t.Fatal(err)
		}
		ch.next(t, ctx, "funded")
		if _, err := ipsxIn(ctx, m.ns, "--datadir", m.dir, "wallet", "deposit", "5tok"); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range []*vpnNode{prov1, prov2} {
		var o json.RawMessage
		if err := m.cli(ctx, &o, "offer", "create", "--country", "DE", "--protocols", "tcp,udp", "--ips", "1",
			"--price-per-hour", fmt.Sprint(3_600_000*(i+1)), "--price-per-gb", "1000", "--max-duration", "1h"); err != nil {
			t.Fatal(err)
		}
	}
	// Two deals, one with each provider: each offer has one IP.
	for i := range 2 {
		var r json.RawMessage
		if err := req.cli(ctx, &r, "request", "create", "--country", "DE", "--protocols", "tcp,udp", "--duration", "10m",
			"--max-price-per-hour", "100000000", "--max-price-per-gb", "1000000"); err != nil {
			t.Fatal(err)
		}
		await(t, ctx, "an active deal per request", func() (bool, string) {
			var ds []sdk.Deal
			if err := req.cli(ctx, &ds, "deals", "list"); err != nil {
				return false, err.Error()
			}
			have := 0
			var seen []string
			for _, d := range ds {
				seen = append(seen, d.Status)
				if d.Status == "active" {
					have++
				}
			}
			return have == i+1, fmt.Sprint(seen)
		})
	}
	var deals []sdk.Deal
	if err := req.cli(ctx, &deals, "deals", "list"); err != nil || len(deals) != 2 || deals[0].Provider == deals[1].Provider {
		t.Fatalf("deals %+v %v, want one active deal with each provider", deals, err)
	}

	// Before the VPN: no way to the target.
	before := nsSnapshot(t, ctx, reqNS)
	if out, err := curlNoProxy(ctx, reqNS, "http://11.81.0.100:8080/"); err == nil {
		t.Fatalf("the target was reachable without the VPN: %q", out)
	}

	st, err := req.vpn(ctx, "up", "--route", "country-DE", "--default-route", "--dns", "--dns-server", "11.81.0.100", "--kill-switch")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "up" || st.Device != "ipsx0" || len(st.Prefixes) != 1 || st.Prefixes[0] != "default" || !st.KillSwitch {
		t.Fatalf("vpn up: %+v", st)
	}

	// curl with no proxy settings reaches the target, which sees the
	// provider's address.
	out, err := curlNoProxy(ctx, reqNS, "http://11.81.0.100:8080/")
	if err != nil {
		t.Fatal(err)
	}
	st, err = req.vpn(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	first := ipOf[st.Provider]
	if st.Deal == "" || first == "" || out != "you are "+first {
		t.Fatalf("curl through the VPN: %q; status deal %s provider %s (%s)", out, st.Deal, st.Provider, first)
	}
	// A UDP echo comes back from the provider's address.
	udp, err := vpnUDP(ctx, reqNS, "11.81.0.100:7", "ping")
	if err != nil || !strings.HasPrefix(udp, "from "+first+":") || !strings.HasSuffix(udp, ": ping") {
		t.Fatalf("UDP echo through the VPN: %q %v", udp, err)
	}
	// DNS: the system's resolver is the TUN's; the query reaches the
	// test's DNS server from the provider's address, and the name works.
	resolv, _ := reqNS.Run(ctx, "cat", "/etc/resolv.conf")
	if !strings.Contains(string(resolv), "nameserver 100.127.0.53") {
		t.Fatalf("resolv.conf during the VPN: %s", resolv)
	}
	out, err = curlNoProxy(ctx, reqNS, "http://target.ipsx.test:8080/")
	if err != nil || out != "you are "+first {
		t.Fatalf("curl by name through the VPN's DNS: %q %v", out, err)
	}
	if l := targets.next(t, ctx, "dns "); !strings.HasPrefix(l, "dns "+first+":") || !strings.HasSuffix(l, " target.ipsx.test.") {
		t.Fatalf("DNS server saw %q, want a query from %s", l, first)
	}

	// A target in a private range is refused by the exit policy: curl
	// fails at once, nothing reaches the target's private address.
	start := time.Now()
	if out, err := curlNoProxy(ctx, reqNS, "http://10.81.0.100:8080/"); err == nil {
		t.Fatalf("a private target through the VPN: %q", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the refusal took %s", d)
	}
	if strings.Contains(targets.out.String(), ":8080 ") && strings.Contains(targets.out.String(), "10.81.0.100:8080") {
		t.Fatalf("the target's private address was reached:\n%s", targets.out.String())
	}
	st, _ = req.vpn(ctx, "status")
	if st.Counters.Refused == 0 || st.Counters.TCPFlows < 2 || st.Counters.UDPFlows < 2 {
		t.Fatalf("counters %+v", st.Counters)
	}

	// Killing the provider in use: a TCP flow through it is cut cleanly
	// (curl sees the reset, it does not hang), and new flows move to the
	// other deal.
	slow := reqNS.Exec(ctx, "curl", "-sS", "--noproxy", "*", "--max-time", "60", "http://11.81.0.100:8080/slow")
	var slowOut bytes.Buffer
	slow.Stdout, slow.Stderr = &slowOut, &slowOut
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	await(t, ctx, "slow download under way", func() (bool, string) {
		st, err := req.vpn(ctx, "status")
		for _, f := range st.Flows {
			if f.Proto == "tcp" && f.Down > 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v %v", st.Flows, err)
	})
	gone, other := prov1, prov2
	second := "11.81.0.2"
	if first == "11.81.0.2" {
		gone, other, second = prov2, prov1, "11.81.0.1"
	}
	_ = other
	gone.kill()
	slowDone := make(chan error, 1)
	killedAt := time.Now()
	go func() { slowDone <- slow.Wait() }()
	select {
	case err := <-slowDone:
		if err == nil {
			t.Fatalf("the slow download through a killed provider ended cleanly: %s", slowOut.String())
		}
		t.Logf("the flow through the killed provider failed after %s: %v %s", time.Since(killedAt).Round(time.Millisecond), err, strings.TrimLeft(slowOut.String(), "."))
	case <-time.After(45 * time.Second):
		t.Fatal("the flow through the killed provider still hangs after 45 s")
	}
	await(t, ctx, "new flows on the other deal", func() (bool, string) {
		out, err := curlNoProxy(ctx, reqNS, "--max-time", "5", "http://11.81.0.100:8080/")
		return err == nil && out == "you are "+second, fmt.Sprintf("%q %v", out, err)
	})
	if udp, err := vpnUDP(ctx, reqNS, "11.81.0.100:7", "again"); err != nil || !strings.HasPrefix(udp, "from "+second+":") {
		t.Fatalf("UDP after the move: %q %v", udp, err)
	}
	st, _ = req.vpn(ctx, "status")
	if st.Counters.Moves == 0 || ipOf[st.Provider] != second {
		t.Fatalf("after the move: provider %s, counters %+v", st.Provider, st.Counters)
	}
	var text bytes.Buffer
	if b, err := ipsxIn(ctx, reqNS, "--datadir", req.dir, "vpn", "status"); err == nil {
		text.Write(b)
	}
	t.Logf("ipsx vpn status:\n%s", text.String())

	// vpn down: the namespace is as it was, and the target unreachable.
	st, err = req.vpn(ctx, "down")
	if err != nil || st.State != "down" || st.KillSwitchArmed {
		t.Fatalf("vpn down: %+v %v", st, err)
	}
	if after := nsSnapshot(t, ctx, reqNS); after != before {
		t.Fatalf("vpn down left the namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out, err := curlNoProxy(ctx, reqNS, "http://11.81.0.100:8080/"); err == nil {
		t.Fatalf("the target reachable after vpn down: %q", out)
	}
}

// vpnUDP runs the udpask role in ns.
func vpnUDP(ctx context.Context, ns *netns.NS, to, msg string) (string, error) {
	cmd := ns.Exec(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), vpnRoleEnv+"=udpask", "IPSX_VPN_TO="+to, "IPSX_VPN_MSG="+msg, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
