package agreement

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/orderbook"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/")

// TestScenarios runs the scripts in testdata/*.txt. Each case is one or
// more command lines (comments start with #), a line "----", and the
// expected output up to the next blank line. With -rewrite the expected
// outputs are regenerated.
//
// Commands:
//
//	config key=value...          before the first party: interval-seconds, interval-bytes,
//	                             proposal-timeout, reservation-timeout, funding-timeout,
//	                             payment-grace, refund-grace, skew, tx-retry (seconds)
//	party NAME...                a machine with a key derived from NAME
//	time T                       set the clock (unix seconds)
//	offer P NAME k=v...          P registers offer NAME: ips capacity hour gb min max expires nonce
//	propose R P OFFER k=v...     R proposes to P's offer: ips start deadline max hour gb nonce
//	deliver                      deliver every message in flight, in order
//	drop                         lose every message in flight
//	offline P                    P is gone: its messages and ticks are dropped
//	tick [P...]                  tick P (or all parties) at the current time
//	mine                         the chain executes the submitted transactions, in order
//	usage P DEAL bytes=N         P's tunnel meters N bytes in total for DEAL
//	step T [bytes=N]             at T: N more bytes metered on every active deal, tick all, deliver
//	close P DEAL                 P closes DEAL
//	show P                       print P's deals
//	balances                     print the escrow accounts
//	fail P KIND [final]          the chain fails P's queued KIND transaction (open, settle,
//	                             refund, cancel) with a passing error, or with a final revert
//	restart P                    P's machine is rebuilt from what it persisted (Restore),
//	                             its offers set again, then Resume at the current time
//	unwind DEAL EVENT            a reorg removes DEAL's EVENT (opened, settled, refunded,
//	                             cancelled): the chain state goes back, both parties are told
//	replay P DEAL                P's chain watcher reports DEAL's Opened (if funded on chain)
//	request-closed R             R's requests are no longer open (late accepts are refused)
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

type scenarioCase struct {
	cmds []string // including comments
	want []string
}

func parseScenario(t *testing.T, path string) []scenarioCase {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []scenarioCase
	var cur scenarioCase
	inOut := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inOut && line == "":
			cases = append(cases, cur)
			cur, inOut = scenarioCase{}, false
		case inOut:
			cur.want = append(cur.want, line)
		case line == "----":
			inOut = true
		case line == "" && len(cur.cmds) == 0:
		default:
			cur.cmds = append(cur.cmds, line)
		}
	}
	if inOut || len(cur.cmds) > 0 {
		cases = append(cases, cur)
	}
	return cases
}

func runScenario(t *testing.T, path string) {
	cases := parseScenario(t, path)
	w := newWorld(t)
	var out bytes.Buffer
	for i, c := range cases {
		var got []string
		for _, cmd := range c.cmds {
			if strings.HasPrefix(cmd, "#") {
				continue
			}
			got = append(got, w.run(cmd)...)
		}
		if len(got) == 0 {
			got = []string{"ok"}
		}
		for _, l := range c.cmds {
			fmt.Fprintln(&out, l)
		}
		fmt.Fprintln(&out, "----")
		for _, l := range got {
			fmt.Fprintln(&out, l)
		}
		fmt.Fprintln(&out)
		if !*rewrite && !slices.Equal(got, c.want) {
			t.Errorf("%s: case %d (%s):\ngot:\n%s\nwant:\n%s", path, i+1, strings.Join(c.cmds, "; "),
				strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type flight struct {
	from, to string
	msg      Message
}

type chainTx struct {
	by string
	tx Tx
}

type world struct {
	t       *testing.T
	cfg     Config
	now     uint64
	names   []string
	parties map[string]*Machine
	addrs   map[common.Address]string
	offline map[string]bool
	offers  map[string]common.Hash
	deals   map[common.Hash]string
	dealIDs []common.Hash
	net     []flight
	txs     []chainTx
	// persisted deals per party, as its Ready asked; and its offers
	saved     map[string]map[common.Hash]Deal
	setOffers map[string][]SetOffer
	closedReq map[string]bool
	terms     map[common.Hash]Terms    // of deals opened on chain
	paidOut   map[common.Hash]*big.Int // settled amounts
	// chain
	status   map[common.Hash]Status
	balance  map[common.Address]*big.Int
	reserved map[common.Address]*big.Int
}

func newWorld(t *testing.T) *world {
	cfg := Config{
		Domain:             testDomain,
		IntervalSeconds:    10,
		IntervalBytes:      1_000_000,
		ProposalTimeout:    15 * time.Second,
		ReservationTimeout: 60 * time.Second,
		FundingTimeout:     30 * time.Second,
		PaymentGrace:       5 * time.Second,
		RefundGrace:        100 * time.Second,
		MaxClockSkew:       30 * time.Second,
		TxRetry:            60 * time.Second,
	}
	return &world{t: t, cfg: cfg, parties: map[string]*Machine{}, addrs: map[common.Address]string{},
		offline: map[string]bool{}, offers: map[string]common.Hash{}, deals: map[common.Hash]string{},
		saved: map[string]map[common.Hash]Deal{}, setOffers: map[string][]SetOffer{}, closedReq: map[string]bool{},
		terms: map[common.Hash]Terms{}, paidOut: map[common.Hash]*big.Int{},
		status: map[common.Hash]Status{}, balance: map[common.Address]*big.Int{}, reserved: map[common.Address]*big.Int{}}
}

func partyKey(name string) KeySigner {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("ipsx-test-party-" + name)))
	if err != nil {
		panic(err)
	}
	return NewKeySigner(k)
}

func (w *world) at() time.Time { return time.Unix(int64(w.now), 0) }

func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

func (w *world) num(m map[string]string, k string, def uint64) uint64 {
	v, ok := m[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		w.t.Fatalf("%s=%s: %v", k, v, err)
	}
	return n
}

func (w *world) big(m map[string]string, k string, def *big.Int) *big.Int {
	v, ok := m[k]
	if !ok {
		return def
	}
	n, ok := new(big.Int).SetString(v, 10)
	if !ok {
		w.t.Fatalf("%s=%s: not a number", k, v)
	}
	return n
}

func (w *world) deal(name string) common.Hash {
	for id, n := range w.deals {
		if n == name {
			return id
		}
	}
	w.t.Fatalf("unknown deal %s", name)
	return common.Hash{}
}

func (w *world) dealName(id common.Hash) string {
	if n, ok := w.deals[id]; ok {
		return n
	}
	n := fmt.Sprintf("d%d", len(w.deals)+1)
	w.deals[id] = n
	w.dealIDs = append(w.dealIDs, id)
	return n
}

// scrub replaces hashes and addresses in text by their names.
func (w *world) scrub(s string) string {
	for _, id := range w.dealIDs {
		s = strings.ReplaceAll(s, id.Hex(), w.deals[id])
	}
	for a, n := range w.addrs {
		s = strings.ReplaceAll(s, a.Hex(), n)
	}
	for n, id := range w.offers {
		s = strings.ReplaceAll(s, id.Hex(), n)
	}
	return s
}

func (w *world) run(cmd string) []string {
	f := strings.Fields(cmd)
	var out []string
	switch f[0] {
	case "config":
		for k, v := range kv(f[1:]) {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				w.t.Fatal(err)
			}
			d := time.Duration(n) * time.Second
			switch k {
			case "interval-seconds":
				w.cfg.IntervalSeconds = n
			case "interval-bytes":
				w.cfg.IntervalBytes = n
			case "proposal-timeout":
				w.cfg.ProposalTimeout = d
			case "reservation-timeout":
				w.cfg.ReservationTimeout = d
			case "funding-timeout":
				w.cfg.FundingTimeout = d
			case "payment-grace":
				w.cfg.PaymentGrace = d
			case "refund-grace":
				w.cfg.RefundGrace = d
			case "skew":
				w.cfg.MaxClockSkew = d
			case "tx-retry":
				w.cfg.TxRetry = d
			default:
				w.t.Fatalf("unknown config %s", k)
			}
		}
	case "party":
		for _, n := range f[1:] {
			cfg := w.cfg
			cfg.Signer = partyKey(n)
			m, err := New(cfg)
			if err != nil {
				w.t.Fatal(err)
			}
			w.parties[n] = m
			w.addrs[cfg.Signer.Address()] = n
			w.names = append(w.names, n)
			w.balance[cfg.Signer.Address()] = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
			w.reserved[cfg.Signer.Address()] = new(big.Int)
		}
		sort.Strings(w.names)
	case "time":
		w.now = w.num(map[string]string{"t": f[1]}, "t", 0)
	case "offer":
		p, name, a := f[1], f[2], kv(f[3:])
		o := &orderbook.Order{Kind: orderbook.KindOffer, Maker: partyKey(p).Address(), Nonce: w.num(a, "nonce", 1),
			IPs: uint32(w.num(a, "ips", 1)), PricePerHour: w.big(a, "hour", big.NewInt(3600)),
			PricePerGB: w.big(a, "gb", big.NewInt(1000)), MinDuration: uint32(w.num(a, "min", 5)),
			MaxDuration: uint32(w.num(a, "max", 86400)), Expires: w.num(a, "expires", w.now+86400)}
		id := crypto.Keccak256Hash([]byte("offer-" + name))
		w.offers[name] = id
		so := SetOffer{At: w.at(), ID: id, Offer: o, Capacity: uint32(w.num(a, "capacity", uint64(o.IPs)))}
		if err := w.parties[p].Step(so); err != nil {
			out = append(out, "error: "+w.scrub(err.Error()))
		} else {
			w.setOffers[p] = append(w.setOffers[p], so)
		}
	case "propose":
		r, p, offer, a := f[1], f[2], f[3], kv(f[4:])
		if _, ok := w.offers[offer]; !ok {
			w.offers[offer] = crypto.Keccak256Hash([]byte("offer-" + offer))
		}
		tm := Terms{OfferID: w.offers[offer], RequestID: crypto.Keccak256Hash([]byte("request-" + r)),
			Provider: partyKey(p).Address(), Requester: partyKey(r).Address(), IPs: uint32(w.num(a, "ips", 1)),
			PricePerIPHour: w.big(a, "hour", big.NewInt(3600)), PricePerGB: w.big(a, "gb", big.NewInt(1000)),
			MaxAmount: w.big(a, "max", big.NewInt(1000)), Start: w.num(a, "start", w.now),
			Deadline: w.num(a, "deadline", w.now+100), Nonce: w.num(a, "nonce", 1)}
		w.dealName(tm.ID(w.cfg.Domain))
		out = append(out, w.step(r, Propose{At: w.at(), Terms: tm})...)
	case "deliver":
		q := w.net
		w.net = nil
		for _, fl := range q {
			if w.offline[fl.to] {
				out = append(out, fmt.Sprintf("%s -> %s: %s lost", fl.from, fl.to, fl.msg.Type()))
				continue
			}
			out = append(out, w.step(fl.to, Receive{At: w.at(), From: partyKey(fl.from).Address(), Msg: fl.msg, RequestOpen: !w.closedReq[fl.to]})...)
		}
	case "drop":
		for _, fl := range w.net {
			out = append(out, fmt.Sprintf("%s -> %s: %s lost", fl.from, fl.to, fl.msg.Type()))
		}
		w.net = nil
	case "offline":
		w.offline[f[1]] = true
	case "tick":
		names := f[1:]
		if len(names) == 0 {
			names = w.names
		}
		for _, n := range names {
			if w.offline[n] {
				continue
			}
			m := w.parties[n]
			if err := m.Tick(w.at()); err != nil {
				out = append(out, n+": error: "+w.scrub(err.Error()))
			}
			out = append(out, w.drain(n, "tick")...)
		}
	case "step":
		// step T [bytes=N]: at T, each online party's tunnel meters N more
		// bytes on each of its active deals, every party ticks, and the
		// messages in flight are delivered.
		w.now = w.num(map[string]string{"t": f[1]}, "t", 0)
		add := w.num(kv(f[2:]), "bytes", 0)
		for _, n := range w.names {
			if w.offline[n] || add == 0 {
				continue
			}
			for _, d := range w.parties[n].Deals() {
				if d.Local() == StatusActive {
					out = append(out, w.step(n, Usage{At: w.at(), DealID: d.ID, Bytes: d.Bytes + add,
						ConnLogHash: crypto.Keccak256Hash([]byte(fmt.Sprint(d.Bytes + add)))})...)
				}
			}
		}
		out = append(out, w.run("tick")...)
		out = append(out, w.run("deliver")...)
	case "usage":
		a := kv(f[3:])
		out = append(out, w.step(f[1], Usage{At: w.at(), DealID: w.deal(f[2]), Bytes: w.num(a, "bytes", 0),
			ConnLogHash: crypto.Keccak256Hash([]byte(f[3]))})...)
	case "close":
		out = append(out, w.step(f[1], CloseDeal{At: w.at(), DealID: w.deal(f[2])})...)
	case "mine":
		q := w.txs
		w.txs = nil
		for _, tx := range q {
			out = append(out, w.mine(tx)...)
		}
	case "fail":
		by, kind := f[1], f[2]
		final := len(f) > 3 && f[3] == "final"
		var keep []chainTx
		for _, c := range w.txs {
			if c.by != by || c.tx.Kind.String() != kind {
				keep = append(keep, c)
				continue
			}
			why := "connection refused"
			if final {
				why = "reverted: InvalidTerms()"
			}
			out = append(out, fmt.Sprintf("chain: %s %s by %s fails: %s", kind, w.dealName(c.tx.DealID), by, why))
			out = append(out, w.step(by, TxFailed{At: w.at(), DealID: c.tx.DealID, Kind: c.tx.Kind, Err: why, Final: final})...)
		}
		w.txs = keep
	case "restart":
		n := f[1]
		cfg := w.cfg
		cfg.Signer = partyKey(n)
		m, err := New(cfg)
		if err != nil {
			w.t.Fatal(err)
		}
		var deals []Deal
		for _, d := range w.saved[n] {
			deals = append(deals, d)
		}
		if err := m.Restore(deals); err != nil {
			w.t.Fatal(err)
		}
		for _, so := range w.setOffers[n] {
			if err := m.Step(so); err != nil {
				w.t.Fatal(err)
			}
		}
		m.Resume(w.at())
		w.parties[n] = m
		delete(w.offline, n)
		out = append(out, w.drain(n, "restart")...)
	case "unwind":
		// The chain state and the escrow accounts go back to before the
		// event; both parties are told.
		id := w.deal(f[1])
		t := w.terms[id]
		back := func(from, to common.Address, v *big.Int) { // undo a credit of v to `to`, debited from `from`
			w.balance[to].Sub(w.balance[to], v)
			w.reserved[from].Add(w.reserved[from], v)
		}
		var ev Event
		switch f[2] {
		case "opened":
			ev = Opened{DealID: id}
			w.status[id] = StatusNone
			w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
			w.balance[t.Requester].Add(w.balance[t.Requester], t.MaxAmount)
		case "settled":
			ev = Settled{DealID: id}
			w.status[id] = StatusFunded
			paid := w.paidOut[id]
			back(t.Requester, t.Provider, paid)
			back(t.Requester, t.Requester, new(big.Int).Sub(t.MaxAmount, paid))
		case "refunded", "cancelled":
			ev = Refunded{DealID: id}
			if f[2] == "cancelled" {
				ev = Cancelled{DealID: id}
			}
			w.status[id] = StatusFunded
			back(t.Requester, t.Requester, t.MaxAmount)
		default:
			w.t.Fatalf("unwind %s", f[2])
		}
		out = append(out, fmt.Sprintf("chain: %s of %s reorged away", f[2], f[1]))
		for _, n := range w.names {
			if _, ok := w.parties[n].Deal(id); ok {
				out = append(out, w.step(n, Unwound{At: w.at(), DealID: id, Event: ev})...)
			}
		}
	case "replay":
		// replay P DEAL: P's chain watcher reports DEAL's chain state now.
		n, id := f[1], w.deal(f[2])
		d, ok := w.parties[n].Deal(id)
		if !ok {
			w.t.Fatalf("%s has no deal %s", n, f[2])
		}
		if w.status[id] == StatusFunded || w.status[id].Terminal() {
			out = append(out, w.step(n, Opened{At: w.at(), DealID: id, MaxAmount: d.Terms.MaxAmount})...)
		}
	case "request-closed":
		w.closedReq[f[1]] = true
	case "show":
		for _, d := range w.parties[f[1]].Deals() {
			out = append(out, fmt.Sprintf("%s: %s", f[1], w.fmtDeal(d)))
		}
	case "balances":
		for _, n := range w.names {
			a := partyKey(n).Address()
			out = append(out, fmt.Sprintf("%s: balance=%s reserved=%s", n, w.balance[a], w.reserved[a]))
		}
	default:
		w.t.Fatalf("unknown command %q", cmd)
	}
	return out
}

func (w *world) step(party string, ev Event) []string {
	if w.offline[party] {
		return nil
	}
	var out []string
	if err := w.parties[party].Step(ev); err != nil {
		out = append(out, fmt.Sprintf("%s: %s: error: %s", party, ev.name(), w.scrub(err.Error())))
	}
	return append(out, w.drain(party, ev.name())...)
}

// drain prints and acts on party's Ready, then advances it.
func (w *world) drain(party, what string) []string {
	m := w.parties[party]
	if !m.HasReady() {
		return nil
	}
	rd := m.Ready()
	out := []string{fmt.Sprintf("%s: %s", party, what)}
	for _, u := range rd.Deals {
		if w.saved[party] == nil {
			w.saved[party] = map[common.Hash]Deal{}
		}
		w.saved[party][u.Deal.ID] = u.Deal.Clone()
		for _, h := range u.History {
			line := fmt.Sprintf("  %s %s: %s -> %s, deal %s", w.dealName(u.Deal.ID), u.Deal.Role, h.From, h.To, h.Status)
			if h.Reason != "" {
				line += " (" + string(h.Reason) + ")"
			}
			if h.Detail != "" {
				line += " [" + h.Detail + "]"
			}
			out = append(out, line)
		}
		out = append(out, "  persist "+w.fmtDeal(u.Deal))
	}
	for _, e := range rd.Messages {
		to := w.addrs[e.To]
		out = append(out, fmt.Sprintf("  send %s %s", to, w.fmtMsg(e.Msg)))
		// Every message goes through the wire encoding.
		b, err := Encode(e.Msg)
		if err != nil {
			w.t.Fatalf("encode %T: %v", e.Msg, err)
		}
		msg, err := Decode(b)
		if err != nil {
			w.t.Fatalf("decode %s: %v", b, err)
		}
		w.net = append(w.net, flight{from: party, to: to, msg: msg})
	}
	for _, tx := range rd.Txs {
		line := fmt.Sprintf("  submit %s %s", tx.Kind, w.dealName(tx.DealID))
		if tx.Voucher != nil {
			line += " amount=" + tx.Voucher.Voucher.Amount.String()
		}
		out = append(out, line)
		w.txs = append(w.txs, chainTx{by: party, tx: tx})
	}
	for _, r := range rd.Reservations {
		verb := "release"
		if r.Take {
			verb = "reserve"
		}
		out = append(out, fmt.Sprintf("  %s %d IP of pool %d for %s", verb, r.IPs, r.Pool, w.dealName(r.DealID)))
	}
	for _, p := range rd.Permissions {
		verb := "revoke"
		if p.Allow {
			verb = "grant"
		}
		out = append(out, fmt.Sprintf("  %s tunnel %s %s %s", verb, w.dealName(p.DealID), p.Role, w.addrs[p.Peer]))
	}
	for _, r := range rd.Retries {
		out = append(out, fmt.Sprintf("  next candidate after %s (%s)", w.dealName(r.DealID), r.Reason))
	}
	m.Advance()
	if m.HasReady() {
		w.t.Fatal("Ready not empty after Advance")
	}
	return out
}

func (w *world) fmtDeal(d Deal) string {
	s := fmt.Sprintf("%s as %s: deal=%s provider=%s requester=%s", w.dealName(d.ID), d.Role, d.Status(), d.Provider, d.Requester)
	if d.Reason != "" {
		s += " reason=" + string(d.Reason)
	}
	if d.Chain != StatusNone {
		s += " chain=" + d.Chain.String()
	}
	if d.Reserved {
		s += " reserved"
	}
	if d.Serving {
		s += " serving"
	}
	if d.Voucher != nil {
		s += fmt.Sprintf(" paid=%s", d.Voucher.Voucher.Amount)
	}
	if d.Bytes != 0 {
		s += fmt.Sprintf(" bytes=%d", d.Bytes)
	}
	if d.Pending != TxNone {
		s += " pending=" + d.Pending.String()
	}
	if d.SettledAmount != nil {
		s += " settled=" + d.SettledAmount.String()
	}
	return s
}

func (w *world) fmtMsg(m Message) string {
	switch m := m.(type) {
	case *Proposal:
		return "proposal " + w.dealName(m.Terms.ID(w.cfg.Domain))
	case *Accept:
		return "accept " + w.dealName(m.DealID)
	case *Reject:
		return fmt.Sprintf("reject %s %s %q", w.dealName(m.DealID), m.Reason, m.Detail)
	case *SignedVoucher:
		return fmt.Sprintf("voucher %s amount=%s bytes=%d", w.dealName(m.Voucher.DealID), m.Voucher.Amount, m.Voucher.Bytes)
	case *Close:
		s := fmt.Sprintf("close %s %s", w.dealName(m.DealID), m.Reason)
		if m.CancelSig != nil {
			s += " +cancel-sig"
		}
		return s
	}
	return fmt.Sprintf("%T", m)
}

// mine executes one transaction the way chain/contracts/Escrow.sol does
// (commission 0) and reports the event to both parties, or the failure to
// the submitter.
func (w *world) mine(c chainTx) []string {
	tx, dom := c.tx, w.cfg.Domain
	t := tx.Terms
	id := t.ID(dom)
	fail := func(why string) []string {
		out := []string{fmt.Sprintf("chain: %s %s by %s fails: %s", tx.Kind, w.dealName(id), c.by, why)}
		// What the contract refuses is final, except a refund asked early.
		final := why != "refund too early"
		return append(out, w.step(c.by, TxFailed{At: w.at(), DealID: id, Kind: tx.Kind, Err: why, Final: final})...)
	}
	var ev Event
	switch tx.Kind {
	case TxOpen:
		if w.status[id] != StatusNone {
			return fail("deal exists")
		}
		if t.Deadline <= w.now {
			return fail("invalid terms")
		}
		if err := t.VerifySignatures(dom, tx.ProviderSig, tx.RequesterSig); err != nil {
			return fail(err.Error())
		}
		if w.balance[t.Requester].Cmp(t.MaxAmount) < 0 {
			return fail("insufficient balance")
		}
		w.balance[t.Requester].Sub(w.balance[t.Requester], t.MaxAmount)
		w.reserved[t.Requester].Add(w.reserved[t.Requester], t.MaxAmount)
		w.status[id] = StatusFunded
		w.terms[id] = t
		ev = Opened{At: w.at(), DealID: id, MaxAmount: t.MaxAmount}
	case TxSettle:
		v := tx.Voucher
		if w.status[id] != StatusFunded {
			return fail("deal not open")
		}
		if partyKey(c.by).Address() != t.Provider || v.Voucher.DealID != id || v.Voucher.Amount.Cmp(t.MaxAmount) > 0 {
			return fail("bad settle")
		}
		if err := Verify(v.Voucher.Digest(dom), v.Signature, t.Requester); err != nil {
			return fail(err.Error())
		}
		w.status[id] = StatusSettled
		w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
		w.balance[t.Requester].Add(w.balance[t.Requester], new(big.Int).Sub(t.MaxAmount, v.Voucher.Amount))
		w.balance[t.Provider].Add(w.balance[t.Provider], v.Voucher.Amount)
		w.paidOut[id] = new(big.Int).Set(v.Voucher.Amount)
		ev = Settled{At: w.at(), DealID: id, Amount: v.Voucher.Amount, Commission: new(big.Int), Bytes: v.Voucher.Bytes, ConnLogHash: v.Voucher.ConnLogHash}
	case TxRefund:
		if w.status[id] != StatusFunded {
			return fail("deal not open")
		}
		if w.now < t.Deadline+secs(w.cfg.RefundGrace) {
			return fail("refund too early")
		}
		w.status[id] = StatusRefunded
		w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
		w.balance[t.Requester].Add(w.balance[t.Requester], t.MaxAmount)
		ev = Refunded{At: w.at(), DealID: id, Amount: t.MaxAmount}
	case TxCancel:
		if w.status[id] != StatusFunded {
			return fail("deal not open")
		}
		cd := CancelDigest(dom, id)
		if Verify(cd, tx.ProviderSig, t.Provider) != nil || Verify(cd, tx.RequesterSig, t.Requester) != nil {
			return fail("bad cancel signatures")
		}
		w.status[id] = StatusCancelled
		w.reserved[t.Requester].Sub(w.reserved[t.Requester], t.MaxAmount)
		w.balance[t.Requester].Add(w.balance[t.Requester], t.MaxAmount)
		ev = Cancelled{At: w.at(), DealID: id}
	}
	out := []string{fmt.Sprintf("chain: %s %s by %s", tx.Kind, w.dealName(id), c.by)}
	for _, a := range []common.Address{t.Provider, t.Requester} {
		out = append(out, w.step(w.addrs[a], ev)...)
	}
	return out
}
