package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipsx/ipsx/sdk"
)

// broker fans events out to API subscribers and keeps the last
// eventBacklog of them, so that a client that lost its stream resumes
// where it left off (SSE's Last-Event-ID) instead of re-reading all state.
//
// Every event gets an id "<epoch>-<seq>": seq counts up from 1, epoch is
// random per broker (per run of the node), so an id from before a restart
// is never taken for one of this run. A subscriber resuming from an id the
// backlog no longer covers (too old, another epoch, or unknown) first gets
// a "stream.reset" event saying so: it must re-read state, as after a
// fresh connect.
//
// A subscriber that falls about eventBuffer events behind (beyond what it
// was replayed) gets a last "error"
// event and is dropped, so one slow client never holds the node up and
// never loses events silently; it may resume from its last id.
type broker struct {
	epoch string

	mu      sync.Mutex // guards subs, next, seq, backlog
	subs    map[int]chan sdk.Event
	next    int
	seq     uint64
	backlog []sdk.Event // the last eventBacklog events: a ring, oldest at head
	head    int
}

const (
	eventBuffer  = 1024
	eventBacklog = 1024
)

// Event types of the stream itself.
const (
	// EventReset tells a resuming subscriber that events since its
	// Last-Event-ID may be lost: re-read state.
	EventReset = "stream.reset"
)

func newBroker() *broker {
	var e [4]byte
	_, _ = rand.Read(e[:])
	return &broker{epoch: hex.EncodeToString(e[:]), subs: map[int]chan sdk.Event{}}
}

// subscribe is subscribeFrom with no id: live events only.
func (b *broker) subscribe() (<-chan sdk.Event, func()) { return b.subscribeFrom("") }

// subscribeFrom subscribes to the events after lastID: those still in the
// backlog come first, then live ones, with none lost or repeated between
// them. An empty lastID means live events only.
func (b *broker) subscribeFrom(lastID string) (<-chan sdk.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	ch := make(chan sdk.Event, eventBuffer+eventBacklog+1)
	if lastID != "" {
		replay, ok := b.since(lastID)
		if !ok {
			ch <- resetEvent(lastID)
		}
		for _, ev := range replay {
			ch <- ev
		}
	}
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

// since returns the backlog's events after lastID, and whether the
// backlog covers everything after it. The caller holds b.mu.
func (b *broker) since(lastID string) ([]sdk.Event, bool) {
	epoch, s, ok := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || epoch != b.epoch || seq > b.seq {
		return nil, false
	}
	oldest := b.seq - uint64(len(b.backlog)) + 1 // seq of the event at head
	if seq+1 < oldest {
		return nil, false // the events right after lastID are gone
	}
	var out []sdk.Event
	for i := int(seq + 1 - oldest); i < len(b.backlog); i++ {
		out = append(out, b.backlog[(b.head+i)%len(b.backlog)])
	}
	return out, true
}

func resetEvent(lastID string) sdk.Event {
	msg, _ := json.Marshal(map[string]string{
		"error":       "events after this id may be lost (too old, or the node restarted): re-read state",
		"lastEventId": lastID,
	})
	return sdk.Event{Type: EventReset, Time: time.Now().UTC(), Data: msg}
}

func (b *broker) publish(typ string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ev := sdk.Event{ID: b.epoch + "-" + strconv.FormatUint(b.seq, 10), Type: typ, Time: time.Now().UTC(), Data: raw}
	if len(b.backlog) == eventBacklog {
		b.backlog[b.head] = ev
		b.head = (b.head + 1) % eventBacklog
	} else {
		b.backlog = append(b.backlog, ev)
	}
	for id, ch := range b.subs {
		if len(ch) >= cap(ch)-1 {
			msg, _ := json.Marshal(map[string]string{"error": "subscriber too slow: events were about to be lost; reconnect with the last event id, or re-read state"})
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
