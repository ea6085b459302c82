package node

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestBrokerBacklog: resuming replays exactly the events after the id,
// across the ring's wrap-around; an id older than the backlog, from
// another run, malformed or in the future starts with stream.reset.
func TestBrokerBacklog(t *testing.T) {
	b := newBroker()
	var ids []string
	live, stop := b.subscribe()
	defer stop()
	total := eventBacklog + 300 // the ring wraps
	for i := 0; i < total; i++ {
		b.publish("x", i)
		ev := <-live
		ids = append(ids, ev.ID)
	}
	for _, from := range []int{total - 1, total - 2, total - 100, total - eventBacklog} {
		ch, stop := b.subscribeFrom(ids[from-1])
		for i := from; i < total; i++ {
			ev := <-ch
			var got int
			if err := json.Unmarshal(ev.Data, &got); err != nil || got != i || ev.ID != ids[i] {
				t.Fatalf("resume after %d: event %s %s, want %d", from-1, ev.ID, ev.Data, i)
			}
		}
		if len(ch) != 0 {
			t.Fatalf("resume after %d: %d events too many", from-1, len(ch))
		}
		stop()
	}
	// The newest id: nothing to replay, no reset.
	ch, stop2 := b.subscribeFrom(ids[total-1])
	if len(ch) != 0 {
		t.Fatalf("resume after the newest id: %d events", len(ch))
	}
	stop2()
	for _, bad := range []string{ids[total-eventBacklog-2], "deadbeef-1", "garbage", b.epoch + "-99999999", b.epoch + "-x"} {
		ch, stop := b.subscribeFrom(bad)
		if ev := <-ch; ev.Type != EventReset || ev.ID != "" {
			t.Errorf("resume after %q: %+v, want %s", bad, ev, EventReset)
		}
		if len(ch) != 0 {
			t.Errorf("resume after %q: events after the reset: %d", bad, len(ch))
		}
		stop()
	}
	if got := fmt.Sprint(len(b.backlog)); got != fmt.Sprint(eventBacklog) {
		t.Fatalf("backlog holds %s", got)
	}
}
