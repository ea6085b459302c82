package chain

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// pollUntil polls f until cond holds for the events gathered so far, or
// fails after a deadline.
func pollUntil(t *testing.T, e *env, f *Follower, what string, cond func([]DealEvent) bool) []DealEvent {
	t.Helper()
	var all []DealEvent
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		evs, _, err := f.Poll(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		if cond(all) {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: events %s", what, describe(all))
		}
		<-tick.C // the poll interval
	}
}

func describe(evs []DealEvent) string {
	s := "["
	for _, e := range evs {
		s += fmt.Sprintf(" %s@%d removed=%v", e.Kind, e.Block, e.Removed)
	}
	return s + " ]"
}

// TestFollowerReportsReorgedOpen: an Opened event whose block a reorg
// (DevChain.Fork) takes off the canonical chain is reported again with
// Removed set, and the deal is not open on the chain that replaced it; a
// follower restored from its persisted state after the event notices the
// reorg just the same.
func TestFollowerReportsReorgedOpen(t *testing.T) {
	e := newEnv(t, nil)
	e.deposit(e.requester, tokens(10))
	parent := e.dc.Commit()
	f, err := e.requester.NewFollower(FollowerState{}, FollowConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Read up to the fork point first.
	if _, _, err := f.Poll(e.ctx); err != nil {
		t.Fatal(err)
	}

	tm := e.terms(tokens(10))
	id := tm.ID(e.domain())
	rcpt, err := e.requester.Open(e.ctx, tm, e.sign(id, e.pk), e.sign(id, e.rk))
	e.must(err)
	evs := pollUntil(t, e, f, "opened", func(evs []DealEvent) bool { return len(evs) > 0 })
	if len(evs) != 1 || evs[0].Kind != EventOpened || evs[0].DealID != id || evs[0].Removed ||
		evs[0].BlockHash != rcpt.BlockHash || evs[0].Block != rcpt.BlockNumber.Uint64() || evs[0].TxHash != rcpt.TxHash {
		t.Fatalf("got %s (%+v), want the Opened of deal %s in block %d %s", describe(evs), evs, id, rcpt.BlockNumber, rcpt.BlockHash)
	}
	if h, err := e.requester.BlockHash(e.ctx, evs[0].Block); err != nil || h != evs[0].BlockHash {
		t.Fatalf("BlockHash(%d) = %s, %v; want %s", evs[0].Block, h, err, evs[0].BlockHash)
	}

	// A second follower, restored from the first one's persisted state.
	b, err := json.Marshal(f.State())
	if err != nil {
		t.Fatal(err)
	}
	var st FollowerState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	restored, err := e.requester.NewFollower(st, FollowConfig{})
	if err != nil {
		t.Fatal(err)
	}

	if err := e.dc.Fork(parent); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.dc.Commit()
	}
	for _, fl := range []*Follower{f, restored} {
		evs = pollUntil(t, e, fl, "removed", func(evs []DealEvent) bool { return len(evs) > 0 })
		if len(evs) != 1 || evs[0].Kind != EventOpened || evs[0].DealID != id || !evs[0].Removed || evs[0].BlockHash != rcpt.BlockHash {
			t.Fatalf("after the reorg: %s, want the Opened of deal %s removed", describe(evs), id)
		}
		// Nothing else: the open was dropped, not replayed.
		if more, _, err := fl.Poll(e.ctx); err != nil || len(more) != 0 {
			t.Fatalf("after the removal: %s %v", describe(more), err)
		}
	}
	if s, err := e.requester.DealStatus(e.ctx, id); err != nil || s != StatusNone {
		t.Fatalf("deal status after the reorg: %s %v, want none", s, err)
	}
	if h, err := e.requester.BlockHash(e.ctx, rcpt.BlockNumber.Uint64()); err != nil || h == rcpt.BlockHash {
		t.Fatalf("block %d is still %s (%v) after the reorg", rcpt.BlockNumber, h, err)
	}

	// Sent again, the open counts again, from its new block.
	rcpt2, err := e.requester.Open(e.ctx, tm, e.sign(id, e.pk), e.sign(id, e.rk))
	e.must(err)
	evs = pollUntil(t, e, f, "opened again", func(evs []DealEvent) bool { return len(evs) > 0 })
	if len(evs) != 1 || evs[0].Removed || evs[0].BlockHash != rcpt2.BlockHash {
		t.Fatalf("after sending again: %s", describe(evs))
	}
}

// TestFollowerConfirmations: an event is reported only once the given
// number of blocks sit on top of its block, and a reorg shallower than
// that never shows.
func TestFollowerConfirmations(t *testing.T) {
	const conf = 3
	e := newEnv(t, nil)
	e.deposit(e.requester, tokens(10))
	f, err := e.requester.NewFollower(FollowerState{}, FollowConfig{Confirmations: conf})
	if err != nil {
		t.Fatal(err)
	}
	poll := func() []DealEvent {
		t.Helper()
		evs, head, err := f.Poll(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Confirmations(head) < conf {
				t.Fatalf("%s in block %d reported at head %d, with %d of %d confirmations", ev.Kind, ev.Block, head, ev.Confirmations(head), conf)
			}
		}
		return evs
	}

	// A shallow reorg: the open is dropped before it is confirmed.
	tm := e.terms(tokens(3))
	id := tm.ID(e.domain())
	parent := e.dc.Commit()
	_, err = e.requester.Open(e.ctx, tm, e.sign(id, e.pk), e.sign(id, e.rk))
	e.must(err)
	if evs := poll(); len(evs) != 0 {
		t.Fatalf("before the reorg: %s", describe(evs))
	}
	if err := e.dc.Fork(parent); err != nil {
		t.Fatal(err)
	}

	// A deep enough one: reported once confirmed.
	tm2 := e.terms(tokens(3))
	id2 := tm2.ID(e.domain())
	r2, err := e.requester.Open(e.ctx, tm2, e.sign(id2, e.pk), e.sign(id2, e.rk))
	e.must(err)
	var got []DealEvent
	for i := 0; len(got) == 0 && i < 10; i++ {
		got = poll()
		e.dc.Commit()
	}
	if len(got) != 1 || got[0].DealID != id2 || got[0].Removed || got[0].BlockHash != r2.BlockHash {
		t.Fatalf("after confirmations: %s, want only the Opened of %s (the one of %s was reorged away unconfirmed)", describe(got), id2, id)
	}
	if _, err := e.requester.NewFollower(FollowerState{}, FollowConfig{Confirmations: 10, Window: 10}); err == nil {
		t.Fatal("a window no deeper than the confirmations was accepted")
	}
}
