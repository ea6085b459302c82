package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The address book: the addresses of peers this node was connected to,
// kept in the database, so that a restart finds the network again without
// a bootstrap list (there are no public bootstrap nodes yet).
//
// It is written key by key in ordinary transactions: connected peers are
// upserted with the time they were last seen, and the oldest entries are
// deleted once the book holds more than maxBookPeers. (It once replaced the
// book with DropPrefix, which blocks every write of the process while it
// runs: deal states, vouchers and orders failed with "Writes are blocked".)

const (
	keyPeer       = "peers/"
	maxBookPeers  = 200
	bookSaveEvery = 30 * time.Second
)

// bookEntry is one peer's record in the book.
type bookEntry struct {
	Addrs []string `json:"addrs"`
	Seen  int64    `json:"seen"` // unix seconds
}

// decodeBookEntry reads an entry; a bare list of addresses is the form
// written before entries carried a time.
func decodeBookEntry(v []byte) (bookEntry, error) {
	var e bookEntry
	if len(v) > 0 && v[0] == '[' {
		err := json.Unmarshal(v, &e.Addrs)
		return e, err
	}
	err := json.Unmarshal(v, &e)
	return e, err
}

// savePeers records the connected peers' addresses and trims the book to
// its newest maxBookPeers entries.
func (n *Node) savePeers() error {
	conns := n.host.Network().Peers()
	if len(conns) == 0 {
		return nil // keep the old book: a node cut off should try it again
	}
	now := n.now().Unix()
	wb := n.db.NewWriteBatch()
	defer wb.Cancel()
	for i, p := range conns {
		if i == maxBookPeers {
			break
		}
		var addrs []string
		for _, a := range n.host.Peerstore().Addrs(p) {
			addrs = append(addrs, a.String())
		}
		if len(addrs) == 0 {
			continue
		}
		b, err := json.Marshal(bookEntry{Addrs: addrs, Seen: now})
		if err != nil {
			return err
		}
		if err := wb.Set([]byte(keyPeer+p.String()), b); err != nil {
			return fmt.Errorf("node: save address book: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("node: save address book: %w", err)
	}
	return n.trimBook()
}

// trimBook deletes the oldest entries beyond maxBookPeers.
func (n *Node) trimBook() error {
	type aged struct {
		key  []byte
		seen int64
	}
	var all []aged
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyPeer)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var e bookEntry
			_ = it.Item().Value(func(v []byte) error {
				e, _ = decodeBookEntry(v)
				return nil
			})
			all = append(all, aged{it.Item().KeyCopy(nil), e.Seen})
		}
		return nil
	})
	if err != nil || len(all) <= maxBookPeers {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seen > all[j].seen })
	wb := n.db.NewWriteBatch()
	defer wb.Cancel()
	for _, a := range all[maxBookPeers:] {
		if err := wb.Delete(a.key); err != nil {
			return fmt.Errorf("node: trim address book: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("node: trim address book: %w", err)
	}
	return nil
}

// loadPeers reads the address book, most recently seen first.
func (n *Node) loadPeers() []peer.AddrInfo {
	type seenInfo struct {
		ai   peer.AddrInfo
		seen int64
	}
	var found []seenInfo
	_ = n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyPeer)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := peer.Decode(string(it.Item().Key()[len(keyPeer):]))
			if err != nil || id == n.host.ID() {
				continue
			}
			var e bookEntry
			if it.Item().Value(func(v []byte) error { e, err = decodeBookEntry(v); return err }) != nil {
				continue
			}
			ai := peer.AddrInfo{ID: id}
			for _, s := range e.Addrs {
				if a, err := ma.NewMultiaddr(s); err == nil {
					ai.Addrs = append(ai.Addrs, a)
				}
			}
			found = append(found, seenInfo{ai, e.Seen})
		}
		return nil
	})
	sort.SliceStable(found, func(i, j int) bool { return found[i].seen > found[j].seen })
	out := make([]peer.AddrInfo, len(found))
	for i, f := range found {
		out[i] = f.ai
	}
	return out
}

// addressBook dials the peers of the book once at start, then saves the
// book periodically (Run saves it once more before it closes the host).
func (n *Node) addressBook(ctx context.Context) {
	for _, ai := range n.loadPeers() {
		if ctx.Err() != nil {
			break
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := n.host.Connect(cctx, ai); err != nil {
			n.log.Debug("address book peer unreachable", "peer", ai.ID, "err", err)
		}
		cancel()
	}
	t := time.NewTicker(bookSaveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.savePeers(); err != nil {
				n.log.Warn("save address book", "err", err)
			}
		}
	}
}
