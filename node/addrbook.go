package node

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The address book: the addresses of peers this node was connected to,
// kept in the database, so that a restart finds the network again without
// a bootstrap list (there are no public bootstrap nodes yet).

const (
	keyPeer       = "peers/"
	maxBookPeers  = 200
	bookSaveEvery = 30 * time.Second
)

// savePeers records the connected peers' addresses, replacing the book.
func (n *Node) savePeers() {
	conns := n.host.Network().Peers()
	if len(conns) == 0 {
		return // keep the old book: a node cut off should try it again
	}
	wb := n.db.NewWriteBatch()
	defer wb.Cancel()
	_ = n.db.DropPrefix([]byte(keyPeer))
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
		b, err := json.Marshal(addrs)
		if err != nil {
			continue
		}
		if err := wb.Set([]byte(keyPeer+p.String()), b); err != nil {
			n.log.Warn("save address book", "err", err)
			return
		}
	}
	if err := wb.Flush(); err != nil {
		n.log.Warn("save address book", "err", err)
	}
}

// loadPeers reads the address book.
func (n *Node) loadPeers() []peer.AddrInfo {
	var out []peer.AddrInfo
	_ = n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyPeer)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := peer.Decode(string(it.Item().Key()[len(keyPeer):]))
			if err != nil || id == n.host.ID() {
				continue
			}
			var addrs []string
			if it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &addrs) }) != nil {
				continue
			}
			ai := peer.AddrInfo{ID: id}
			for _, s := range addrs {
				if a, err := ma.NewMultiaddr(s); err == nil {
					ai.Addrs = append(ai.Addrs, a)
				}
			}
			out = append(out, ai)
		}
		return nil
	})
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
			n.savePeers()
		}
	}
}
