package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/chain"
	"github.com/ipsx/ipsx/internal/crash"
	"github.com/ipsx/ipsx/sdk"
)

// The crash sweep: a dev chain, a provider and a requester, each its own
// process; a deal is made, a big page fetched through the proxy, the deal
// closed and settled, and one side is killed with SIGKILL at a chosen step
// and restarted on the same data dir. Every run must end its deals
// (settled or cancelled) well before deadline + grace, pay the provider at
// most the requester's last voucher and at least the last one the provider
// acknowledged, conserve the token sums, leave nothing reserved, and log no
// failed write. CI runs crashSweepCI; IPSX_CRASH_SWEEP=full runs every step.

// crashStep is one step of the deal where a side is killed: by a crash
// point armed in it (crash.Env), or from outside when a condition holds.
type crashStep struct {
	name      string
	prov, req string // crash points ("" = killed from outside)
	// provHold and reqHold kill the provider (the requester) from
	// outside: the other side holds at that point (crash.HoldEnv) until
	// the victim is dead, so the kill lands at that very instant.
	provHold, reqHold string
	midTransfer       bool // killed while a download runs
	afterRequest      bool // the provider is killed once the request is placed
}

var crashSteps = []crashStep{
	{name: "request-placed", req: "order.created.request", afterRequest: true},
	{name: "proposal-sent", prov: "deal.received.proposal", req: "deal.sent.proposal"},
	{name: "accepted", prov: "deal.status.accepted", req: "deal.status.accepted"},
	{name: "open-sent", req: "tx.sent.open", provHold: "tx.sent.open"},
	{name: "funded", prov: "deal.status.funded", req: "deal.chain.opened"},
	{name: "active", prov: "deal.status.active", req: "deal.sent.voucher"},
	{name: "mid-transfer", midTransfer: true},
	{name: "close-requested", prov: "deal.received.close", req: "deal.status.completed"},
	{name: "settle-sent", prov: "tx.sent.settle", reqHold: "tx.sent.settle"},
	{name: "settled", prov: "deal.status.settled", req: "deal.status.settled"},
}

// crashSweepCI are the steps CI runs on both sides.
var crashSweepCI = map[string]bool{"proposal-sent": true, "accepted": true, "open-sent": true,
	"active": true, "mid-transfer": true, "settle-sent": true}

func TestCrashSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("processes and a dev chain: not in -short")
	}
	full := os.Getenv("IPSX_CRASH_SWEEP") == "full"
	for _, st := range crashSteps {
		if !full && !crashSweepCI[st.name] {
			continue
		}
		for _, side := range []string{"provider", "requester"} {
			t.Run(st.name+"/"+side, func(t *testing.T) {
				t.Parallel()
				runCrash(t, st, side)
			})
		}
	}
}

// nodeProc is an `ipsx` process that can be killed and started again.
type nodeProc struct {
	t        *testing.T
	name     string
	args     []string
	log      *os.File
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	restarts int
	// holdAt and holdFile arm a hold point (crash.HoldEnv) at each start.
	holdAt, holdFile string
}

func newNodeProc(t *testing.T, name string, args ...string) *nodeProc {
	f, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &nodeProc{t: t, name: name, args: args, log: f}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("%s log:\n%s", name, tail(string(b), 60))
		}
		f.Close()
	})
	return p
}

// start runs the process; crashAt arms a crash point in it.
func (p *nodeProc) start(crashAt string) {
	p.t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, p.args...)...)
	cmd.Env = append(os.Environ(), "IPSX_TEST_AS_CLI=1", "IPSX_PASSWORD=pw", crash.Env+"="+crashAt)
	if p.holdAt != "" {
		cmd.Env = append(cmd.Env, crash.HoldEnv+"="+p.holdAt, crash.HoldFileEnv+"="+p.holdFile)
	}
	fmt.Fprintf(p.log, "==== start %s (crash point %q, hold point %q)\n", p.name, crashAt, p.holdAt)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

func (p *nodeProc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill is kill -9, and waits for the process to be gone.
func (p *nodeProc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	fmt.Fprintf(p.log, "==== %s killed from outside\n", p.name)
}

func (p *nodeProc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// failedWrites lists the log lines that report a write that did not hold.
func (p *nodeProc) failedWrites() []string {
	b, _ := os.ReadFile(p.log.Name())
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, bad := range []string{"Writes are blocked", "save deal records", "save chain cursor", "sync database", "deal driver stops"} {
			if strings.Contains(l, bad) {
				out = append(out, l)
			}
		}
	}
	return out
}

// crashRun is one run of the sweep.
type crashRun struct {
	t          *testing.T
	ctx        context.Context
	prov, req  *nodeProc
	pc, rc     *cli
	requestID  string
	provDeals  []sdk.Deal
	reqDeals   []sdk.Deal
	killed     bool
	killedAt   time.Time
	victim     *nodeProc
	victimSide string
	// holdFile is where the other side holds (crashStep.provHold): the
	// victim is killed once it exists.
	holdFile string
}

// procCLI runs ipsx commands in this process against a node's API.
func procCLI(t *testing.T, dir, api string) *cli {
	c := &cli{t: t, datadir: dir, env: map[string]string{"IPSX_DATADIR": dir, "IPSX_API": api}}
	c.app = func() *app { return &app{getenv: func(k string) string { return c.env[k] }, home: t.TempDir()} }
	return c
}

// deals lists a node's deals of the request; ok is false when its API
// did not answer (a node restarting).
func (r *crashRun) deals(c *cli) ([]sdk.Deal, bool) {
	out, _, err := c.run("--json", "deals", "list")
	if err != nil {
		return nil, false
	}
	var ds []sdk.Deal
	if json.Unmarshal([]byte(out), &ds) != nil {
		return nil, false
	}
	var mine []sdk.Deal
	for _, d := range ds {
		if d.RequestID == r.requestID {
			mine = append(mine, d)
		}
	}
	return mine, true
}

// reqDeal is the newest deal of the request on the requester.
func (r *crashRun) reqDeal() sdk.Deal { return newest(r.reqDeals) }

func newest(ds []sdk.Deal) sdk.Deal {
	if len(ds) == 0 {
		return sdk.Deal{}
	}
	return ds[0] // the API lists newest first
}

func finalStatus(s string) bool {
	switch s {
	case "settled", "refunded", "cancelled", "rejected", "expired":
		return true
	}
	return false
}

// supervise restarts a victim that died (a crash point fired) and kills
// one from outside when its step's condition holds.
func (r *crashRun) supervise(st crashStep) {
	if r.victim.exited() {
		if !r.killed {
			r.killed, r.killedAt = true, time.Now()
		}
		r.t.Logf("%s died at step %s; restarting it on its data dir", r.victimSide, st.name)
		r.victim.restarts++
		r.victim.start("")
		return
	}
	if r.killed || r.holdFile == "" {
		return
	}
	if _, err := os.Stat(r.holdFile); err == nil {
		r.victim.kill()
		r.killed, r.killedAt = true, time.Now()
		if err := os.Remove(r.holdFile); err != nil {
			r.t.Errorf("release the hold: %v", err)
		}
	}
}

func runCrash(t *testing.T, st crashStep, side string) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	const grace = 30
	chainInfo := startDevchainProc(t, "--grace", fmt.Sprint(grace))
	rpc := chainInfo["rpc"]
	b, err := chain.Dial(ctx, rpc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	contracts, err := chain.LoadContracts(ctx, b, common.HexToAddress(chainInfo["escrow"]))
	if err != nil {
		t.Fatal(err)
	}
	funder, err := chain.NewClient(b, contracts, chain.DevKey(1))
	if err != nil {
		t.Fatal(err)
	}

	// Two data dirs, funded.
	type party struct {
		dir, api, listen, socks, peerID string
		addr                            common.Address
	}
	mk := func(name string) party {
		s := party{dir: filepath.Join(t.TempDir(), name), api: stablePort(t), socks: stablePort(t)}
		_, port, _ := net.SplitHostPort(stablePort(t))
		s.listen = "/ip4/127.0.0.1/tcp/" + port
		c := procCLI(t, s.dir, s.api)
		c.env["IPSX_PASSWORD"] = "pw"
		var created struct {
			Address string
			PeerID  string `json:"peerId"`
		}
		out := c.ok("--json", "--api", s.api, "init", "--datadir", s.dir, "--scrypt", "light", "--chain-rpc", rpc,
			"--chain-id", chainInfo["chain id"], "--escrow", chainInfo["escrow"], "--listen", s.listen,
			"--socks", s.socks, "--http-proxy", "off", "--countries", "DE")
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			t.Fatalf("init: %q: %v", out, err)
		}
		s.addr, s.peerID = common.HexToAddress(created.Address), created.PeerID
		if _, err := funder.SendETH(ctx, s.addr, chain.Ether); err != nil {
			t.Fatal(err)
		}
		return s
	}
	ps, rs := mk("provider"), mk("requester")
	if _, err := funder.Transfer(ctx, rs.addr, new(big.Int).Mul(big.NewInt(10), chain.Token)); err != nil {
		t.Fatal(err)
	}
	treasury := common.HexToAddress(chainInfo["treasury"])
	sum := func() *big.Int {
		total := new(big.Int)
		for _, a := range []common.Address{ps.addr, rs.addr, treasury, contracts.Escrow} {
			bal, err := funder.Balances(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			total.Add(total, bal.Token)
		}
		return total
	}
	before := sum()

	pid := ps.peerID
	r := &crashRun{t: t, ctx: ctx, victimSide: side}
	r.prov = newNodeProc(t, "provider", "node", "--datadir", ps.dir, "--api", ps.api, "--log-level", "info",
		"--dev-fast-deals", "--exit-allow-loopback")
	r.req = newNodeProc(t, "requester", "node", "--datadir", rs.dir, "--api", rs.api, "--log-level", "info",
		"--dev-fast-deals", "--bootstrap", ps.listen+"/p2p/"+pid)
	r.pc, r.rc = procCLI(t, ps.dir, ps.api), procCLI(t, rs.dir, rs.api)
	r.victim = r.prov
	point := st.prov
	if side == "requester" {
		r.victim, point = r.req, st.req
	}
	hold, holder := st.provHold, r.req
	if side == "requester" {
		hold, holder = st.reqHold, r.prov
	}
	if hold != "" {
		r.holdFile = filepath.Join(t.TempDir(), "hold")
		holder.holdAt, holder.holdFile = hold, r.holdFile
	}
	start := func(p *nodeProc, c *cli, pt string) {
		p.start(pt)
		awaitCLI(t, ctx, c)
	}
	start(r.prov, r.pc, pointIf(r.victim == r.prov, point))
	start(r.req, r.rc, pointIf(r.victim == r.req, point))

	r.pc.ok("offer", "create", "--country", "DE", "--ips", "1", "--price-per-hour", perSecondStr(1_000_000_000_000),
		"--price-per-gb", "1000000000000000", "--min-duration", "5s", "--max-duration", "1h")
	awaitFor(t, ctx, "the offer at the requester", func() error {
		out, _, err := r.rc.run("--json", "book", "--country", "DE", "--kind", "offer")
		if err != nil || !strings.Contains(strings.ToLower(out), strings.ToLower(ps.addr.Hex())) {
			return fmt.Errorf("book: %v %s", err, out)
		}
		return nil
	})
	r.rc.ok("wallet", "deposit", "5tok")
	out, _, err := r.rc.run("--json", "request", "create", "--country", "DE", "--duration", "30s",
		"--max-price-per-hour", perSecondStr(10_000_000_000_000), "--max-price-per-gb", "10000000000000000")
	var req struct {
		ID string `json:"id"`
	}
	if err == nil {
		_ = json.Unmarshal([]byte(out), &req)
	}
	if req.ID == "" {
		// The requester died as it placed the request: it is on its disk.
		awaitFor(t, ctx, "the requester to die at its crash point", func() error {
			if !r.victim.exited() {
				return fmt.Errorf("still running")
			}
			return nil
		})
		r.supervise(st)
		awaitCLI(t, ctx, r.rc)
		awaitFor(t, ctx, "the request after the restart", func() error {
			out, _, err := r.rc.run("--json", "request", "list")
			var orders []struct {
				ID string `json:"id"`
			}
			if err != nil || json.Unmarshal([]byte(out), &orders) != nil || len(orders) == 0 {
				return fmt.Errorf("requests: %v %s", err, out)
			}
			req.ID = orders[0].ID
			return nil
		})
	}
	r.requestID = req.ID
	if st.afterRequest && side == "provider" {
		r.prov.kill()
		r.killed, r.killedAt = true, time.Now()
	}

	// Drive the deal: active, a download through the proxy, close, final.
	pw := strings.TrimSpace(r.rc.ok("proxy", "password"))
	big := bigServer(t)
	phase := "active"
	var closedAt time.Time
	var dealID, served string // the active deal, and the one a download went through
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		r.supervise(st)
		rd, rok := r.deals(r.rc)
		pd, pok := r.deals(r.pc)
		if rok {
			r.reqDeals = rd
		}
		if pok {
			r.provDeals = pd
		}
		d := r.reqDeal()
		switch phase {
		case "active":
			if d.Status == "active" {
				dealID = d.ID
				n, err := fetch(ctx, rs.socks, pw, big, func(got int64) {
					if st.midTransfer && !r.killed && got >= 4<<20 {
						r.victim.kill()
						r.killed, r.killedAt = true, time.Now()
					}
				})
				t.Logf("download through the proxy: %d bytes, %v", n, err)
				if err == nil {
					served = dealID
				}
				if err == nil || r.killed {
					phase = "close"
				}
			}
		case "close":
			if st.midTransfer && !r.victim.exited() && r.reqDeal().Status == "active" {
				// After the restart the tunnel carries again.
				if _, err := fetch(ctx, rs.socks, pw, big, nil); err != nil {
					t.Logf("download after the restart: %v", err)
					break
				}
				served = dealID
			}
			if _, _, err := r.rc.run("deals", "close", dealID); err == nil || finalStatus(d.Status) || d.Status == "completed" {
				phase, closedAt = "final", time.Now()
			}
		case "final":
			// Both nodes answered just now, and every deal either knows of
			// the request is over.
			done := rok && pok && len(r.reqDeals) > 0
			for _, ds := range [][]sdk.Deal{r.reqDeals, r.provDeals} {
				for _, x := range ds {
					if !finalStatus(x.Status) {
						done = false
					}
				}
			}
			if done && !r.victim.exited() {
				r.finish(st, served, before, sum(), closedAt, grace)
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("step %s, %s killed: not over in time (phase %s); requester's deals %+v; provider's %+v",
				st.name, side, phase, brief(r.reqDeals), brief(r.provDeals))
		case <-tick.C:
		}
	}
}

func pointIf(b bool, p string) string {
	if b {
		return p
	}
	return ""
}

func brief(ds []sdk.Deal) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%s %s paid=%s acked=%s settled=%s pending=%s unacked=%d", d.ID[:10], d.Status, d.Paid, d.Acked, d.Settled, d.Pending, d.Unacked))
	}
	return strings.Join(parts, "; ")
}

// finish checks a run's invariants once every deal of the request ended.
func (r *crashRun) finish(st crashStep, served string, before, after *big.Int, closedAt time.Time, grace uint64) {
	t := r.t
	// The deal that carried the download served the requester: it must
	// end paid, not cancelled or refunded.
	for _, d := range r.reqDeals {
		if d.ID == served && (d.Status != "settled" || d.Settled == "0" || d.Settled == "") {
			t.Errorf("deal %s carried the download but ended %s (settled %q)", d.ID, d.Status, d.Settled)
		}
	}
	if !r.killed {
		t.Errorf("the %s was never killed at step %s", r.victimSide, st.name)
	}
	if r.victim.restarts == 0 {
		t.Errorf("the %s was not restarted", r.victimSide)
	}
	if after.Cmp(before) != 0 {
		t.Errorf("token sums of requester, provider, treasury and escrow: %s before, %s after", before, after)
	}
	var w sdk.Wallet
	if err := json.Unmarshal([]byte(r.rc.ok("--json", "wallet", "balance")), &w); err != nil {
		t.Fatal(err)
	}
	if w.Reserved != "0" {
		t.Errorf("the requester has %s reserved in escrow after every deal ended", w.Reserved)
	}
	settled := 0
	for _, d := range r.reqDeals {
		if d.Status == "refunded" {
			t.Errorf("deal %s was refunded: it waited for deadline + grace", d.ID)
		}
		if d.Status != "settled" {
			continue
		}
		settled++
		var pd sdk.Deal
		for _, x := range r.provDeals {
			if x.ID == d.ID {
				pd = x
			}
		}
		if pd.ID == "" {
			t.Errorf("deal %s settled, but the provider has no record of it", d.ID)
		}
		paid, _ := new(big.Int).SetString(d.Settled, 10)
		signed, _ := new(big.Int).SetString(d.Paid, 10)
		acked, ok := new(big.Int).SetString(d.Acked, 10)
		if !ok {
			acked = new(big.Int)
		}
		if paid == nil || signed == nil || paid.Cmp(signed) > 0 {
			t.Errorf("deal %s settled for %s, more than the requester's last voucher %s", d.ID, d.Settled, d.Paid)
		}
		if paid != nil && paid.Cmp(acked) < 0 {
			t.Errorf("deal %s settled for %s, less than the voucher %s the provider acknowledged", d.ID, d.Settled, d.Acked)
		}
		if pd.Settled != d.Settled || pd.Voucher == nil || pd.Voucher.Amount != d.Settled {
			t.Errorf("deal %s: the provider's record says settled %s with its last voucher %+v; the requester's says %s", d.ID, pd.Settled, pd.Voucher, d.Settled)
		}
		if deadline := d.Deadline.Add(time.Duration(grace) * time.Second); !time.Now().Before(deadline) {
			t.Errorf("deal %s ended after deadline + grace (%s)", d.ID, deadline.Format(time.TimeOnly))
		}
	}
	for _, p := range []*nodeProc{r.prov, r.req} {
		if lines := p.failedWrites(); len(lines) > 0 {
			t.Errorf("%s logged failed writes:\n%s", p.name, strings.Join(lines, "\n"))
		}
	}
	t.Logf("step %s, %s killed: %s; recovered and ended %v after the kill (%v after close); %d settled",
		st.name, r.victimSide, brief(r.reqDeals), time.Since(r.killedAt).Round(time.Millisecond), time.Since(closedAt).Round(time.Millisecond), settled)
}

// stablePort is a free loopback port below the kernel's ephemeral range
// (32768 and up): a node restarted on it must find it free again, and a
// port from the ephemeral range may meanwhile be taken by any outgoing
// connection of the machine.
func stablePort(t *testing.T) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mathrand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// startDevchainProc runs `ipsx devchain` in its own process and returns
// what it printed.
func startDevchainProc(t *testing.T, args ...string) map[string]string {
	info := map[string]string{}
	sc := bufio.NewScanner(child(t, nil, append([]string{"devchain", "--http", "127.0.0.1:0"}, args...)...))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			info[k] = strings.TrimSpace(v)
		}
		if k == "rpc" {
			break
		}
	}
	if info["rpc"] == "" || info["escrow"] == "" {
		t.Fatalf("devchain printed %v", info)
	}
	return info
}

func awaitCLI(t *testing.T, ctx context.Context, c *cli) {
	awaitFor(t, ctx, "the node's API", func() error {
		_, _, err := c.run("status")
		return err
	})
}

func awaitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = cond(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, last)
		case <-tick.C:
		}
	}
}

// perSecondStr is a price per IP-hour of wei per second.
func perSecondStr(wei int64) string {
	return new(big.Int).Mul(big.NewInt(wei), big.NewInt(3600)).String()
}

// bigServer serves 24 MiB at a modest pace, so a kill lands mid-transfer.
func bigServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(96*len(chunk)))
		pace := time.NewTicker(20 * time.Millisecond) // the download's pace, not a wait
		defer pace.Stop()
		for i := 0; i < 96; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			<-pace.C
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/big"
}

// fetch downloads target through the requester's SOCKS5 proxy with the
// proxy credential; progress sees the bytes so far.
func fetch(ctx context.Context, socks, password, target string, progress func(int64)) (int64, error) {
	pu := &url.URL{Scheme: "socks5", Host: socks, User: url.UserPassword("country-DE", password)}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 60 * time.Second}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if progress != nil {
			progress(n)
		}
		if err == io.EOF {
			if n != resp.ContentLength {
				return n, fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
