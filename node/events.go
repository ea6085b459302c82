package node

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/ipsx/ipsx/sdk"
)

// broker fans events out to API subscribers. A subscriber that falls
// eventBuffer-1 events behind gets a last "error" event and is dropped, so
// one slow client never holds the node up and never loses events silently.
type broker struct {
	mu   sync.Mutex // guards subs, next
	subs map[int]chan sdk.Event
	next int
}

const eventBuffer = 1024

func newBroker() *broker { return &broker{subs: map[int]chan sdk.Event{}} }

func (b *broker) subscribe() (<-chan sdk.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	ch := make(chan sdk.Event, eventBuffer)
	b.subs[id] = ch
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if c, ok := b.subs[id]; ok {
			delete(b.subs, id)
			close(c)
		}
	}
}

func (b *broker) publish(typ string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	ev := sdk.Event{Type: typ, Time: time.Now().UTC(), Data: raw}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, ch := range b.subs {
		if len(ch) >= cap(ch)-1 {
			msg, _ := json.Marshal(map[string]string{"error": "subscriber too slow: events were about to be lost; reconnect and re-read state"})
			ch <- sdk.Event{Type: "error", Time: ev.Time, Data: msg}
			close(ch)
			delete(b.subs, id)
			continue
		}
		ch <- ev
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, ch := range b.subs {
		close(ch)
		delete(b.subs, id)
	}
}
