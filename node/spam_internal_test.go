package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestSpamGuard: ignored messages throttle a peer within ThrottleAt of
// them, accepted ones pay for occasional ignores, a throttled peer is
// banned after the grace period and refused by the gater, and each later
// ban lasts twice as long.
func TestSpamGuard(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	lim := DefaultSpamLimits()
	g := newSpamGuard(lim, clk.now)
	var bans []time.Duration
	g.banned = func(_ peer.ID, d time.Duration, _ string) { bans = append(bans, d) }
	const spammer, honest = peer.ID("spammer"), peer.ID("honest")

	// An honest relay: mostly accepted, one ignore in ten, for a long time.
	for i := range 10_000 {
		if !g.admit(honest) {
			t.Fatalf("honest peer throttled after %d messages: %+v", i, g.peers[honest])
		}
		if i%10 == 0 {
			g.ignored(honest)
		} else {
			g.accepted(honest)
		}
		clk.add(10 * time.Millisecond)
	}
	// A flood of ignored messages is throttled within ThrottleAt of them.
	n := 0
	for g.admit(spammer) {
		g.ignored(spammer)
		if n++; n > int(lim.ThrottleAt/lim.IgnoreCost) {
			t.Fatalf("not throttled after %d ignored messages", n)
		}
	}
	if g.isBanned(spammer) {
		t.Fatal("banned before the grace period")
	}
	// It keeps sending while throttled: each drop is charged.
	for range 10 {
		if g.admit(spammer) {
			t.Fatal("a throttled peer's message was admitted")
		}
		clk.add(lim.Grace / 10)
	}
	g.sweep()
	if !g.isBanned(spammer) || len(bans) != 1 || bans[0] != lim.Backoff {
		t.Fatalf("after the grace period: banned %v, bans %v", g.isBanned(spammer), bans)
	}
	if g.InterceptPeerDial(spammer) || g.InterceptSecured(network.DirInbound, spammer, nil) {
		t.Error("the gater lets a banned peer connect")
	}
	if !g.InterceptPeerDial(honest) || !g.InterceptSecured(network.DirInbound, honest, nil) {
		t.Error("the gater refuses an honest peer")
	}
	// After the ban, on probation; the next offence bans it twice as long.
	clk.add(lim.Backoff)
	if !g.admit(spammer) {
		t.Fatal("still refused after the ban")
	}
	for g.admit(spammer) {
		g.rejected(spammer)
	}
	for range 10 { // still sending
		g.admit(spammer)
		clk.add(lim.Grace / 10)
	}
	g.sweep()
	if len(bans) != 2 || bans[1] != 2*lim.Backoff {
		t.Fatalf("second ban: %v, want %v", bans, 2*lim.Backoff)
	}
	// A burst far over budget is banned at once.
	const burst = peer.ID("burst")
	for range int(lim.BanAt/lim.RejectCost) + 1 {
		g.rejected(burst)
	}
	if !g.isBanned(burst) {
		t.Errorf("not banned at once after BanAt: %+v", g.peers[burst])
	}
	// Graylisted for the grace period: banned.
	const gray = peer.ID("gray")
	g.graylisted(map[peer.ID]bool{gray: true})
	clk.add(lim.Grace)
	g.sweep()
	if !g.isBanned(gray) {
		t.Error("a graylisted peer was not banned after the grace period")
	}
}

// TestVPoolFair: with the only worker busy and a flooding peer's queue
// full, the flood's next job is refused at once, an honest peer's job runs
// next, before the flood's queue, and once the flooder is throttled its
// queued jobs are dropped unrun.
func TestVPoolFair(t *testing.T) {
	var throttled sync.Map
	const perPeer = 8
	p := newVPool(perPeer, func(id peer.ID) bool { _, ok := throttled.Load(id); return ok })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx, 1); close(done) }()
	defer func() { cancel(); <-done }()

	queued := func(id peer.ID, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			p.mu.Lock()
			n := len(p.queues[id])
			p.mu.Unlock()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d queued, want %d", id, n, want)
			}
			<-tick.C
		}
	}
	var mu sync.Mutex
	var order []string
	record := func(name string) func() error {
		return func() error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return nil
		}
	}
	started, release := make(chan struct{}), make(chan struct{})
	errs := make(chan error, 2*perPeer)
	go func() {
		errs <- p.do(ctx, "flood", func() error { close(started); <-release; return record("flood")() })
	}()
	<-started
	for i := range perPeer {
		go func() { errs <- p.do(ctx, "flood", record("flood")) }()
		queued("flood", i+1)
	}
	if err := p.do(ctx, "flood", record("flood")); !errors.Is(err, errPeerQueueFull) {
		t.Fatalf("a job past the flood's full queue: %v, want errPeerQueueFull", err)
	}
	honest := make(chan error, 1)
	go func() { honest <- p.do(ctx, "honest", record("honest")) }()
	queued("honest", 1)
	throttled.Store(peer.ID("flood"), true)
	close(release)
	if err := <-honest; err != nil {
		t.Fatal(err)
	}
	ran, dropped := 0, 0
	for range perPeer + 1 {
		switch err := <-errs; {
		case err == nil:
			ran++
		case errors.Is(err, errPeerThrottled):
			dropped++
		default:
			t.Errorf("flood job: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "flood" || order[1] != "honest" {
		t.Errorf("ran %v, want the running flood job, then the honest one", order)
	}
	if ran != 1 || dropped != perPeer {
		t.Errorf("flood jobs: %d ran, %d dropped; want 1 ran, %d dropped once throttled", ran, dropped, perPeer)
	}
}
