package node

import (
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// SpamLimits is what gossip spam costs a peer. Every message the validator
// judges spends from the peer's budget: an Ignore (stale, expired,
// duplicate, unaffordable, rate-limited, dropped for a full queue) costs
// IgnoreCost, a Reject (malformed, oversized, forged; GossipSub's score
// penalty applies too) RejectCost, and an accepted first delivery earns
// AcceptCredit back. What a peer has spent decays with time constant
// Decay. A peer whose spending, net of its credit, reaches ThrottleAt is
// throttled: its messages are dropped before they are read (each drop
// costs IgnoreCost, so a peer that keeps sending stays throttled). A peer
// throttled for Grace, or graylisted by GossipSub score for Grace, or
// whose net spending reaches BanAt, is disconnected and its connections
// refused for Backoff, doubled for each later ban up to MaxBackoff.
//
// An honest relay forwards only what it accepted itself, so what it
// spends is the rare race (an order its peer already had from order sync,
// a heartbeat that went stale on the way): far inside the budget.
type SpamLimits struct {
	IgnoreCost   float64
	RejectCost   float64
	AcceptCredit float64
	ThrottleAt   float64
	BanAt        float64
	Decay        time.Duration
	Grace        time.Duration
	Backoff      time.Duration
	MaxBackoff   time.Duration
}

// DefaultSpamLimits: a peer is throttled after about 20 ignored or 5
// rejected messages in a row (fewer when they come in a burst), cut off
// after 10 s of that or 100 ignored ones, and kept out for a minute, then
// 2, 4, ... up to an hour.
func DefaultSpamLimits() SpamLimits {
	return SpamLimits{
		IgnoreCost: 1, RejectCost: 4, AcceptCredit: 1,
		ThrottleAt: 20, BanAt: 100,
		Decay: 10 * time.Second, Grace: 10 * time.Second,
		Backoff: time.Minute, MaxBackoff: time.Hour,
	}
}

func (l SpamLimits) valid() bool {
	return l.IgnoreCost > 0 && l.RejectCost > 0 && l.AcceptCredit >= 0 &&
		l.ThrottleAt > 0 && l.BanAt >= l.ThrottleAt && l.Decay > 0 && l.Grace > 0 &&
		l.Backoff > 0 && l.MaxBackoff >= l.Backoff
}

// WithSpamLimits sets what gossip spam costs a peer (DefaultSpamLimits).
func WithSpamLimits(l SpamLimits) Option { return func(o *options) { o.spam = l } }

// spamGuard keeps each peer's spam budget and the peers it banned. It is
// also the host's connection gater: a banned peer's connections are
// refused, both ways, until its ban ends. Safe for concurrent use.
type spamGuard struct {
	lim SpamLimits
	now func() time.Time

	mu     sync.Mutex // guards peers and bans
	peers  map[peer.ID]*peerSpend
	bans   map[peer.ID]*ban
	banned func(peer.ID, time.Duration, string) // told each new ban (disconnects the peer)
}

// peerSpend is one peer's budget.
type peerSpend struct {
	spent     float64 // decayed cost, net of credit, never below 0
	at        time.Time
	judged    int       // messages judged (or dropped) from the peer
	throttled time.Time // since when; zero if not
	grayed    time.Time // graylisted since when; zero if not
	// judgedAtThrottle is judged when the peer was first throttled.
	judgedAtThrottle int
}

type ban struct {
	until time.Time
	count int // bans so far: the backoff doubles with each
}

const maxSpendPeers = 100_000

func newSpamGuard(lim SpamLimits, now func() time.Time) *spamGuard {
	return &spamGuard{lim: lim, now: now, peers: map[peer.ID]*peerSpend{}, bans: map[peer.ID]*ban{}}
}

// get returns p's budget, decayed to now. g.mu must be held.
func (g *spamGuard) get(p peer.ID, now time.Time) *peerSpend {
	s, ok := g.peers[p]
	if !ok {
		if len(g.peers) >= maxSpendPeers {
			g.forgetQuiet(now)
		}
		s = &peerSpend{at: now}
		g.peers[p] = s
		return s
	}
	if dt := now.Sub(s.at); dt > 0 {
		s.spent *= math.Exp(-float64(dt) / float64(g.lim.Decay))
		s.at = now
	}
	if !s.throttled.IsZero() && s.spent < g.lim.ThrottleAt/2 {
		s.throttled = time.Time{} // quiet long enough: on probation again
	}
	return s
}

// forgetQuiet drops the budgets of peers that are neither throttled nor
// graylisted (bounding memory against peer churn). g.mu must be held.
func (g *spamGuard) forgetQuiet(now time.Time) {
	for p, s := range g.peers {
		if s.throttled.IsZero() && s.grayed.IsZero() {
			delete(g.peers, p)
		}
	}
}

// admit reports whether p's next message may be read: false while p is
// throttled or banned, and the drop is charged to it.
func (g *spamGuard) admit(p peer.ID) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.get(p, now)
	if s.throttled.IsZero() {
		if b, ok := g.bans[p]; !ok || !now.Before(b.until) {
			return true
		}
	}
	g.spendLocked(p, s, g.lim.IgnoreCost, now)
	return false
}

// throttledNow reports whether p is throttled or banned (without charging).
func (g *spamGuard) throttledNow(p peer.ID) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.bans[p]; ok && now.Before(b.until) {
		return true
	}
	s, ok := g.peers[p]
	return ok && !s.throttled.IsZero()
}

// ignored and rejected charge p for a message; accepted credits it.
func (g *spamGuard) ignored(p peer.ID)  { g.spend(p, g.lim.IgnoreCost) }
func (g *spamGuard) rejected(p peer.ID) { g.spend(p, g.lim.RejectCost) }
func (g *spamGuard) accepted(p peer.ID) { g.spend(p, -g.lim.AcceptCredit) }

func (g *spamGuard) spend(p peer.ID, cost float64) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.spendLocked(p, g.get(p, now), cost, now)
}

// spendLocked charges s (p's budget) and throttles or bans p as its
// spending says. g.mu must be held.
func (g *spamGuard) spendLocked(p peer.ID, s *peerSpend, cost float64, now time.Time) {
	s.judged++
	s.spent = max(0, s.spent+cost)
	if s.spent >= g.lim.ThrottleAt && s.throttled.IsZero() {
		s.throttled = now
		if s.judgedAtThrottle == 0 {
			s.judgedAtThrottle = s.judged
		}
	}
	if s.spent >= g.lim.BanAt {
		g.banLocked(p, now, "over its spam budget")
	}
}

// graylisted records which peers GossipSub's score graylists now.
func (g *spamGuard) graylisted(gray map[peer.ID]bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for p := range gray {
		if s := g.get(p, now); s.grayed.IsZero() {
			s.grayed = now
		}
	}
	for p, s := range g.peers {
		if !gray[p] {
			s.grayed = time.Time{}
		}
	}
}

// sweep bans the peers throttled or graylisted for longer than the grace
// period, and forgets bans that ended long ago.
func (g *spamGuard) sweep() {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for p, s := range g.peers {
		s = g.get(p, now)
		switch {
		case !s.throttled.IsZero() && now.Sub(s.throttled) >= g.lim.Grace:
			g.banLocked(p, now, "throttled past the grace period")
		case !s.grayed.IsZero() && now.Sub(s.grayed) >= g.lim.Grace:
			g.banLocked(p, now, "graylisted past the grace period")
		}
	}
	for p, b := range g.bans {
		// Past twice the longest backoff, a ban's count no longer matters.
		if now.Sub(b.until) > 2*g.lim.MaxBackoff {
			delete(g.bans, p)
		}
	}
}

// banLocked bans p (unless it is banned already) and resets its budget, so
// that it starts over on probation when the ban ends. g.mu must be held.
func (g *spamGuard) banLocked(p peer.ID, now time.Time, why string) {
	b, ok := g.bans[p]
	if ok && now.Before(b.until) {
		return
	}
	if !ok {
		b = &ban{}
		g.bans[p] = b
	}
	d := g.lim.Backoff
	for i := 0; i < b.count && d < g.lim.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, g.lim.MaxBackoff)
	b.count++
	b.until = now.Add(d)
	if s, ok := g.peers[p]; ok {
		s.spent, s.throttled, s.grayed = 0, time.Time{}, time.Time{}
	}
	if g.banned != nil {
		g.banned(p, d, why)
	}
}

// isBanned reports whether p's connections are refused now.
func (g *spamGuard) isBanned(p peer.ID) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.bans[p]
	return ok && now.Before(b.until)
}

// SpamState is what a node's spam guard knows of a peer.
type SpamState struct {
	Spent     float64 // budget spent, net of credit, decayed to now
	Judged    int     // messages judged or dropped
	Throttled bool
	// JudgedAtThrottle is how many messages had been judged when the peer
	// was first throttled (0: never).
	JudgedAtThrottle int
	Banned           bool
	Bans             int
}

// SpamState reports the spam guard's view of p.
func (n *Node) SpamState(p peer.ID) SpamState {
	g := n.guard
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var st SpamState
	if _, ok := g.peers[p]; ok {
		s := g.get(p, now)
		st.Spent, st.Judged, st.Throttled, st.JudgedAtThrottle = s.spent, s.judged, !s.throttled.IsZero(), s.judgedAtThrottle
	}
	if b, ok := g.bans[p]; ok {
		st.Banned, st.Bans = now.Before(b.until), b.count
	}
	return st
}

// The connection gater: a banned peer is neither dialled nor let in.

func (g *spamGuard) InterceptPeerDial(p peer.ID) bool { return !g.isBanned(p) }

func (g *spamGuard) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.isBanned(p) }

func (g *spamGuard) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *spamGuard) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.isBanned(p)
}

func (g *spamGuard) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

var _ connmgr.ConnectionGater = (*spamGuard)(nil)
