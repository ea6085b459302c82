package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/sdk"
)

func TestDeals(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("deals", "list"); out != "no deals\n" {
		t.Fatalf("empty list: %q", out)
	}
	if out := c.ok("deals", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty list --json: %q", out)
	}

	active := c.b.ActiveDeal(common.HexToHash("0x1234567800000000000000000000000000000000000000000000000000000001"))
	over := c.b.ActiveDeal(common.HexToHash("0xabcdef0000000000000000000000000000000000000000000000000000000002"))
	over.Role, over.Status, over.Reason = "provider", "refunded", "provider gone"
	over.Requester = common.HexToAddress("0x1111000000000000000000000000000000002222").Hex()
	over.Refunded = "200000"
	c.b.PutDeal(active)
	c.b.PutDeal(over)

	out := c.ok("deals", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list:\n%s", out)
	}
	for _, h := range []string{"ROLE", "STATUS", "PEER", "IPS", "PRICE/H", "PAID", "DEADLINE"} {
		if !strings.Contains(lines[0], h) {
			t.Fatalf("header lacks %s: %q", h, lines[0])
		}
	}
	// Newest first; the peer is the other side.
	for _, want := range []string{"0xabcdef00", "provider", "refunded", "0x1111…2222"} {
		if !strings.Contains(lines[1], want) {
			t.Fatalf("row 1 lacks %q: %q", want, lines[1])
		}
	}
	for _, want := range []string{"0x12345678", "requester", "active", "0xCc00…0000", "1000", "2500", "2025-01-02T05:04:05Z"} {
		if !strings.Contains(lines[2], want) {
			t.Fatalf("row 2 lacks %q: %q", want, lines[2])
		}
	}
	var list []sdk.Deal
	if err := json.Unmarshal([]byte(c.ok("deals", "list", "--json")), &list); err != nil || len(list) != 2 || list[0].ID != over.ID {
		t.Fatalf("list --json: %+v: %v", list, err)
	}

	// show, by full id and by the short id of the list.
	for _, id := range []string{active.ID, "0x12345678"} {
		out = c.ok("deals", "show", id)
		for _, want := range []string{active.ID, "requester", "active", "max amount:", "200000", active.Provider,
			"2500 for 1048576 bytes", "0xdd00", "TIME", "chain.opened", "accepted→active", "proposed→accepted"} {
			if !strings.Contains(out, want) {
				t.Fatalf("show %s lacks %q:\n%s", id, want, out)
			}
		}
	}
	out = c.ok("deals", "show", over.ID)
	if !strings.Contains(out, "refunded (provider gone)") || !strings.Contains(out, "refunded:") {
		t.Fatalf("show over:\n%s", out)
	}
	var d sdk.Deal
	if err := json.Unmarshal([]byte(c.ok("deals", "show", active.ID, "--json")), &d); err != nil || d.ID != active.ID || len(d.History) != 3 {
		t.Fatalf("show --json: %+v: %v", d, err)
	}

	// close.
	if out := c.ok("deals", "close", "0x1234"); out != "closed deal "+active.ID+": completed\n" {
		t.Fatalf("close: %q", out)
	}
	if err := json.Unmarshal([]byte(c.ok("deals", "show", active.ID, "--json")), &d); err != nil || d.Status != "completed" {
		t.Fatalf("after close: %+v: %v", d, err)
	}
	c.b.PutDeal(c.b.ActiveDeal(common.Hash{0x77}))
	if err := json.Unmarshal([]byte(c.ok("deals", "close", common.Hash{0x77}.Hex(), "--json")), &d); err != nil || d.Status != "completed" {
		t.Fatalf("close --json: %+v: %v", d, err)
	}
}

func TestDealErrors(t *testing.T) {
	c := newCLI(t)
	over := c.b.ActiveDeal(common.HexToHash("0xabcd000000000000000000000000000000000000000000000000000000000001"))
	over.Status = "settled"
	c.b.PutDeal(over)
	c.b.PutDeal(c.b.ActiveDeal(common.HexToHash("0xabcd000000000000000000000000000000000000000000000000000000000002")))
	unknown := "0x" + strings.Repeat("11", 32)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown", []string{"deals", "show", unknown}, []string{"unknown deal", "HTTP 404", "not_found"}},
		{"close unknown", []string{"deals", "close", unknown}, []string{"unknown deal", "HTTP 404"}},
		{"close over", []string{"deals", "close", over.ID}, []string{"HTTP 409", "deal_over"}},
		{"bad id", []string{"deals", "show", "0x12"}, []string{"not a deal id"}},
		{"not hex", []string{"deals", "close", "deal-1"}, []string{"not a deal id"}},
		{"no such prefix", []string{"deals", "show", "0xffff"}, []string{"no deal id starts with 0xffff"}},
		{"ambiguous prefix", []string{"deals", "show", "0xabcd"}, []string{"ambiguous", "2 deals"}},
		{"no id", []string{"deals", "show"}, []string{"accepts 1 arg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.run(tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestFormatDealEvent(t *testing.T) {
	d := sdk.Deal{ID: common.Hash{0xab, 0xcd}.Hex(), Role: "provider", Status: "settled", Reason: "deadline",
		Paid: "1500000000000000000", Bytes: 2_500_000, Settled: "1500000000000000000"}
	raw, _ := json.Marshal(d)
	ev := sdk.Event{Type: "deal.updated", Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Data: raw}
	if got, want := formatEvent(ev), "2025-01-02T03:04:05Z deal.updated 0xabcd0000 settled provider: earned 1.5 tok, 2.5 MB, settled 1.5 tok (deadline)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Data that is not a deal is printed as it came.
	ev.Data = json.RawMessage(`{"x":1}`)
	if got := formatEvent(ev); !strings.HasSuffix(got, `deal.updated {"x":1}`) {
		t.Fatalf("got %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// awaitCond polls cond until it holds or 10 s pass.
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestEventsPrintsDeals(t *testing.T) {
	c := newCLI(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	root := newRoot(c.app())
	var out syncBuffer
	root.SetArgs([]string{"events"})
	root.SetOut(&out)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	awaitCond(t, "the subscription", func() bool { return c.b.Subscribers() == 1 })

	d := c.b.ActiveDeal(common.HexToHash("0x5555666600000000000000000000000000000000000000000000000000000001"))
	c.b.PutDeal(d)
	awaitCond(t, "the deal event", func() bool { return strings.Contains(out.String(), "\n") })
	if got := out.String(); !strings.HasSuffix(got, " deal.updated 0x55556666 active requester: paid 0.0000000000000025 tok, 1.0 MB\n") {
		t.Fatalf("events printed %q", got)
	}
	// Only the byte count changes: nothing printed. A new voucher, then
	// the settlement: one line each, with the amounts.
	d.Bytes = 2 << 20
	c.b.PutDeal(d)
	d.Paid = "3000000000000000000"
	c.b.PutDeal(d)
	d.Status, d.Settled = "settled", "3000000000000000000"
	c.b.PutDeal(d)
	awaitCond(t, "three lines", func() bool { return strings.Count(out.String(), "\n") >= 3 })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], "active requester: paid 3 tok, 2.1 MB") ||
		!strings.HasSuffix(lines[2], "settled requester: paid 3 tok, 2.1 MB, settled 3 tok") {
		t.Fatalf("events printed %q", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("events: %v", err)
	}
}
