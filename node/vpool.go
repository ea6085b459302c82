package node

import (
	"context"
	"errors"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// vpool runs the expensive part of gossip validation (signature checks,
// balance lookups, book writes) on a fixed number of workers, with a
// bounded queue per peer served round-robin: a peer that floods fills
// only its own queue, and an honest peer's message waits for at most one
// job of each other busy peer, not for the flood.
type vpool struct {
	perPeer int
	skip    func(peer.ID) bool // true: drop the peer's queued jobs unrun (throttled)

	mu     sync.Mutex // guards queues, ring and closed
	queues map[peer.ID][]*vjob
	ring   []peer.ID // peers with queued jobs, in turn order
	closed bool
	wake   chan struct{} // one token per queued job
}

type vjob struct {
	run  func() error
	done chan error // buffered: a worker never waits for the caller
}

var (
	errPeerQueueFull = errors.New("node: the peer's validation queue is full")
	errPoolClosed    = errors.New("node: validation pool stopped")
	errPeerThrottled = errors.New("node: peer throttled")
)

func newVPool(perPeer int, skip func(peer.ID) bool) *vpool {
	return &vpool{perPeer: perPeer, skip: skip, queues: map[peer.ID][]*vjob{}, wake: make(chan struct{}, 1<<16)}
}

// do queues run on from's queue and waits for its result: errPeerQueueFull
// at once if the queue is full, errPeerThrottled if from was throttled
// before its turn came, errPoolClosed after stop.
func (p *vpool) do(ctx context.Context, from peer.ID, run func() error) error {
	j := &vjob{run: run, done: make(chan error, 1)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errPoolClosed
	}
	q := p.queues[from]
	if len(q) >= p.perPeer {
		p.mu.Unlock()
		return errPeerQueueFull
	}
	select {
	case p.wake <- struct{}{}:
	default: // more jobs queued than wake tokens: the pool is saturated
		p.mu.Unlock()
		return errPeerQueueFull
	}
	if len(q) == 0 {
		p.ring = append(p.ring, from)
	}
	p.queues[from] = append(q, j)
	p.mu.Unlock()
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next takes the next job in turn. ok is false when there is none.
func (p *vpool) next() (from peer.ID, j *vjob, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ring) == 0 {
		return "", nil, false
	}
	from = p.ring[0]
	p.ring = p.ring[1:]
	q := p.queues[from]
	j, q = q[0], q[1:]
	if len(q) == 0 {
		delete(p.queues, from)
	} else {
		p.queues[from] = q
		p.ring = append(p.ring, from)
	}
	return from, j, true
}

// run serves jobs on workers goroutines until ctx ends, then fails what is
// still queued.
func (p *vpool) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-p.wake:
				}
				from, j, ok := p.next()
				if !ok {
					continue
				}
				if p.skip != nil && p.skip(from) {
					j.done <- errPeerThrottled
					continue
				}
				j.done <- j.run()
			}
		}()
	}
	wg.Wait()
	p.mu.Lock()
	p.closed = true
	queues := p.queues
	p.queues, p.ring = map[peer.ID][]*vjob{}, nil
	p.mu.Unlock()
	for _, q := range queues {
		for _, j := range q {
			j.done <- errPoolClosed
		}
	}
}
