package node_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/orderbook/orderbooktest"
	"github.com/ipsx/ipsx/testnet"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// floodConfig sizes the flood test: a short variant for CI and a long one
// behind IPSX_GOSSIP_FLOOD=long.
type floodConfig struct {
	nodes   int           // testnet nodes, all in DE
	targets int           // nodes the attackers connect to
	rounds  int           // baseline rounds, and as many attack rounds, interleaved
	round   time.Duration // honest publishing per round
	honest  int           // honest offers per second
	rate    int           // messages per second of each attacker
}

func floodConfigFor() floodConfig {
	if os.Getenv("IPSX_GOSSIP_FLOOD") == "long" {
		return floodConfig{nodes: 9, targets: 3, rounds: 5, round: 10 * time.Second, honest: 20, rate: 400}
	}
	if os.Getenv("IPSX_GOSSIP_FLOOD") == "quick" {
		return floodConfig{nodes: 4, targets: 2, rounds: 1, round: 2 * time.Second, honest: 10, rate: 100}
	}
	cfg := floodConfig{nodes: 5, targets: 3, rounds: 4, round: 5 * time.Second, honest: 50, rate: 150}
	if raceEnabled {
		cfg.honest = 10 // under -race, 50 a second saturate the 2 cores of CI
	}
	return cfg
}

// funded is the balance view of the flood test: the testnet's members
// are funded, every other maker is not.
type funded struct{ m sync.Map }

func (f *funded) Free(maker common.Address) (*big.Int, bool) {
	if _, ok := f.m.Load(maker); ok {
		return new(big.Int).Lsh(big.NewInt(1), 200), true
	}
	return nil, false
}

// attackKinds are the flooders of every attack round, each a peer of its own.
var attackKinds = []string{"padded-duplicate", "ignore-expired", "ignore-unfunded", "forger", "rotating-forger", "rotating-forger", "garbage"}

type attacker struct {
	kind  string
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	sent  int
}

type floodResult struct {
	baseline, attack       []time.Duration // p99 of each round
	baseLat, attackLat     []time.Duration // every honest offer's propagation time
	baseCores, attackCores float64         // process CPU during the rounds, in cores
	lost                   int
	notes                  []string // failures found
}

// TestGossipFlood: honest offers propagate through a testnet of node
// processes (floodproc_test.go) while Go attackers flood a few of its
// nodes with every kind of spam: padded duplicates of valid offers,
// expired forged offers, signed requests from unfunded fresh keys, forged
// signatures from one identity and from rotating ones, and garbage.
// Baseline and attack rounds interleave; in a baseline round the same
// attackers run the same loops against as many sink peers outside the
// testnet, reached over the same transports as the nodes, so that the
// attackers' own CPU load is the same in both. The p99 of the honest
// propagation times (from the origin storing an offer to the last node
// storing it) of all attack rounds is at most twice that of all baseline
// rounds; no honest offer is lost; no spam reaches a book; every attacker
// is throttled or banned by every node it attacked within a bounded
// number of its messages. The ratio is asserted without -race (make test
// runs this test once more without it), see floodRatioChecked.
func TestGossipFlood(t *testing.T) {
	cfg := floodConfigFor()
	res := runFlood(t, cfg)
	for _, n := range res.notes {
		t.Error(n)
	}
	if ratio := logFlood(t, res); ratio > 2 && floodRatioChecked() && !t.Failed() {
		// A p99 of 1,000 offers is their 10th slowest; a few scheduler
		// stalls on 2 busy cores (the honest p99 is 2-20 ms) can move
		// it. Measured once more, pooled: an attack that slows honest
		// gossip keeps the pooled ratio over 2, a stall does not.
		t.Logf("ratio %.2f over 2: measuring once more", ratio)
		more := runFlood(t, cfg)
		for _, n := range more.notes {
			t.Error(n)
		}
		res.add(more)
		if ratio := logFlood(t, res); ratio > 2 {
			t.Errorf("honest p99 under attack %v is %.2f× the baseline %v (want at most 2×)", p99(res.attackLat), ratio, p99(res.baseLat))
		}
	}
	if res.lost > 0 {
		t.Errorf("%d honest offers lost", res.lost)
	}
}

// floodRatioChecked: whether TestGossipFlood asserts its ratio. Under
// -race on a shared 2-core machine the ratio measured from 1.2× to 3.7×
// (a baseline round alone varied from 16 to 348 ms): the detector's
// cost, not the attack's. Without it the short variant's ratio measured
// 0.7× to 2.0× over 21 runs, with a bias: every node applied the others'
// heartbeats at 30 s, rewriting each of their offers, which stalled
// gossip for 10-40 ms in what was always an attack round. With the
// heartbeat rewriting deadlines only: 0.89× to 1.30× over 6 runs.
func floodRatioChecked() bool { return !raceEnabled }

// logFlood logs the figures of a flood and returns its ratio.
func logFlood(t *testing.T, res floodResult) float64 {
	base, att := p99(res.baseLat), p99(res.attackLat)
	ratio := float64(att) / float64(base)
	t.Logf("honest p99 per round: baseline %v, attack %v; over all rounds %v and %v (%d and %d offers): ratio %.2f; CPU %.2f and %.2f cores",
		res.baseline, res.attack, base, att, len(res.baseLat), len(res.attackLat), ratio, res.baseCores, res.attackCores)
	return ratio
}

// add pools the rounds of another measurement into r (CPU: the mean).
func (r *floodResult) add(o floodResult) {
	r.baseline = append(r.baseline, o.baseline...)
	r.attack = append(r.attack, o.attack...)
	r.baseLat = append(r.baseLat, o.baseLat...)
	r.attackLat = append(r.attackLat, o.attackLat...)
	r.baseCores = (r.baseCores + o.baseCores) / 2
	r.attackCores = (r.attackCores + o.attackCores) / 2
	r.lost += o.lost
	r.notes = append(r.notes, o.notes...)
}

// BenchmarkGossipFlood runs the long flood once and prints its figures.
func BenchmarkGossipFlood(b *testing.B) {
	cfg := floodConfigFor()
	if os.Getenv("IPSX_GOSSIP_FLOOD") != "long" {
		cfg.rounds, cfg.round = 3, 8*time.Second
	}
	var res floodResult
	for b.Loop() {
		res = runFlood(b, cfg)
	}
	for _, n := range res.notes {
		b.Error(n)
	}
	base, att := p99(res.baseLat), p99(res.attackLat)
	fmt.Printf("bench: gossip-flood baseline_p99_ms=%.1f attack_p99_ms=%.1f ratio=%.2f cpu_cores=%.2f baseline_cpu_cores=%.2f lost=%d\n",
		ms(base), ms(att), float64(att)/float64(base), res.attackCores, res.baseCores, res.lost)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*99/100)]
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runFlood(tb testing.TB, cfg floodConfig) floodResult {
	lim := floodSpamLimits()
	dir := tb.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// When each node stored each order: from its event stream.
	var mu sync.Mutex
	stored := map[common.Hash]map[int]time.Time{}
	nodes, err := procTestnet(ctx, dir, cfg.nodes, func(i int, id common.Hash, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if stored[id] == nil {
			stored[id] = map[int]time.Time{}
		}
		stored[id][i] = at
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		for _, p := range nodes {
			p.close()
			if tb.Failed() {
				p.logTail(tb)
			}
		}
	}()
	if err := awaitAll(ctx, nodes, "mesh", min(cfg.nodes-1, 3)); err != nil {
		tb.Fatal(err)
	}
	if err := awaitAll(ctx, nodes, "synced", nil); err != nil {
		tb.Fatal(err)
	}
	domain := nodes[0].Domain
	targetNodes := nodes[1 : 1+cfg.targets]

	// Unfunded signed requests, signed once (signing is the attacker's
	// cost, not what is measured); each round sends them re-spaced, so
	// that they are new messages to the nodes.
	var unfunded [][]byte
	for i := range 64 {
		k, _ := ethcrypto.GenerateKey()
		data, err := orderbook.Message{Order: orderbooktest.Sign(orderbooktest.Request(domain, "DE", uint64(i+1), time.Now()), k)}.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		unfunded = append(unfunded, data)
	}

	// cpuNow is the CPU time of the test process and of every node.
	cpuNow := func() time.Duration {
		d := cpuTime()
		for _, p := range nodes {
			c, err := p.cpu(ctx)
			if err != nil {
				tb.Fatal(err)
			}
			d += c
		}
		return d
	}

	var res floodResult
	var honestIDs []common.Hash
	seq := 0
	for r := 0; r < 2*cfg.rounds; r++ {
		attack := r%2 == 1
		var sinks []*attacker
		var targets []peer.AddrInfo
		for _, p := range targetNodes {
			if attack {
				targets = append(targets, p.Info)
				continue
			}
			s := rawHost(tb, ctx, p.Info.Addrs, lim.Grace)
			sinks = append(sinks, s)
			targets = append(targets, peer.AddrInfo{ID: s.h.ID(), Addrs: s.h.Addrs()})
		}
		var atts []*attacker
		for _, kind := range attackKinds {
			a := rawHost(tb, ctx, nil, 0)
			a.kind = kind
			for _, ai := range targets {
				if err := a.h.Connect(ctx, ai); err != nil {
					tb.Fatalf("%s connects: %v", kind, err)
				}
			}
			atts = append(atts, a)
		}
		// The attackers are on the topic of their targets before they start.
		if err := testnet.Await(ctx, func() error {
			for _, a := range atts {
				if len(a.topic.ListPeers()) < len(targets) {
					return fmt.Errorf("%s sees %d of %d targets on the topic", a.kind, len(a.topic.ListPeers()), len(targets))
				}
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		actx, stopAttack := context.WithCancel(ctx)
		var awg sync.WaitGroup
		for _, a := range atts {
			awg.Add(1)
			go func() { defer awg.Done(); a.flood(actx, cfg.rate, domain, unfunded, r, targets) }()
		}

		cpu0, wall0 := cpuNow(), time.Now()
		var round []common.Hash
		tick := time.NewTicker(time.Second / time.Duration(cfg.honest))
		for deadline := time.Now().Add(cfg.round); time.Now().Before(deadline); {
			<-tick.C
			var id common.Hash
			if err := nodes[seq%cfg.nodes].call(ctx, "offer", uint32(1+seq%1000), &id); err != nil {
				tb.Fatal(err)
			}
			seq++
			round = append(round, id)
		}
		tick.Stop()
		honestIDs = append(honestIDs, round...)
		// Every honest offer of the round reaches every node.
		err := testnet.Await(ctxTimeout(ctx, 30*time.Second), func() error {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range round {
				if len(stored[id]) < cfg.nodes {
					return fmt.Errorf("offer %s reached %d of %d nodes", id.Hex(), len(stored[id]), cfg.nodes)
				}
			}
			return nil
		})
		cores := float64(cpuNow()-cpu0) / float64(time.Since(wall0))
		stopAttack()
		awg.Wait()
		if err != nil {
			res.notes = append(res.notes, fmt.Sprintf("round %d (attack %v): %v", r, attack, err))
		}
		var lat []time.Duration
		mu.Lock()
		for _, id := range round {
			at := stored[id]
			if len(at) < cfg.nodes {
				res.lost++
				continue
			}
			var first, last time.Time
			for _, ts := range at {
				if first.IsZero() || ts.Before(first) {
					first = ts
				}
				if ts.After(last) {
					last = ts
				}
			}
			lat = append(lat, last.Sub(first))
		}
		mu.Unlock()
		if attack {
			res.attackLat = append(res.attackLat, lat...)
			res.attack = append(res.attack, p99(lat))
			res.attackCores += cores / float64(cfg.rounds)
			notes := checkAttackers(ctx, targetNodes, atts)
			for _, n := range notes {
				tb.Log(n)
			}
			res.notes = append(res.notes, notes...)
		} else {
			res.baseLat = append(res.baseLat, lat...)
			res.baseline = append(res.baseline, p99(lat))
			res.baseCores += cores / float64(cfg.rounds)
		}
		for _, a := range atts {
			a.close()
		}
		for _, s := range sinks {
			s.close()
		}
	}
	// No spam in any book: each holds exactly the honest offers.
	for _, p := range nodes {
		var n int
		if err := p.call(ctx, "count", nil, &n); err != nil {
			res.notes = append(res.notes, err.Error())
		} else if n != len(honestIDs) {
			res.notes = append(res.notes, fmt.Sprintf("%s holds %d orders, want the %d honest ones", p.name, n, len(honestIDs)))
		}
	}
	return res
}

// maxSpamJudged bounds how many messages of an attacker a node judges
// before it throttles the attacker: ThrottleAt of ignored ones, plus what
// was already in flight.
const maxSpamJudged = 60

// checkAttackers: every attacker is throttled or banned by every target,
// within maxSpamJudged of its messages.
func checkAttackers(ctx context.Context, targets []*procNode, atts []*attacker) []string {
	var notes []string
	for _, p := range targets {
		for _, a := range atts {
			var st node.SpamState
			err := testnet.Await(ctxTimeout(ctx, 3*time.Second), func() error {
				if err := p.call(ctx, "spam", a.h.ID(), &st); err != nil {
					return err
				}
				if !st.Throttled && !st.Banned && st.Bans == 0 {
					return fmt.Errorf("not throttled")
				}
				return nil
			})
			switch {
			case err != nil:
				notes = append(notes, fmt.Sprintf("%s never throttled the %s attacker (%d sent): %+v (%v)", p.name, a.kind, a.sent, st, err))
			case st.JudgedAtThrottle > maxSpamJudged:
				notes = append(notes, fmt.Sprintf("%s throttled the %s attacker only after %d messages", p.name, a.kind, st.JudgedAtThrottle))
			}
		}
	}
	return notes
}

func ctxTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(c, cancel)
	return c
}

// rawHost is a go-libp2p-pubsub peer on the DE topic with the documented
// settings. An attacker forwards nothing it receives (its validator
// ignores everything), as does a sink. A sink stands in for a node of the
// testnet, so that the attackers' own work is the same in a baseline round
// as in an attack round: it listens on the transports of like, that
// node's addresses (on 127.0.0.1, ports of its own), and it drops and
// refuses each peer banAfter its first message, about when the node would
// ban it (the node throttles within tens of messages and bans after its
// grace period). An attacker listens on TCP and bans nobody (banAfter 0).
func rawHost(tb testing.TB, ctx context.Context, like []ma.Multiaddr, banAfter time.Duration) *attacker {
	listen := []string{"/ip4/127.0.0.1/tcp/0"}
	if like != nil {
		listen = nil
		for _, a := range like {
			if s, err := anyPort(a); err == nil {
				listen = append(listen, s)
			}
		}
	}
	gate := &sinkGate{first: map[peer.ID]bool{}, banned: map[peer.ID]bool{}}
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen...), libp2p.ConnectionGater(gate))
	if err != nil {
		tb.Fatal(err)
	}
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(rawID), pubsub.WithFloodPublish(true),
		pubsub.WithMaxMessageSize(node.MaxRPCSize), pubsub.WithPeerOutboundQueueSize(4096))
	if err != nil {
		tb.Fatal(err)
	}
	name := node.TopicPrefix + "DE"
	if err := ps.RegisterTopicValidator(name, func(_ context.Context, from peer.ID, _ *pubsub.Message) pubsub.ValidationResult {
		if from == h.ID() {
			return pubsub.ValidationAccept // its own publishes
		}
		if banAfter > 0 && gate.firstMessage(from) {
			time.AfterFunc(banAfter, func() {
				gate.ban(from)
				_ = h.Network().ClosePeer(from)
			})
		}
		return pubsub.ValidationIgnore
	}); err != nil {
		tb.Fatal(err)
	}
	topic, err := ps.Join(name)
	if err != nil {
		tb.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		tb.Fatal(err)
	}
	return &attacker{h: h, ps: ps, topic: topic, sub: sub}
}

// sinkGate refuses the peers a sink banned.
type sinkGate struct {
	mu            sync.Mutex
	first, banned map[peer.ID]bool
}

// firstMessage reports whether this is the first message of p.
func (g *sinkGate) firstMessage(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.first[p] {
		return false
	}
	g.first[p] = true
	return true
}

func (g *sinkGate) ban(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.banned[p] = true
}

func (g *sinkGate) ok(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.banned[p]
}

func (g *sinkGate) InterceptPeerDial(p peer.ID) bool                                { return g.ok(p) }
func (g *sinkGate) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool                { return g.ok(p) }
func (g *sinkGate) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (g *sinkGate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
func (g *sinkGate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.ok(p)
}

func (a *attacker) close() {
	a.sub.Cancel()
	_ = a.topic.Close()
	_ = a.h.Close()
}

// flood publishes rate messages a second of the attacker's kind until ctx
// ends, redialling its targets when a node drops it (a banned attacker
// is refused).
func (a *attacker) flood(ctx context.Context, rate int, d orderbook.Domain, unfunded [][]byte, round int, targets []peer.AddrInfo) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	redial := time.NewTicker(time.Second)
	defer redial.Stop()
	rnd := mrand.New(mrand.NewPCG(uint64(round), uint64(len(a.kind))))
	single, _ := ethcrypto.GenerateKey()
	// A valid offer to pad: the attacker makes its own (with the padding
	// bug the id of a padded copy was the offer's digest, so any valid
	// offer the nodes hold, or will, is as good as an honest one).
	k, _ := ethcrypto.GenerateKey()
	base, _ := orderbook.Message{Order: orderbooktest.Sign(orderbooktest.Offer(d, "DE", uint64(round+1), time.Now()), k)}.Encode()
	// ...but it pads the honest offers it receives once it has one: the
	// copies of an accepted offer were free duplicates with the old id
	// (those of a rejected one cost GossipSub score as well).
	var latest atomic.Pointer[[]byte]
	if a.kind == "padded-duplicate" {
		var rwg sync.WaitGroup
		defer rwg.Wait()
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for {
				m, err := a.sub.Next(ctx)
				if err != nil {
					return
				}
				if m.ReceivedFrom != a.h.ID() {
					latest.Store(&m.Data)
				}
			}
		}()
	}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-redial.C:
			for _, ai := range targets {
				if a.h.Network().Connectedness(ai.ID) != network.Connected {
					cctx, cancel := context.WithTimeout(ctx, time.Second)
					_ = a.h.Connect(cctx, ai)
					cancel()
				}
			}
			continue
		case <-tick.C:
		}
		var data []byte
		switch a.kind {
		case "padded-duplicate":
			src := base
			if p := latest.Load(); p != nil {
				src = *p
			}
			data = pad(src, node.MaxRPCSize-len(src)-1024-i%512)
		case "ignore-expired":
			o := orderbooktest.Offer(d, "DE", uint64(i+1), time.Now().Add(-3*time.Hour))
			o.Maker = randomAddress()
			o.Signature = randomBytes(65)
			data, _ = orderbook.Message{Order: o}.Encode()
		case "ignore-unfunded":
			data = pad(unfunded[i%len(unfunded)], round*len(unfunded)+i/len(unfunded)%16)
		case "forger":
			o := orderbooktest.Offer(d, "DE", uint64(1_000_000+i), time.Now())
			o.Maker = ethcrypto.PubkeyToAddress(single.PublicKey)
			o.Signature = randomBytes(65)
			data, _ = orderbook.Message{Order: o}.Encode()
		case "rotating-forger":
			o := orderbooktest.Offer(d, "DE", uint64(i+1), time.Now())
			o.Maker = randomAddress()
			o.Signature = randomBytes(65)
			data, _ = orderbook.Message{Order: o}.Encode()
		case "garbage":
			data = randomBytes(1 + rnd.IntN(1500))
		}
		if a.topic.Publish(ctx, data) == nil {
			a.sent++
		}
	}
}

// anyPort is a listen address on 127.0.0.1 with the transport stack of a
// (tcp or udp/quic-v1, ...) and port 0.
func anyPort(a ma.Multiaddr) (string, error) {
	var out ma.Multiaddr
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_IP4, ma.P_IP6:
			c2, err := ma.NewComponent("ip4", "127.0.0.1")
			if err != nil {
				return "", err
			}
			out = append(out, *c2)
		case ma.P_TCP, ma.P_UDP:
			c2, err := ma.NewComponent(c.Protocol().Name, "0")
			if err != nil {
				return "", err
			}
			out = append(out, *c2)
		case ma.P_P2P:
		default:
			out = append(out, c)
		}
	}
	return out.String(), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomAddress() common.Address { return common.BytesToAddress(randomBytes(20)) }
