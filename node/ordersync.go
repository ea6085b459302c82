package node

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SyncProtocol is order sync: a joiner pulls a shard's live orders from a
// peer, page by page; a node whose book disagrees with a heartbeat's digest
// pulls one maker's orders. On one stream the client sends a request and
// reads a page, repeatedly, then closes. Frames are a 4-byte big-endian
// length and a JSON object, bounded in size.
const SyncProtocol = "/ipsx/ordersync/1.0.0"

const (
	maxSyncPage     = 512
	maxSyncRequest  = 4 << 10
	maxSyncResponse = maxSyncPage*(orderbook.DefaultMaxSize+1024) + (64 << 10)
	maxSyncPages    = 10_000 // a shard of 5 million orders; a peer that pages forever is cut off
	syncIOTimeout   = 30 * time.Second
)

type syncRequest struct {
	Country string          `json:"country"`
	Maker   *common.Address `json:"maker,omitempty"`
	After   hexutil.Bytes   `json:"after,omitempty"`
	Limit   int             `json:"limit"`
}

// syncPage carries orders and the latest heartbeats of their makers, which
// prove the offers still live (an offer is live only TTL past its maker's
// latest heartbeat).
type syncPage struct {
	Orders     []json.RawMessage `json:"orders"`
	Heartbeats []json.RawMessage `json:"heartbeats,omitempty"`
	Next       hexutil.Bytes     `json:"next,omitempty"`
	Error      string            `json:"error,omitempty"`
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

var errFrameTooLarge = errors.New("node: sync frame too large")

func readFrame(r io.Reader, limit int, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if int64(size) > int64(limit) {
		return fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, size, limit)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	return json.Unmarshal(buf, v)
}

// serveSync answers sync requests on one stream until the client closes.
func (n *Node) serveSync(s network.Stream) {
	defer s.Close()
	r := bufio.NewReader(s)
	for pages := 0; pages < maxSyncPages; pages++ {
		_ = s.SetDeadline(time.Now().Add(syncIOTimeout))
		var req syncRequest
		if err := readFrame(r, maxSyncRequest, &req); err != nil {
			if !errors.Is(err, io.EOF) {
				n.log.Debug("sync request", "peer", s.Conn().RemotePeer(), "err", err)
				_ = s.Reset()
			}
			return
		}
		page, err := n.syncPageFor(req)
		if err != nil {
			page = syncPage{Error: err.Error()}
		}
		if err := writeFrame(s, page); err != nil {
			_ = s.Reset()
			return
		}
		if page.Error != "" {
			return
		}
	}
	_ = s.Reset()
}

func (n *Node) syncPageFor(req syncRequest) (syncPage, error) {
	if !orderbook.ValidCountry(req.Country) {
		return syncPage{}, fmt.Errorf("unknown country %q", req.Country)
	}
	limit := req.Limit
	if limit <= 0 || limit > maxSyncPage {
		limit = maxSyncPage
	}
	var (
		orders []*orderbook.Order
		next   []byte
		err    error
	)
	if req.Maker != nil {
		orders, err = n.book.ByMaker(*req.Maker, req.Country)
		if len(orders) > maxSyncPage {
			orders = orders[:maxSyncPage]
		}
	} else {
		orders, next, err = n.book.Page(orderbook.Query{Country: req.Country, After: req.After, Limit: limit})
	}
	if err != nil {
		return syncPage{}, err
	}
	page := syncPage{Orders: make([]json.RawMessage, 0, len(orders)), Next: next}
	makers := map[common.Address]bool{}
	for _, o := range orders {
		b, err := json.Marshal(o)
		if err != nil {
			return syncPage{}, err
		}
		page.Orders = append(page.Orders, b)
		if o.Kind != orderbook.KindOffer || makers[o.Maker] {
			continue
		}
		makers[o.Maker] = true
		if h, err := n.book.HeartbeatOf(o.Maker, req.Country); err == nil {
			if b, err := json.Marshal(h); err == nil {
				page.Heartbeats = append(page.Heartbeats, b)
			}
		}
	}
	return page, nil
}

// syncResult counts what a sync brought.
type syncResult struct {
	Added, Ignored, Rejected int
}

// syncFrom pulls orders from a peer, validating each as if gossiped. It
// follows pages to the end unless the request names a maker.
func (n *Node) syncFrom(ctx context.Context, p peer.ID, req syncRequest) (syncResult, error) {
	var res syncResult
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, SyncProtocol)
	if err != nil {
		return res, fmt.Errorf("node: open sync stream to %s: %w", p, err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	r := bufio.NewReader(s)
	req.Limit = n.o.syncPage
	for pages := 0; pages < maxSyncPages; pages++ {
		_ = s.SetDeadline(time.Now().Add(syncIOTimeout))
		if err := writeFrame(s, req); err != nil {
			_ = s.Reset()
			return res, fmt.Errorf("node: sync request to %s: %w", p, err)
		}
		var page syncPage
		if err := readFrame(r, maxSyncResponse, &page); err != nil {
			_ = s.Reset()
			return res, fmt.Errorf("node: sync page from %s: %w", p, err)
		}
		if page.Error != "" {
			return res, fmt.Errorf("node: sync from %s: peer says: %s", p, page.Error)
		}
		n.applyPage(req.Country, page, &res)
		if req.Maker != nil || len(page.Next) == 0 {
			return res, nil
		}
		req.After = page.Next
	}
	_ = s.Reset()
	return res, fmt.Errorf("node: sync from %s: more than %d pages", p, maxSyncPages)
}

func (n *Node) applyPage(cc string, page syncPage, res *syncResult) {
	now := n.now()
	// Heartbeats first: they decide whether the offers are still live.
	for _, raw := range page.Heartbeats {
		h := new(orderbook.Heartbeat)
		if err := json.Unmarshal(raw, h); err != nil {
			continue
		}
		if h.Country != cc || h.Maker == n.addr || orderbook.ValidateHeartbeat(h, now, n.o.liveTTL, n.params) != nil {
			continue
		}
		_, _ = n.book.ApplyHeartbeat(h)
	}
	for _, raw := range page.Orders {
		o, err := orderbook.DecodeOrder(raw)
		if err == nil && o.Shard() != cc {
			err = fmt.Errorf("%w: order for %s in a %s sync", orderbook.ErrMalformed, o.Shard(), cc)
		}
		if err == nil {
			err = orderbook.Validate(o, len(raw), now, n.params, n.book, n.balanceView())
		}
		var added orderbook.Added
		if err == nil {
			added, err = n.book.Add(o)
		}
		switch orderbook.VerdictOf(err) {
		case orderbook.Accept:
			res.Added++
			n.metrics.synced.WithLabelValues("added").Inc()
			n.emitAdded(o, added)
		case orderbook.Ignore:
			res.Ignored++
			n.metrics.synced.WithLabelValues("ignored").Inc()
		default:
			res.Rejected++
			n.metrics.synced.WithLabelValues("rejected").Inc()
			n.log.Debug("sync: rejected order", "err", err)
		}
	}
}

// syncLoop pulls the shard's live book from a topic peer when the node
// joins it, retrying (and waking when a peer joins) until one sync has run
// to its end. Afterwards heartbeat digests repair what gossip loses.
func (n *Node) syncLoop(ctx context.Context, s *shard) {
	backoff := 500 * time.Millisecond
	tried := map[peer.ID]bool{}
	for !s.synced.Load() {
		for _, p := range n.ps.ListPeers(topicName(s.cc)) {
			if tried[p] {
				continue
			}
			tried[p] = true
			res, err := n.syncFrom(ctx, p, syncRequest{Country: s.cc})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				n.log.Debug("order sync", "shard", s.cc, "peer", p, "err", err)
				continue
			}
			n.log.Info("order sync done", "shard", s.cc, "peer", p, "added", res.Added, "ignored", res.Ignored, "rejected", res.Rejected)
			s.synced.Store(true)
			break
		}
		if s.synced.Load() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-time.After(backoff):
			// Peers that failed may have recovered.
			clear(tried)
			backoff = min(2*backoff, 30*time.Second)
		}
	}
}

// heartbeatPubkey recovers the public key that signed a heartbeat.
func heartbeatPubkey(h *orderbook.Heartbeat) (*ecdsa.PublicKey, error) {
	if len(h.Signature) != 65 {
		return nil, orderbook.ErrBadSignature
	}
	sig := make([]byte, 65)
	copy(sig, h.Signature)
	if sig[64] >= 27 {
		sig[64] -= 27
	}
	id := h.ID()
	return ethcrypto.SigToPub(id[:], sig)
}
