package agreement

import (
	"errors"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/orderbook"
)

func testConfig(s Signer) Config {
	c := DefaultConfig(s, testDomain)
	c.IntervalSeconds, c.IntervalBytes = 10, 1_000_000
	c.ProposalTimeout, c.ReservationTimeout, c.FundingTimeout = 15*time.Second, 60*time.Second, 30*time.Second
	c.PaymentGrace, c.RefundGrace, c.MaxClockSkew, c.TxRetry = 5*time.Second, 100*time.Second, 30*time.Second, 60*time.Second
	return c
}

// pair is a provider and a requester machine wired back to back.
type pair struct {
	t          *testing.T
	p, r       *Machine
	ps, rs     KeySigner
	now        uint64
	tm         Terms
	id         common.Hash
	toP, toR   []Message
	txs        []Tx
	pOff, rOff bool
}

var testOfferID = crypto.Keccak256Hash([]byte("offer"))

func newPair(t *testing.T, start uint64, capacity uint32) *pair {
	t.Helper()
	x := &pair{t: t, ps: partyKey("p"), rs: partyKey("r"), now: 1000}
	var err error
	if x.p, err = New(testConfig(x.ps)); err != nil {
		t.Fatal(err)
	}
	if x.r, err = New(testConfig(x.rs)); err != nil {
		t.Fatal(err)
	}
	o := &orderbook.Order{Kind: orderbook.KindOffer, Maker: x.ps.Address(), Nonce: 1, IPs: 1,
		PricePerHour: big.NewInt(3600), PricePerGB: big.NewInt(10000), MinDuration: 5, MaxDuration: 86400, Expires: 100000}
	x.must(x.p.Step(SetOffer{At: x.at(), ID: testOfferID, Offer: o, Capacity: capacity}))
	x.tm = Terms{OfferID: testOfferID, RequestID: common.Hash{2}, Provider: x.ps.Address(), Requester: x.rs.Address(),
		IPs: 1, PricePerIPHour: big.NewInt(3600), PricePerGB: big.NewInt(10000), MaxAmount: big.NewInt(300),
		Start: start, Deadline: 1100, Nonce: 1}
	x.id = x.tm.ID(testDomain)
	return x
}

func (x *pair) at() time.Time { return time.Unix(int64(x.now), 0) }

func (x *pair) must(err error) {
	x.t.Helper()
	if err != nil {
		x.t.Fatal(err)
	}
}

// flush collects both machines' output.
func (x *pair) flush() {
	for _, m := range []*Machine{x.p, x.r} {
		rd := m.Ready()
		for _, e := range rd.Messages {
			if e.To == x.ps.Address() {
				x.toP = append(x.toP, e.Msg)
			} else {
				x.toR = append(x.toR, e.Msg)
			}
		}
		x.txs = append(x.txs, rd.Txs...)
		m.Advance()
	}
}

func (x *pair) step(m *Machine, ev Event) { x.t.Helper(); x.must(m.Step(ev)); x.flush() }

func (x *pair) deliverP() {
	q := x.toP
	x.toP = nil
	for _, msg := range q {
		if !x.pOff {
			x.step(x.p, Receive{At: x.at(), From: x.rs.Address(), Msg: msg})
		}
	}
}

func (x *pair) deliverR() {
	q := x.toR
	x.toR = nil
	for _, msg := range q {
		if !x.rOff {
			x.step(x.r, Receive{At: x.at(), From: x.ps.Address(), Msg: msg})
		}
	}
}

func (x *pair) deliver() {
	for len(x.toP)+len(x.toR) > 0 {
		x.deliverP()
		x.deliverR()
	}
}

func (x *pair) chain(ev Event) {
	if !x.pOff {
		x.step(x.p, ev)
	}
	if !x.rOff {
		x.step(x.r, ev)
	}
}

func (x *pair) tick(m *Machine, now uint64) {
	x.now = now
	x.must(m.Tick(x.at()))
	x.flush()
}

func (x *pair) propose() { x.step(x.r, Propose{At: x.at(), Terms: x.tm}) }

func (x *pair) open() {
	x.txs = nil
	x.chain(Opened{At: x.at(), DealID: x.id, MaxAmount: x.tm.MaxAmount})
}

func (x *pair) active() {
	x.propose()
	x.deliver()
	x.open()
	x.deliver()
	x.now++
	x.step(x.r, Usage{At: x.at(), DealID: x.id, Bytes: 5000})
	if !x.pOff {
		x.step(x.p, Usage{At: x.at(), DealID: x.id, Bytes: 5000})
	}
	x.deliver()
}

type stateBuild struct {
	role  Role
	state Status
	build func(x *pair) *Machine
	start uint64
}

// states builds a deal in every state each side can hold it in. (The
// provider never stores a proposed or rejected deal: it answers a proposal
// at once, and rejections are not kept.)
var states = []stateBuild{
	{RoleRequester, StatusProposed, func(x *pair) *Machine { x.propose(); return x.r }, 1000},
	{RoleRequester, StatusAccepted, func(x *pair) *Machine { x.propose(); x.deliver(); return x.r }, 1000},
	{RoleRequester, StatusRejected, func(x *pair) *Machine { x.propose(); x.deliver(); return x.r }, 1000},
	{RoleRequester, StatusFunded, func(x *pair) *Machine { x.propose(); x.deliver(); x.open(); return x.r }, 1020},
	{RoleRequester, StatusActive, func(x *pair) *Machine { x.active(); return x.r }, 1000},
	{RoleRequester, StatusCompleted, func(x *pair) *Machine {
		x.active()
		x.step(x.r, CloseDeal{At: x.at(), DealID: x.id})
		return x.r
	}, 1000},
	{RoleRequester, StatusSettled, func(x *pair) *Machine {
		x.active()
		x.step(x.r, CloseDeal{At: x.at(), DealID: x.id})
		x.deliver()
		x.chain(Settled{At: x.at(), DealID: x.id, Amount: big.NewInt(20), Commission: new(big.Int)})
		return x.r
	}, 1000},
	{RoleRequester, StatusRefunded, func(x *pair) *Machine {
		x.pOff = true
		x.active()
		x.tick(x.r, 1100)
		x.tick(x.r, 1200)
		x.chain(Refunded{At: x.at(), DealID: x.id, Amount: x.tm.MaxAmount})
		return x.r
	}, 1000},
	{RoleRequester, StatusCancelled, func(x *pair) *Machine {
		x.propose()
		x.step(x.r, CloseDeal{At: x.at(), DealID: x.id})
		return x.r
	}, 1000},
	{RoleRequester, StatusExpired, func(x *pair) *Machine { x.propose(); x.tick(x.r, 1015); return x.r }, 1000},

	{RoleProvider, StatusAccepted, func(x *pair) *Machine { x.propose(); x.deliverP(); return x.p }, 1000},
	{RoleProvider, StatusFunded, func(x *pair) *Machine { x.propose(); x.deliver(); x.open(); return x.p }, 1020},
	{RoleProvider, StatusActive, func(x *pair) *Machine { x.active(); return x.p }, 1000},
	{RoleProvider, StatusCompleted, func(x *pair) *Machine {
		x.active()
		x.step(x.p, CloseDeal{At: x.at(), DealID: x.id})
		return x.p
	}, 1000},
	{RoleProvider, StatusSettled, func(x *pair) *Machine {
		x.active()
		x.step(x.p, CloseDeal{At: x.at(), DealID: x.id})
		x.chain(Settled{At: x.at(), DealID: x.id, Amount: big.NewInt(20), Commission: new(big.Int)})
		return x.p
	}, 1000},
	{RoleProvider, StatusRefunded, func(x *pair) *Machine {
		x.active()
		x.step(x.p, CloseDeal{At: x.at(), DealID: x.id})
		x.now = 1200
		x.chain(Refunded{At: x.at(), DealID: x.id, Amount: x.tm.MaxAmount})
		return x.p
	}, 1000},
	{RoleProvider, StatusCancelled, func(x *pair) *Machine {
		x.propose()
		x.deliverP()
		x.step(x.r, CloseDeal{At: x.at(), DealID: x.id})
		x.deliverP()
		return x.p
	}, 1000},
	{RoleProvider, StatusExpired, func(x *pair) *Machine { x.propose(); x.deliverP(); x.tick(x.p, 1060); return x.p }, 1000},
}

// events are applied to each state. They are built against the pair so
// that signatures are valid; what is refused is refused by state.
var events = []struct {
	name string
	ev   func(x *pair, m *Machine) Event
}{
	{"propose", func(x *pair, m *Machine) Event { return Propose{At: x.at(), Terms: x.tm} }},
	{"close", func(x *pair, m *Machine) Event { return CloseDeal{At: x.at(), DealID: x.id} }},
	{"recv-proposal", func(x *pair, m *Machine) Event {
		sig, _ := x.tm.Sign(testDomain, x.rs.key)
		return x.from(m, &Proposal{Terms: x.tm, RequesterSig: sig})
	}},
	{"recv-accept", func(x *pair, m *Machine) Event {
		sig, _ := x.tm.Sign(testDomain, x.ps.key)
		return x.from(m, &Accept{DealID: x.id, ProviderSig: sig})
	}},
	{"recv-reject", func(x *pair, m *Machine) Event {
		return x.from(m, &Reject{DealID: x.id, Reason: ReasonNoCapacity})
	}},
	{"recv-voucher", func(x *pair, m *Machine) Event {
		d, _ := m.Deal(x.id)
		amount := new(big.Int).Add(d.Paid(), big.NewInt(1))
		v := Voucher{DealID: x.id, Amount: amount, Bytes: d.Bytes}
		sig, _ := v.Sign(testDomain, x.rs.key)
		return x.from(m, &SignedVoucher{Voucher: v, Signature: sig})
	}},
	{"recv-close", func(x *pair, m *Machine) Event {
		return x.from(m, &Close{DealID: x.id, Reason: ReasonClosed})
	}},
	{"opened", func(x *pair, m *Machine) Event {
		return Opened{At: x.at(), DealID: x.id, MaxAmount: x.tm.MaxAmount}
	}},
	{"settled", func(x *pair, m *Machine) Event {
		return Settled{At: x.at(), DealID: x.id, Amount: big.NewInt(20), Commission: new(big.Int)}
	}},
	{"refunded", func(x *pair, m *Machine) Event {
		return Refunded{At: x.at(), DealID: x.id, Amount: x.tm.MaxAmount}
	}},
	{"cancelled", func(x *pair, m *Machine) Event { return Cancelled{At: x.at(), DealID: x.id} }},
	{"settle-failed", func(x *pair, m *Machine) Event {
		return TxFailed{At: x.at(), DealID: x.id, Kind: TxSettle, Err: "reverted"}
	}},
	{"usage", func(x *pair, m *Machine) Event {
		d, _ := m.Deal(x.id)
		return Usage{At: x.at(), DealID: x.id, Bytes: d.Bytes + 1000}
	}},
	{"usage-decreasing", func(x *pair, m *Machine) Event {
		d, _ := m.Deal(x.id)
		if d.Bytes == 0 {
			return Usage{At: x.at(), DealID: x.id, Bytes: 0}
		}
		return Usage{At: x.at(), DealID: x.id, Bytes: d.Bytes - 1}
	}},
	{"tick", nil},
	{"tick-timeout", nil},
}

// from is a message from m's counterparty.
func (x *pair) from(m *Machine, msg Message) Event {
	peer := x.ps.Address()
	if m == x.p {
		peer = x.rs.Address()
	}
	return Receive{At: x.at(), From: peer, Msg: msg}
}

// stateTable is what each event does in each state: the local status after
// ("=" means unchanged and nothing to do), or the error. Every cell of
// states × events is listed.
var stateTable = map[string]string{
	"provider/accepted/cancelled":          "cancelled",
	"provider/accepted/close":              "cancelled",
	"provider/accepted/opened":             "funded",
	"provider/accepted/propose":            "err: agreement: not a party to the deal",
	"provider/accepted/recv-accept":        "err: agreement: event is for the other side of the deal",
	"provider/accepted/recv-close":         "cancelled",
	"provider/accepted/recv-proposal":      "accepted",
	"provider/accepted/recv-reject":        "err: agreement: event is for the other side of the deal",
	"provider/accepted/recv-voucher":       "accepted",
	"provider/accepted/refunded":           "refunded",
	"provider/accepted/settle-failed":      "err: agreement: event not allowed in this state",
	"provider/accepted/settled":            "settled",
	"provider/accepted/tick":               "=",
	"provider/accepted/tick-timeout":       "expired",
	"provider/accepted/usage":              "err: agreement: event not allowed in this state",
	"provider/accepted/usage-decreasing":   "err: agreement: event not allowed in this state",
	"provider/active/cancelled":            "cancelled",
	"provider/active/close":                "completed",
	"provider/active/opened":               "=",
	"provider/active/propose":              "err: agreement: not a party to the deal",
	"provider/active/recv-accept":          "err: agreement: event is for the other side of the deal",
	"provider/active/recv-close":           "completed",
	"provider/active/recv-proposal":        "err: agreement: deal already exists",
	"provider/active/recv-reject":          "err: agreement: event is for the other side of the deal",
	"provider/active/recv-voucher":         "active",
	"provider/active/refunded":             "refunded",
	"provider/active/settle-failed":        "err: agreement: event not allowed in this state",
	"provider/active/settled":              "settled",
	"provider/active/tick":                 "=",
	"provider/active/tick-timeout":         "completed",
	"provider/active/usage":                "active",
	"provider/active/usage-decreasing":     "err: agreement: metered bytes decrease",
	"provider/cancelled/cancelled":         "cancelled",
	"provider/cancelled/close":             "err: agreement: deal is over",
	"provider/cancelled/opened":            "completed",
	"provider/cancelled/propose":           "err: agreement: not a party to the deal",
	"provider/cancelled/recv-accept":       "err: agreement: event is for the other side of the deal",
	"provider/cancelled/recv-close":        "=",
	"provider/cancelled/recv-proposal":     "err: agreement: deal already exists",
	"provider/cancelled/recv-reject":       "err: agreement: event is for the other side of the deal",
	"provider/cancelled/recv-voucher":      "err: agreement: event not allowed in this state",
	"provider/cancelled/refunded":          "refunded",
	"provider/cancelled/settle-failed":     "err: agreement: event not allowed in this state",
	"provider/cancelled/settled":           "settled",
	"provider/cancelled/tick":              "=",
	"provider/cancelled/tick-timeout":      "=",
	"provider/cancelled/usage":             "err: agreement: event not allowed in this state",
	"provider/cancelled/usage-decreasing":  "err: agreement: event not allowed in this state",
	"provider/completed/cancelled":         "cancelled",
	"provider/completed/close":             "=",
	"provider/completed/opened":            "=",
	"provider/completed/propose":           "err: agreement: not a party to the deal",
	"provider/completed/recv-accept":       "err: agreement: event is for the other side of the deal",
	"provider/completed/recv-close":        "completed",
	"provider/completed/recv-proposal":     "err: agreement: deal already exists",
	"provider/completed/recv-reject":       "err: agreement: event is for the other side of the deal",
	"provider/completed/recv-voucher":      "=",
	"provider/completed/refunded":          "refunded",
	"provider/completed/settle-failed":     "completed",
	"provider/completed/settled":           "settled",
	"provider/completed/tick":              "=",
	"provider/completed/tick-timeout":      "completed",
	"provider/completed/usage":             "completed",
	"provider/completed/usage-decreasing":  "err: agreement: metered bytes decrease",
	"provider/expired/cancelled":           "cancelled",
	"provider/expired/close":               "err: agreement: deal is over",
	"provider/expired/opened":              "completed",
	"provider/expired/propose":             "err: agreement: not a party to the deal",
	"provider/expired/recv-accept":         "err: agreement: event is for the other side of the deal",
	"provider/expired/recv-close":          "=",
	"provider/expired/recv-proposal":       "err: agreement: deal already exists",
	"provider/expired/recv-reject":         "err: agreement: event is for the other side of the deal",
	"provider/expired/recv-voucher":        "err: agreement: event not allowed in this state",
	"provider/expired/refunded":            "refunded",
	"provider/expired/settle-failed":       "err: agreement: event not allowed in this state",
	"provider/expired/settled":             "settled",
	"provider/expired/tick":                "=",
	"provider/expired/tick-timeout":        "=",
	"provider/expired/usage":               "err: agreement: event not allowed in this state",
	"provider/expired/usage-decreasing":    "err: agreement: event not allowed in this state",
	"provider/funded/cancelled":            "cancelled",
	"provider/funded/close":                "completed",
	"provider/funded/opened":               "=",
	"provider/funded/propose":              "err: agreement: not a party to the deal",
	"provider/funded/recv-accept":          "err: agreement: event is for the other side of the deal",
	"provider/funded/recv-close":           "completed",
	"provider/funded/recv-proposal":        "err: agreement: deal already exists",
	"provider/funded/recv-reject":          "err: agreement: event is for the other side of the deal",
	"provider/funded/recv-voucher":         "funded",
	"provider/funded/refunded":             "refunded",
	"provider/funded/settle-failed":        "err: agreement: event not allowed in this state",
	"provider/funded/settled":              "settled",
	"provider/funded/tick":                 "=",
	"provider/funded/tick-timeout":         "completed",
	"provider/funded/usage":                "err: agreement: event not allowed in this state",
	"provider/funded/usage-decreasing":     "err: agreement: event not allowed in this state",
	"provider/refunded/cancelled":          "err: agreement: deal is over",
	"provider/refunded/close":              "err: agreement: deal is over",
	"provider/refunded/opened":             "=",
	"provider/refunded/propose":            "err: agreement: not a party to the deal",
	"provider/refunded/recv-accept":        "err: agreement: event is for the other side of the deal",
	"provider/refunded/recv-close":         "=",
	"provider/refunded/recv-proposal":      "err: agreement: deal already exists",
	"provider/refunded/recv-reject":        "err: agreement: event is for the other side of the deal",
	"provider/refunded/recv-voucher":       "err: agreement: deal is over",
	"provider/refunded/refunded":           "=",
	"provider/refunded/settle-failed":      "err: agreement: event not allowed in this state",
	"provider/refunded/settled":            "err: agreement: deal is over",
	"provider/refunded/tick":               "=",
	"provider/refunded/tick-timeout":       "=",
	"provider/refunded/usage":              "err: agreement: deal is over",
	"provider/refunded/usage-decreasing":   "err: agreement: metered bytes decrease",
	"provider/settled/cancelled":           "err: agreement: deal is over",
	"provider/settled/close":               "err: agreement: deal is over",
	"provider/settled/opened":              "=",
	"provider/settled/propose":             "err: agreement: not a party to the deal",
	"provider/settled/recv-accept":         "err: agreement: event is for the other side of the deal",
	"provider/settled/recv-close":          "=",
	"provider/settled/recv-proposal":       "err: agreement: deal already exists",
	"provider/settled/recv-reject":         "err: agreement: event is for the other side of the deal",
	"provider/settled/recv-voucher":        "err: agreement: deal is over",
	"provider/settled/refunded":            "err: agreement: deal is over",
	"provider/settled/settle-failed":       "err: agreement: event not allowed in this state",
	"provider/settled/settled":             "=",
	"provider/settled/tick":                "=",
	"provider/settled/tick-timeout":        "=",
	"provider/settled/usage":               "err: agreement: deal is over",
	"provider/settled/usage-decreasing":    "err: agreement: metered bytes decrease",
	"requester/accepted/cancelled":         "cancelled",
	"requester/accepted/close":             "cancelled",
	"requester/accepted/opened":            "active",
	"requester/accepted/propose":           "err: agreement: deal already exists",
	"requester/accepted/recv-accept":       "=",
	"requester/accepted/recv-close":        "cancelled",
	"requester/accepted/recv-proposal":     "err: agreement: message not from the deal's counterparty",
	"requester/accepted/recv-reject":       "err: agreement: event not allowed in this state",
	"requester/accepted/recv-voucher":      "err: agreement: event is for the other side of the deal",
	"requester/accepted/refunded":          "refunded",
	"requester/accepted/settle-failed":     "err: agreement: event not allowed in this state",
	"requester/accepted/settled":           "settled",
	"requester/accepted/tick":              "=",
	"requester/accepted/tick-timeout":      "expired",
	"requester/accepted/usage":             "err: agreement: event not allowed in this state",
	"requester/accepted/usage-decreasing":  "err: agreement: event not allowed in this state",
	"requester/active/cancelled":           "cancelled",
	"requester/active/close":               "completed",
	"requester/active/opened":              "=",
	"requester/active/propose":             "err: agreement: deal already exists",
	"requester/active/recv-accept":         "=",
	"requester/active/recv-close":          "completed",
	"requester/active/recv-proposal":       "err: agreement: message not from the deal's counterparty",
	"requester/active/recv-reject":         "err: agreement: event not allowed in this state",
	"requester/active/recv-voucher":        "err: agreement: event is for the other side of the deal",
	"requester/active/refunded":            "refunded",
	"requester/active/settle-failed":       "err: agreement: event not allowed in this state",
	"requester/active/settled":             "settled",
	"requester/active/tick":                "=",
	"requester/active/tick-timeout":        "completed",
	"requester/active/usage":               "active",
	"requester/active/usage-decreasing":    "err: agreement: metered bytes decrease",
	"requester/cancelled/cancelled":        "cancelled",
	"requester/cancelled/close":            "err: agreement: deal is over",
	"requester/cancelled/opened":           "completed",
	"requester/cancelled/propose":          "err: agreement: deal already exists",
	"requester/cancelled/recv-accept":      "cancelled",
	"requester/cancelled/recv-close":       "=",
	"requester/cancelled/recv-proposal":    "err: agreement: message not from the deal's counterparty",
	"requester/cancelled/recv-reject":      "err: agreement: event not allowed in this state",
	"requester/cancelled/recv-voucher":     "err: agreement: event is for the other side of the deal",
	"requester/cancelled/refunded":         "refunded",
	"requester/cancelled/settle-failed":    "err: agreement: event not allowed in this state",
	"requester/cancelled/settled":          "settled",
	"requester/cancelled/tick":             "=",
	"requester/cancelled/tick-timeout":     "=",
	"requester/cancelled/usage":            "err: agreement: event not allowed in this state",
	"requester/cancelled/usage-decreasing": "err: agreement: event not allowed in this state",
	"requester/completed/cancelled":        "cancelled",
	"requester/completed/close":            "=",
	"requester/completed/opened":           "=",
	"requester/completed/propose":          "err: agreement: deal already exists",
	"requester/completed/recv-accept":      "err: agreement: event not allowed in this state",
	"requester/completed/recv-close":       "completed",
	"requester/completed/recv-proposal":    "err: agreement: message not from the deal's counterparty",
	"requester/completed/recv-reject":      "err: agreement: event not allowed in this state",
	"requester/completed/recv-voucher":     "err: agreement: event is for the other side of the deal",
	"requester/completed/refunded":         "refunded",
	"requester/completed/settle-failed":    "err: agreement: event not allowed in this state",
	"requester/completed/settled":          "settled",
	"requester/completed/tick":             "=",
	"requester/completed/tick-timeout":     "completed",
	"requester/completed/usage":            "completed",
	"requester/completed/usage-decreasing": "err: agreement: metered bytes decrease",
	"requester/expired/cancelled":          "cancelled",
	"requester/expired/close":              "err: agreement: deal is over",
	"requester/expired/opened":             "completed",
	"requester/expired/propose":            "err: agreement: deal already exists",
	"requester/expired/recv-accept":        "expired",
	"requester/expired/recv-close":         "=",
	"requester/expired/recv-proposal":      "err: agreement: message not from the deal's counterparty",
	"requester/expired/recv-reject":        "err: agreement: event not allowed in this state",
	"requester/expired/recv-voucher":       "err: agreement: event is for the other side of the deal",
	"requester/expired/refunded":           "refunded",
	"requester/expired/settle-failed":      "err: agreement: event not allowed in this state",
	"requester/expired/settled":            "settled",
	"requester/expired/tick":               "=",
	"requester/expired/tick-timeout":       "=",
	"requester/expired/usage":              "err: agreement: event not allowed in this state",
	"requester/expired/usage-decreasing":   "err: agreement: event not allowed in this state",
	"requester/funded/cancelled":           "cancelled",
	"requester/funded/close":               "completed",
	"requester/funded/opened":              "=",
	"requester/funded/propose":             "err: agreement: deal already exists",
	"requester/funded/recv-accept":         "=",
	"requester/funded/recv-close":          "completed",
	"requester/funded/recv-proposal":       "err: agreement: message not from the deal's counterparty",
	"requester/funded/recv-reject":         "err: agreement: event not allowed in this state",
	"requester/funded/recv-voucher":        "err: agreement: event is for the other side of the deal",
	"requester/funded/refunded":            "refunded",
	"requester/funded/settle-failed":       "err: agreement: event not allowed in this state",
	"requester/funded/settled":             "settled",
	"requester/funded/tick":                "=",
	"requester/funded/tick-timeout":        "completed",
	"requester/funded/usage":               "err: agreement: event not allowed in this state",
	"requester/funded/usage-decreasing":    "err: agreement: event not allowed in this state",
	"requester/proposed/cancelled":         "cancelled",
	"requester/proposed/close":             "cancelled",
	"requester/proposed/opened":            "active",
	"requester/proposed/propose":           "err: agreement: deal already exists",
	"requester/proposed/recv-accept":       "accepted",
	"requester/proposed/recv-close":        "cancelled",
	"requester/proposed/recv-proposal":     "err: agreement: message not from the deal's counterparty",
	"requester/proposed/recv-reject":       "rejected",
	"requester/proposed/recv-voucher":      "err: agreement: event is for the other side of the deal",
	"requester/proposed/refunded":          "refunded",
	"requester/proposed/settle-failed":     "err: agreement: event not allowed in this state",
	"requester/proposed/settled":           "settled",
	"requester/proposed/tick":              "=",
	"requester/proposed/tick-timeout":      "expired",
	"requester/proposed/usage":             "err: agreement: event not allowed in this state",
	"requester/proposed/usage-decreasing":  "err: agreement: event not allowed in this state",
	"requester/refunded/cancelled":         "err: agreement: deal is over",
	"requester/refunded/close":             "err: agreement: deal is over",
	"requester/refunded/opened":            "=",
	"requester/refunded/propose":           "err: agreement: deadline too close or start out of range",
	"requester/refunded/recv-accept":       "err: agreement: deal is over",
	"requester/refunded/recv-close":        "=",
	"requester/refunded/recv-proposal":     "err: agreement: message not from the deal's counterparty",
	"requester/refunded/recv-reject":       "err: agreement: deal is over",
	"requester/refunded/recv-voucher":      "err: agreement: event is for the other side of the deal",
	"requester/refunded/refunded":          "=",
	"requester/refunded/settle-failed":     "err: agreement: event not allowed in this state",
	"requester/refunded/settled":           "err: agreement: deal is over",
	"requester/refunded/tick":              "=",
	"requester/refunded/tick-timeout":      "=",
	"requester/refunded/usage":             "err: agreement: deal is over",
	"requester/refunded/usage-decreasing":  "err: agreement: metered bytes decrease",
	"requester/rejected/cancelled":         "cancelled",
	"requester/rejected/close":             "err: agreement: deal is over",
	"requester/rejected/opened":            "completed",
	"requester/rejected/propose":           "err: agreement: deal already exists",
	"requester/rejected/recv-accept":       "err: agreement: event not allowed in this state",
	"requester/rejected/recv-close":        "=",
	"requester/rejected/recv-proposal":     "err: agreement: message not from the deal's counterparty",
	"requester/rejected/recv-reject":       "err: agreement: event not allowed in this state",
	"requester/rejected/recv-voucher":      "err: agreement: event is for the other side of the deal",
	"requester/rejected/refunded":          "refunded",
	"requester/rejected/settle-failed":     "err: agreement: event not allowed in this state",
	"requester/rejected/settled":           "settled",
	"requester/rejected/tick":              "=",
	"requester/rejected/tick-timeout":      "=",
	"requester/rejected/usage":             "err: agreement: event not allowed in this state",
	"requester/rejected/usage-decreasing":  "err: agreement: event not allowed in this state",
	"requester/settled/cancelled":          "err: agreement: deal is over",
	"requester/settled/close":              "err: agreement: deal is over",
	"requester/settled/opened":             "=",
	"requester/settled/propose":            "err: agreement: deal already exists",
	"requester/settled/recv-accept":        "err: agreement: deal is over",
	"requester/settled/recv-close":         "=",
	"requester/settled/recv-proposal":      "err: agreement: message not from the deal's counterparty",
	"requester/settled/recv-reject":        "err: agreement: deal is over",
	"requester/settled/recv-voucher":       "err: agreement: event is for the other side of the deal",
	"requester/settled/refunded":           "err: agreement: deal is over",
	"requester/settled/settle-failed":      "err: agreement: event not allowed in this state",
	"requester/settled/settled":            "=",
	"requester/settled/tick":               "=",
	"requester/settled/tick-timeout":       "=",
	"requester/settled/usage":              "err: agreement: deal is over",
	"requester/settled/usage-decreasing":   "err: agreement: metered bytes decrease",
}

func TestStateTable(t *testing.T) {
	var missing []string
	for _, sb := range states {
		for _, e := range events {
			key := sb.role.String() + "/" + sb.state.String() + "/" + e.name
			t.Run(key, func(t *testing.T) {
				got := runCell(t, sb, e.name, e.ev)
				want, ok := stateTable[key]
				if !ok {
					missing = append(missing, "\t"+`"`+key+`": "`+got+`",`)
					return
				}
				if got != want {
					t.Errorf("got %q, want %q", got, want)
				}
			})
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("cells missing from stateTable:\n%s", strings.Join(missing, "\n"))
	}
}

var sentinels = []error{ErrUnknownDeal, ErrDealExists, ErrNotParty, ErrWrongPeer, ErrWrongRole, ErrUnexpected,
	ErrDealOver, ErrUnknownEvent, ErrAmountMismatch, ErrUsageDecreases, ErrProposalTooLate, ErrVoucherDecreases,
	ErrVoucherBytes, ErrVoucherAboveMax, ErrVoucherTooFar, ErrVoucherDeal, ErrWrongSigner, ErrBadSignature,
	ErrInvalidTerms, ErrInvalidVoucher, ErrMalformed}

func runCell(t *testing.T, sb stateBuild, name string, mk func(*pair, *Machine) Event) string {
	x := newPair(t, sb.start, 1)
	if sb.state == StatusRejected {
		x = newPair(t, sb.start, 0)
	}
	m := sb.build(x)
	before, ok := m.Deal(x.id)
	if !ok {
		t.Fatalf("no deal built")
	}
	if before.Role != sb.role || before.Local() != sb.state {
		t.Fatalf("built %s %s, want %s %s", before.Role, before.Local(), sb.role, sb.state)
	}
	if m.HasReady() {
		t.Fatal("Ready left over")
	}
	var err error
	switch name {
	case "tick":
		err = m.Tick(time.Unix(int64(x.now), 0))
	case "tick-timeout":
		// Far enough for every timer of the state to fire.
		err = m.Tick(time.Unix(int64(x.tm.Deadline+1000), 0))
	default:
		err = m.Step(mk(x, m))
	}
	after, _ := m.Deal(x.id)
	if err != nil {
		if !reflect.DeepEqual(before, after) || m.HasReady() {
			t.Errorf("error %v, but the state changed or there is output", err)
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return "err: " + s.Error()
			}
		}
		t.Errorf("error without a sentinel: %v", err)
		return "err: " + err.Error()
	}
	if reflect.DeepEqual(before, after) && !m.HasReady() {
		return "="
	}
	return after.Local().String()
}

// What Ready asks to persist is enough to restart: a machine restored from
// the persisted deals holds the same deals and re-grants the tunnel.
func TestRestoreFromReady(t *testing.T) {
	x := newPair(t, 1000, 1)
	store := map[common.Hash]Deal{}
	x.propose()
	x.deliverP()
	// Persist what the provider's Ready says, the way the node would.
	collect := func() {
		rd := x.p.Ready()
		for _, u := range rd.Deals {
			store[u.Deal.ID] = u.Deal
		}
	}
	collect()
	x.flush()
	x.deliver()
	x.open()
	x.deliverR()
	for _, msg := range x.toP {
		x.must(x.p.Step(Receive{At: x.at(), From: x.rs.Address(), Msg: msg}))
		collect()
		x.flush()
	}
	x.toP = nil
	var saved []Deal
	for _, d := range store {
		saved = append(saved, d)
	}
	m, err := New(testConfig(x.ps))
	x.must(err)
	x.must(m.Restore(saved))
	if !reflect.DeepEqual(m.Deals(), x.p.Deals()) {
		t.Fatalf("restored %+v\nwant %+v", m.Deals(), x.p.Deals())
	}
	rd := m.Ready()
	if len(rd.Permissions) != 1 || !rd.Permissions[0].Allow {
		t.Fatalf("restore should re-grant the active deal's tunnel: %+v", rd.Permissions)
	}
	if m.Available(1) != 0 {
		t.Fatalf("restored machine lost the reservation")
	}
}

// Ready hands out the work in flight; a Step taken between Ready and
// Advance is not lost with it but comes out in the next Ready (raft's
// acceptReady). The machine used to clear everything on Advance, dropping
// such a Step's messages and persistence.
func TestStepBetweenReadyAndAdvance(t *testing.T) {
	x := newPair(t, 1000, 1)
	x.propose()
	x.must(x.p.Step(Receive{At: x.at(), From: x.rs.Address(), Msg: x.toP[0]}))
	x.toP = nil
	rd := x.p.Ready() // the accept, in flight
	if len(rd.Messages) != 1 || rd.Messages[0].Msg.Type() != "accept" {
		t.Fatalf("first Ready: %+v", rd.Messages)
	}
	// Meanwhile the deal is closed by the provider's user.
	x.must(x.p.Step(CloseDeal{At: x.at(), DealID: x.id}))
	x.p.Advance()
	if !x.p.HasReady() {
		t.Fatal("the close taken between Ready and Advance was dropped by Advance")
	}
	next := x.p.Ready()
	if len(next.Messages) != 1 || next.Messages[0].Msg.Type() != "close" {
		t.Fatalf("second Ready messages: %+v, want the close", next.Messages)
	}
	if len(next.Deals) != 1 || next.Deals[0].Deal.Provider != StatusCancelled {
		t.Fatalf("second Ready deals: %+v, want the cancelled deal", next.Deals)
	}
	if len(next.Reservations) != 1 || next.Reservations[0].Take {
		t.Fatalf("second Ready reservations: %+v, want the release", next.Reservations)
	}
	x.p.Advance()
	if x.p.HasReady() {
		t.Fatal("output left after the second Advance")
	}
}
