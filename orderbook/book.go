package orderbook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Book is the order book kept in badger under the key prefix "ob/". It holds
// live orders with their indices (shard and price, maker, deadline), cancel
// tombstones, the latest heartbeat per maker and shard, and series versions.
//
// An offer is live until the earlier of its expiry and TTL after the later
// of its created time and its maker's latest heartbeat in its shard; a
// request until its expiry; an order of this node's own maker (Own) until
// its expiry, since this node is its maker's heartbeat. Sweep removes what
// is past its deadline.
//
// Reads run concurrently; writes are serialised by mu so a check-then-write
// (supersede, cancel) sees no interleaving writer.
type Book struct {
	db  *badger.DB
	ttl time.Duration
	own common.Address

	mu sync.Mutex // serialises writes
}

// BookConfig configures a Book.
type BookConfig struct {
	// TTL is how long a heartbeat (or an offer's creation) keeps it live.
	TTL time.Duration
	// Own is this node's maker address; its orders live until they expire.
	Own common.Address
}

// NewBook uses db, which the caller opened and closes.
func NewBook(db *badger.DB, cfg BookConfig) *Book {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultLiveTTL
	}
	return &Book{db: db, ttl: cfg.TTL, own: cfg.Own}
}

const (
	pOrder     = 'o' // id -> record
	pDeadline  = 'd' // deadline(8) id -> nil
	pShard     = 's' // cc(2) kind(1) price(32) id -> nil
	pMaker     = 'm' // maker(20) cc(2) id -> kind(1) created(8) expires(8), or nil (books before the heartbeat fast path)
	pSeries    = 'v' // maker(20) nonce(8) -> version(4) id(32)
	pCancel    = 'c' // id -> tombstone expiry(8) cancel json
	pTombstone = 'e' // expiry(8) id -> nil
	pHeartbeat = 'h' // maker(20) cc(2) -> created(8) heartbeat json
)

func key(prefix byte, parts ...[]byte) []byte {
	k := make([]byte, 0, 80)
	k = append(k, 'o', 'b', '/', prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func u64b(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func price32(v *big.Int) []byte {
	var b [32]byte
	if v != nil && v.Sign() >= 0 && v.BitLen() <= 256 {
		v.FillBytes(b[:])
	}
	return b[:]
}

// record is what is stored for an order.
type record struct {
	deadline uint64
	order    *Order
}

func encodeRecord(r record) []byte { return appendStoredOrder(u64b(r.deadline), r.order) }

func decodeRecord(b []byte) (record, error) {
	if len(b) < 8 {
		return record{}, errCorruptRecord
	}
	deadline := binary.BigEndian.Uint64(b[:8])
	if len(b) > 8 && b[8] == recordFormat {
		o, err := decodeStoredOrder(b[8:])
		if err != nil {
			return record{}, err
		}
		return record{deadline: deadline, order: o}, nil
	}
	// A record of the wire form (JSON), from before recordFormat. The book
	// wrote the order under its id, which Add checked: the id in the
	// record is not checked by hashing the order again.
	o, _, err := decodeWireOrder(b[8:])
	if err != nil {
		return record{}, fmt.Errorf("%w: %w", errCorruptRecord, err)
	}
	return record{deadline: deadline, order: &o}, nil
}

// Added says what Add did.
type Added struct {
	// Superseded is the older version of the series that the order replaced.
	Superseded *Order
}

// Has implements StateView.
func (b *Book) Has(id common.Hash) bool { return b.exists(key(pOrder, id[:])) }

// Cancelled implements StateView.
func (b *Book) Cancelled(id common.Hash) bool { return b.exists(key(pCancel, id[:])) }

// Series implements StateView.
func (b *Book) Series(maker common.Address, nonce uint64) (uint32, common.Hash, bool) {
	var (
		v  uint32
		id common.Hash
		ok bool
	)
	_ = b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pSeries, maker[:], u64b(nonce)))
		if err != nil {
			return err
		}
		return item.Value(func(val []byte) error {
			if len(val) == 36 {
				v, ok = binary.BigEndian.Uint32(val[:4]), true
				copy(id[:], val[4:])
			}
			return nil
		})
	})
	return v, id, ok
}

func (b *Book) exists(k []byte) bool {
	err := b.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(k)
		return err
	})
	return err == nil
}

// Add stores a validated order, replacing an older version of its series.
// It checks duplicates, cancels and versions again under the write lock, so
// two racing adds cannot both win.
func (b *Book) Add(o *Order) (Added, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := o.ID()
	if b.Cancelled(id) {
		return Added{}, fmt.Errorf("%w: %s", ErrCancelled, id.Hex())
	}
	if b.Has(id) {
		return Added{}, fmt.Errorf("%w: %s", ErrDuplicate, id.Hex())
	}
	var res Added
	if v, cur, ok := b.Series(o.Maker, o.Nonce); ok {
		if v > o.Version || (v == o.Version && cur != id) {
			return Added{}, fmt.Errorf("%w: have version %d, got %d", ErrSuperseded, v, o.Version)
		}
		old, err := b.Get(cur)
		if err == nil {
			res.Superseded = old
		}
	}
	hb := b.heartbeat(o.Maker, o.Shard())
	err := b.db.Update(func(txn *badger.Txn) error {
		if res.Superseded != nil {
			if err := b.deleteOrder(txn, res.Superseded); err != nil {
				return err
			}
		}
		return b.putOrder(txn, o, hb)
	})
	if err != nil {
		return Added{}, fmt.Errorf("orderbook: store order %s: %w", id.Hex(), err)
	}
	return res, nil
}

func (b *Book) deadline(o *Order, hb uint64) uint64 {
	if o.Kind != KindOffer || o.Maker == b.own {
		return o.Expires
	}
	return b.liveUntil(o.Created, o.Expires, hb)
}

// liveUntil is the deadline of an offer created and expiring at those
// times, with the latest heartbeat of its maker at hb.
func (b *Book) liveUntil(created, expires, hb uint64) uint64 {
	return min(expires, max(created, hb)+uint64(b.ttl/time.Second))
}

// livenessOf is what a heartbeat needs of an order to extend it, kept in
// the maker index so that it needs no decoding.
func livenessOf(o *Order) []byte {
	v := make([]byte, 0, 17)
	v = append(v, byte(o.Kind))
	v = append(v, u64b(o.Created)...)
	return append(v, u64b(o.Expires)...)
}

func (b *Book) putOrder(txn *badger.Txn, o *Order, hb uint64) error {
	id := o.ID()
	d := b.deadline(o, hb)
	rec := encodeRecord(record{deadline: d, order: o})
	cc := []byte(o.Shard())
	var ver [36]byte
	binary.BigEndian.PutUint32(ver[:4], o.Version)
	copy(ver[4:], id[:])
	for _, kv := range [][2][]byte{
		{key(pOrder, id[:]), rec},
		{key(pDeadline, u64b(d), id[:]), nil},
		{key(pShard, cc, []byte{byte(o.Kind)}, price32(o.PricePerHour), id[:]), nil},
		{key(pMaker, o.Maker[:], cc, id[:]), livenessOf(o)},
		{key(pSeries, o.Maker[:], u64b(o.Nonce)), ver[:]},
	} {
		if err := txn.Set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func (b *Book) deleteOrder(txn *badger.Txn, o *Order) error {
	id := o.ID()
	item, err := txn.Get(key(pOrder, id[:]))
	if err != nil {
		return err
	}
	var d uint64
	if err := item.Value(func(v []byte) error {
		if len(v) >= 8 {
			d = binary.BigEndian.Uint64(v[:8])
		}
		return nil
	}); err != nil {
		return err
	}
	cc := []byte(o.Shard())
	keys := [][]byte{
		key(pOrder, id[:]),
		key(pDeadline, u64b(d), id[:]),
		key(pShard, cc, []byte{byte(o.Kind)}, price32(o.PricePerHour), id[:]),
		key(pMaker, o.Maker[:], cc, id[:]),
	}
	// The series entry goes only if it still points at this order.
	sk := key(pSeries, o.Maker[:], u64b(o.Nonce))
	if it, err := txn.Get(sk); err == nil {
		_ = it.Value(func(v []byte) error {
			if len(v) == 36 && bytes.Equal(v[4:], id[:]) {
				keys = append(keys, sk)
			}
			return nil
		})
	}
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Get returns an order by id, or ErrNotFound.
func (b *Book) Get(id common.Hash) (*Order, error) {
	var o *Order
	err := b.db.View(func(txn *badger.Txn) (err error) {
		o, err = getOrder(txn, id)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id.Hex())
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// getOrder reads the order stored under id in txn.
func getOrder(txn *badger.Txn, id common.Hash) (*Order, error) {
	item, err := txn.Get(key(pOrder, id[:]))
	if err != nil {
		return nil, err
	}
	var rec record
	err = item.Value(func(v []byte) error {
		rec, err = decodeRecord(v)
		return err
	})
	return rec.order, err
}

// Cancel applies a validated cancel: the order (when known) must be the
// cancel's maker's; it is removed and a tombstone kept until the order would
// have expired, so a replay of either is refused. A cancel for an order not
// seen yet is kept as a tombstone too (gossip does not keep order).
func (b *Book) Cancel(c *Cancel) (*Order, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Cancelled(c.OrderID) {
		return nil, fmt.Errorf("%w: order %s already cancelled", ErrDuplicate, c.OrderID.Hex())
	}
	o, err := b.Get(c.OrderID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	expiry := c.Created + MaxLifetime
	if o != nil {
		if o.Maker != c.Maker {
			return nil, fmt.Errorf("%w: cancel by %s for an order of %s", ErrWrongSigner, c.Maker.Hex(), o.Maker.Hex())
		}
		expiry = o.Expires
	}
	cj, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	err = b.db.Update(func(txn *badger.Txn) error {
		if o != nil {
			if err := b.deleteOrder(txn, o); err != nil {
				return err
			}
		}
		if err := txn.Set(key(pCancel, c.OrderID[:]), append(u64b(expiry), cj...)); err != nil {
			return err
		}
		return txn.Set(key(pTombstone, u64b(expiry), c.OrderID[:]), nil)
	})
	if err != nil {
		return nil, fmt.Errorf("orderbook: cancel %s: %w", c.OrderID.Hex(), err)
	}
	return o, nil
}

// CancelOf returns the stored cancel of an order, for peers that sync.
func (b *Book) CancelOf(id common.Hash) (*Cancel, error) {
	var c *Cancel
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pCancel, id[:]))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			c = new(Cancel)
			return json.Unmarshal(v[8:], c)
		})
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: no cancel for %s", ErrNotFound, id.Hex())
	}
	return c, err
}

func (b *Book) heartbeat(maker common.Address, cc string) uint64 {
	var t uint64
	_ = b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pHeartbeat, maker[:], []byte(cc)))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) >= 8 {
				t = binary.BigEndian.Uint64(v[:8])
			}
			return nil
		})
	})
	return t
}

// HeartbeatOf returns the latest heartbeat known of a maker in a shard, so
// a peer that syncs can be handed the proof that the maker's offers live.
func (b *Book) HeartbeatOf(maker common.Address, cc string) (*Heartbeat, error) {
	var h *Heartbeat
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pHeartbeat, maker[:], []byte(cc)))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) <= 8 {
				return nil
			}
			h = new(Heartbeat)
			return json.Unmarshal(v[8:], h)
		})
	})
	if errors.Is(err, badger.ErrKeyNotFound) || (err == nil && h == nil) {
		return nil, fmt.Errorf("%w: no heartbeat of %s in %s", ErrNotFound, maker.Hex(), cc)
	}
	return h, err
}

// ApplyHeartbeat records a validated heartbeat and extends the liveness of
// its maker's offers in its shard. It returns whether the book then holds
// exactly the maker's live orders the heartbeat's digest names; false means
// orders are missing here (or extra) and should be pulled. A heartbeat
// older than the latest one known is ErrStale.
func (b *Book) ApplyHeartbeat(h *Heartbeat) (inSync bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev := b.heartbeat(h.Maker, h.Country); prev > h.Created {
		return false, fmt.Errorf("%w: heartbeat from %d, have %d", ErrStale, h.Created, prev)
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return false, err
	}
	var ids []common.Hash
	err = b.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(key(pHeartbeat, h.Maker[:], []byte(h.Country)), append(u64b(h.Created), hj...)); err != nil {
			return err
		}
		// A maker's offers in the shard each move to a later deadline:
		// their record's first 8 bytes and their deadline key, nothing
		// else. Every node does this for every maker each heartbeat
		// interval, so it decodes nothing it need not.
		type live struct {
			id   common.Hash
			meta []byte
		}
		var orders []live
		it := txn.NewIterator(badger.IteratorOptions{Prefix: key(pMaker, h.Maker[:], []byte(h.Country))})
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			var l live
			copy(l.id[:], k[len(k)-32:])
			var err error
			if l.meta, err = it.Item().ValueCopy(nil); err != nil {
				it.Close()
				return err
			}
			orders = append(orders, l)
			ids = append(ids, l.id)
		}
		it.Close()
		if h.Maker == b.own {
			return nil // own orders live until they expire
		}
		for _, l := range orders {
			if err := b.extend(txn, l.id, l.meta, h.Created); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("orderbook: apply heartbeat of %s: %w", h.Maker.Hex(), err)
	}
	d, n := digestOfIDs(ids)
	return d == h.Digest && n == h.Count, nil
}

// extend moves the deadline of order id (of maker index value meta) to
// what a heartbeat at hb gives it, when that is an offer's and changes.
func (b *Book) extend(txn *badger.Txn, id common.Hash, meta []byte, hb uint64) error {
	item, err := txn.Get(key(pOrder, id[:]))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rec, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	if len(rec) < 8 {
		return errCorruptRecord
	}
	var kind Kind
	var created, expires uint64
	if len(meta) == 17 {
		kind, created, expires = Kind(meta[0]), binary.BigEndian.Uint64(meta[1:9]), binary.BigEndian.Uint64(meta[9:])
	} else { // a maker index entry written before it carried these
		r, err := decodeRecord(rec)
		if err != nil {
			return err
		}
		kind, created, expires = r.order.Kind, r.order.Created, r.order.Expires
	}
	if kind != KindOffer {
		return nil
	}
	old := binary.BigEndian.Uint64(rec[:8])
	d := b.liveUntil(created, expires, hb)
	if d == old {
		return nil
	}
	if err := txn.Delete(key(pDeadline, u64b(old), id[:])); err != nil {
		return err
	}
	if err := txn.Set(key(pDeadline, u64b(d), id[:]), nil); err != nil {
		return err
	}
	binary.BigEndian.PutUint64(rec[:8], d)
	return txn.Set(key(pOrder, id[:]), rec)
}

// DigestOf is the heartbeat digest of a set of orders: keccak256 of their
// ids sorted ascending and concatenated, with their count.
func DigestOf(orders []*Order) (common.Hash, uint32) {
	ids := make([]common.Hash, len(orders))
	for i, o := range orders {
		ids[i] = o.ID()
	}
	return digestOfIDs(ids)
}

// digestOfIDs is DigestOf from the orders' ids; it sorts ids in place.
func digestOfIDs(ids []common.Hash) (common.Hash, uint32) {
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	buf := make([]byte, 0, 32*len(ids))
	for _, id := range ids {
		buf = append(buf, id[:]...)
	}
	return crypto.Keccak256Hash(buf), uint32(len(ids))
}

// ByMaker lists a maker's live orders in a shard (in every shard, for "").
func (b *Book) ByMaker(maker common.Address, cc string) ([]*Order, error) {
	orders, _, err := b.byMaker(maker, cc)
	return orders, err
}

func (b *Book) byMaker(maker common.Address, cc string) ([]*Order, []common.Hash, error) {
	var ids []common.Hash
	prefix := key(pMaker, maker[:], []byte(cc))
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			var id common.Hash
			copy(id[:], k[len(k)-32:])
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return b.getAll(ids)
}

// getAll loads the orders of ids, skipping those removed meanwhile, and
// returns them with their ids: ids compacted in place to stay parallel.
func (b *Book) getAll(ids []common.Hash) ([]*Order, []common.Hash, error) {
	out := make([]*Order, 0, len(ids))
	kept := ids[:0]
	// One read transaction for all: a transaction per order was a fifth
	// of listing a shard.
	err := b.db.View(func(txn *badger.Txn) error {
		for _, id := range ids {
			o, err := getOrder(txn, id)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue // removed meanwhile
			}
			if err != nil {
				return err
			}
			out = append(out, o)
			kept = append(kept, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, kept, nil
}

// Query selects orders. Zero fields match everything.
type Query struct {
	Country string
	Kind    Kind
	Maker   common.Address
	// After is an opaque cursor from a previous Page; Limit bounds a page
	// (0: no bound).
	After []byte
	Limit int
}

// Page lists orders of a shard (and kind, if set) in ascending price order
// (price per IP-hour, then id), starting after the cursor. It returns the
// cursor of the next page, nil at the end. Without a country it lists
// every order in id order.
func (b *Book) Page(q Query) ([]*Order, []byte, error) {
	orders, _, next, err := b.page(q)
	return orders, next, err
}

// page is Page with the ids of the orders, read from the index keys.
func (b *Book) page(q Query) ([]*Order, []common.Hash, []byte, error) {
	var prefix []byte
	switch {
	case q.Country != "" && q.Kind != 0:
		prefix = key(pShard, []byte(q.Country), []byte{byte(q.Kind)})
	case q.Country != "":
		prefix = key(pShard, []byte(q.Country))
	default:
		prefix = key(pOrder)
	}
	var (
		ids  []common.Hash
		next []byte
	)
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		start := prefix
		if len(q.After) > 0 {
			start = append(append([]byte{}, prefix[:4]...), q.After...)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(q.After) > 0 && bytes.Equal(k[4:], q.After) {
				continue
			}
			var id common.Hash
			copy(id[:], k[len(k)-32:])
			ids = append(ids, id)
			if q.Limit > 0 && len(ids) == q.Limit {
				last := append([]byte{}, k[4:]...) // k is invalid after Next
				it.Next()
				if it.Valid() {
					next = last
				}
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	orders, ids, err := b.getAll(ids)
	if err != nil {
		return nil, nil, nil, err
	}
	orders, ids = q.filter(orders, ids)
	return orders, ids, next, nil
}

// filter keeps the orders (and their ids, in step) of q's maker and kind.
func (q Query) filter(orders []*Order, ids []common.Hash) ([]*Order, []common.Hash) {
	if q.Maker == (common.Address{}) && q.Kind == 0 {
		return orders, ids
	}
	n := 0
	for i, o := range orders {
		if (q.Maker == common.Address{} || o.Maker == q.Maker) && (q.Kind == 0 || o.Kind == q.Kind) {
			orders[n], ids[n] = o, ids[i]
			n++
		}
	}
	return orders[:n], ids[:n]
}

// List returns every order matching q (no paging).
func (b *Book) List(q Query) ([]*Order, error) {
	orders, _, err := b.ListWithIDs(q)
	return orders, err
}

// ListWithIDs is List with the order ids, ids[i] == orders[i].ID(), taken
// from the keys the book reads anyway: an id is a Keccak digest, and a
// matcher handed them (matching.NewSnapshotWithIDs) need not compute them.
func (b *Book) ListWithIDs(q Query) ([]*Order, []common.Hash, error) {
	if q.Maker != (common.Address{}) {
		// The maker index holds a maker's orders of every shard (of one,
		// with a country): read them without the rest of the book.
		orders, ids, err := b.byMaker(q.Maker, q.Country)
		if err != nil {
			return nil, nil, err
		}
		orders, ids = q.filter(orders, ids)
		return orders, ids, nil
	}
	q.After, q.Limit = nil, 0
	orders, ids, _, err := b.page(q)
	return orders, ids, err
}

// Sweep removes orders past their deadline and tombstones past their
// expiry, and returns the orders removed.
func (b *Book) Sweep(now time.Time) ([]*Order, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := uint64(max(now.Unix(), 0))
	var (
		due    []common.Hash
		tombKs [][]byte
	)
	err := b.db.View(func(txn *badger.Txn) error {
		for _, p := range []byte{pDeadline, pTombstone} {
			prefix := key(p)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().Key()
				if binary.BigEndian.Uint64(k[4:12]) > n {
					break
				}
				var id common.Hash
				copy(id[:], k[12:])
				if p == pDeadline {
					due = append(due, id)
				} else {
					tombKs = append(tombKs, append([]byte{}, k...), key(pCancel, id[:]))
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	orders, _, err := b.getAll(due)
	if err != nil {
		return nil, err
	}
	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range tombKs {
		if err := wb.Delete(k); err != nil {
			return nil, err
		}
	}
	if err := wb.Flush(); err != nil {
		return nil, fmt.Errorf("orderbook: sweep tombstones: %w", err)
	}
	for _, o := range orders {
		if err := b.db.Update(func(txn *badger.Txn) error { return b.deleteOrder(txn, o) }); err != nil {
			return nil, fmt.Errorf("orderbook: sweep %s: %w", o.ID().Hex(), err)
		}
	}
	return orders, nil
}

// Count returns the number of live orders.
func (b *Book) Count() int {
	n := 0
	_ = b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: key(pOrder)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n
}
