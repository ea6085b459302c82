package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/testnet"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The flood test runs each node of its testnet in a process of its own,
// this test binary started again with floodNodeEnv set: the nodes of a
// real network do not share a heap, and in one process the collector's
// pauses, driven by the attackers' allocation as much as by any node's,
// stalled every node at once and made the measured ratio swing from 0.3×
// to 2.3× between runs. The parent drives its children over their stdin
// and stdout, one JSON object a line.
const (
	floodNodeEnv = "IPSX_TEST_FLOOD_NODE" // the child's index
	floodDirEnv  = "IPSX_TEST_FLOOD_DIR"  // its data dir
)

// floodCmd is a request to a child; floodOut is a reply (Seq set) or a
// stored order (Stored set).
type floodCmd struct {
	Seq  int             `json:"seq"`
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

type floodOut struct {
	Seq    int             `json:"seq,omitempty"`
	Err    string          `json:"err,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
	Stored *common.Hash    `json:"stored,omitempty"`
	At     int64           `json:"at,omitempty"` // when it was stored, Unix ns
}

// floodHello is a child's reply to "hello".
type floodHello struct {
	Info    peer.AddrInfo    `json:"info"`
	Address common.Address   `json:"address"`
	Domain  orderbook.Domain `json:"domain"`
}

// floodNodeMain is the child: one node on 127.0.0.(11+index), funded only
// for the makers the parent names, with the flood test's spam limits. It
// exits when its stdin closes.
func floodNodeMain() int {
	i, err := strconv.Atoi(os.Getenv(floodNodeEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood node:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	view := &funded{}
	tn, err := testnet.Start(ctx, testnet.Config{
		Dir: os.Getenv(floodDirEnv), Nodes: 1, FirstHost: 11 + i, Countries: []string{"DE"},
		NodeOptions: []node.Option{node.WithBalances(view), node.WithSpamLimits(floodSpamLimits())},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood node:", err)
		return 1
	}
	defer tn.Close()
	n := tn.Members[0].Node

	var mu sync.Mutex // one line at a time on stdout
	out := json.NewEncoder(os.Stdout)
	send := func(o floodOut) {
		mu.Lock()
		defer mu.Unlock()
		_ = out.Encode(o)
	}
	evs, stop := n.Subscribe()
	defer stop()
	go func() {
		for ev := range evs {
			if ev.Type != "order.added" {
				continue
			}
			var e struct {
				Order struct {
					ID common.Hash `json:"id"`
				} `json:"order"`
			}
			if json.Unmarshal(ev.Data, &e) == nil {
				send(floodOut{Stored: &e.Order.ID, At: ev.Time.UnixNano()})
			}
		}
	}()

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	for in.Scan() {
		var c floodCmd
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, "flood node: bad command:", err)
			return 2
		}
		// Each command runs on its own, so that a slow one (awaiting the
		// mesh) does not hold up the parent's others.
		go func() {
			v, err := floodServe(ctx, tn, view, c)
			o := floodOut{Seq: c.Seq}
			if err != nil {
				o.Err = err.Error()
			} else if o.Value, err = json.Marshal(v); err != nil {
				o.Err = err.Error()
			}
			send(o)
		}()
	}
	return 0
}

func floodServe(ctx context.Context, tn *testnet.Testnet, view *funded, c floodCmd) (any, error) {
	n := tn.Members[0].Node
	switch c.Op {
	case "hello":
		return floodHello{Info: n.AddrInfo(), Address: n.Address(), Domain: n.Status(ctx).Domain()}, nil
	case "fund":
		var makers []common.Address
		if err := json.Unmarshal(c.Args, &makers); err != nil {
			return nil, err
		}
		for _, m := range makers {
			view.m.Store(m, true)
		}
		return nil, nil
	case "connect":
		var ais []peer.AddrInfo
		if err := json.Unmarshal(c.Args, &ais); err != nil {
			return nil, err
		}
		for _, ai := range ais {
			if err := n.Connect(ctxTimeout(ctx, 10*time.Second), ai); err != nil {
				return nil, fmt.Errorf("connect %s: %w", ai.ID, err)
			}
		}
		return nil, nil
	case "mesh":
		var want int
		if err := json.Unmarshal(c.Args, &want); err != nil {
			return nil, err
		}
		return nil, tn.AwaitMesh(ctxTimeout(ctx, time.Minute), want)
	case "synced":
		return nil, tn.AwaitSynced(ctxTimeout(ctx, time.Minute))
	case "offer":
		var ips uint32
		if err := json.Unmarshal(c.Args, &ips); err != nil {
			return nil, err
		}
		p := offerParams("DE")
		p.IPs = ips
		o, err := n.CreateOffer(ctx, p)
		if err != nil {
			return nil, err
		}
		return o.ID(), nil
	case "spam":
		var p peer.ID
		if err := json.Unmarshal(c.Args, &p); err != nil {
			return nil, err
		}
		return n.SpamState(p), nil
	case "count":
		return n.Book().Count(), nil
	case "cpu":
		return cpuTime(), nil
	}
	return nil, fmt.Errorf("unknown op %q", c.Op)
}

// floodSpamLimits are the nodes' spam limits: the defaults with a grace
// period of 2 s, so that bans happen within a round.
func floodSpamLimits() node.SpamLimits {
	lim := node.DefaultSpamLimits()
	lim.Grace = 2 * time.Second
	return lim
}

// procNode is the parent's handle on a child node.
type procNode struct {
	name string
	floodHello
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr string // its log file
	done   chan struct{}

	mu      sync.Mutex
	seq     int
	pending map[int]chan floodOut
	exited  error
}

// startProcNode starts child i; stored is called for each order it stores.
func startProcNode(ctx context.Context, dir string, i int, stored func(id common.Hash, at time.Time)) (*procNode, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &procNode{name: fmt.Sprintf("node%d", i), pending: map[int]chan floodOut{}, done: make(chan struct{})}
	p.stderr = filepath.Join(dir, p.name+".log")
	logf, err := os.Create(p.stderr)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.cmd = exec.Command(exe, "-test.run=^$")
	p.cmd.Env = append(os.Environ(), floodNodeEnv+"="+strconv.Itoa(i), floodDirEnv+"="+filepath.Join(dir, p.name))
	p.cmd.Stderr = logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go p.read(stdout, stored)
	if err := p.call(ctx, "hello", nil, &p.floodHello); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *procNode) read(stdout io.Reader, stored func(common.Hash, time.Time)) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var o floodOut
		if json.Unmarshal(sc.Bytes(), &o) != nil {
			continue // a stray line of the test framework's
		}
		if o.Stored != nil {
			stored(*o.Stored, time.Unix(0, o.At))
			continue
		}
		p.mu.Lock()
		ch := p.pending[o.Seq]
		delete(p.pending, o.Seq)
		p.mu.Unlock()
		if ch != nil {
			ch <- o
		}
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited = fmt.Errorf("%s exited (%v); its log: %s", p.name, err, p.stderr)
	p.mu.Unlock()
	close(p.done)
}

// call runs op with args on the child and decodes its value into v.
func (p *procNode) call(ctx context.Context, op string, args, v any) error {
	c := floodCmd{Op: op}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		c.Args = b
	}
	ch := make(chan floodOut, 1)
	p.mu.Lock()
	if p.exited != nil {
		p.mu.Unlock()
		return p.exited
	}
	p.seq++
	c.Seq = p.seq
	p.pending[c.Seq] = ch
	line, err := json.Marshal(c)
	if err == nil {
		_, err = p.stdin.Write(append(line, '\n'))
	}
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.name, op, err)
	}
	select {
	case o := <-ch:
		if o.Err != "" {
			return fmt.Errorf("%s %s: %s", p.name, op, o.Err)
		}
		if v != nil {
			return json.Unmarshal(o.Value, v)
		}
		return nil
	case <-p.done:
		return p.exited
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", p.name, op, ctx.Err())
	}
}

// cpu is the child's CPU time so far.
func (p *procNode) cpu(ctx context.Context) (time.Duration, error) {
	var d time.Duration
	if err := p.call(ctx, "cpu", nil, &d); err != nil {
		return 0, fmt.Errorf("%s: CPU time: %w", p.name, err)
	}
	return d, nil
}

// close stops the child (its stdin closes) and waits for it, killing it
// if it does not stop within 30 s.
func (p *procNode) close() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// procTestnet starts n child nodes, connects each to all others and
// funds their makers on every node.
func procTestnet(ctx context.Context, dir string, n int, stored func(i int, id common.Hash, at time.Time)) ([]*procNode, error) {
	var ps []*procNode
	fail := func(err error) ([]*procNode, error) {
		for _, p := range ps {
			p.close()
		}
		return nil, err
	}
	for i := range n {
		p, err := startProcNode(ctx, dir, i, func(id common.Hash, at time.Time) { stored(i, id, at) })
		if err != nil {
			return fail(err)
		}
		ps = append(ps, p)
	}
	var makers []common.Address
	for _, p := range ps {
		makers = append(makers, p.Address)
	}
	for i, p := range ps {
		if err := p.call(ctx, "fund", makers, nil); err != nil {
			return fail(err)
		}
		var earlier []peer.AddrInfo
		for _, q := range ps[:i] {
			earlier = append(earlier, q.Info)
		}
		if err := p.call(ctx, "connect", earlier, nil); err != nil {
			return fail(err)
		}
	}
	return ps, nil
}

// awaitAll runs op on every child at once and returns the first error.
func awaitAll(ctx context.Context, ps []*procNode, op string, args any) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.call(ctx, op, args, nil) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logTail logs the last lines of a child's log when the test failed.
func (p *procNode) logTail(tb testing.TB) {
	b, err := os.ReadFile(p.stderr)
	if err != nil || len(b) == 0 {
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	tb.Logf("%s's log ends:\n%s", p.name, b)
}
