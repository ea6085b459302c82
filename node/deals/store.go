package deals

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Keys of the badger store; the record and capacity keys are those the
// node used before the driver had its own package.
const (
	keyRecord    = "deal/r/"
	keyCapacity  = "deal/capacity/"
	keyCursorOld = "deal/chain-cursor" // 8 bytes: the next block
	keyCursor    = "deal/chain-cursor/v2"
)

// BadgerStore keeps the driver's state in a badger database shared with
// the rest of the node. Writes are ordinary transactions (never DropPrefix
// or DropAll, which block every write of the process while they run),
// each synced before it returns.
type BadgerStore struct{ db *badger.DB }

// NewBadgerStore returns a store on db.
func NewBadgerStore(db *badger.DB) *BadgerStore { return &BadgerStore{db: db} }

// LoadDeals implements Store.
func (s *BadgerStore) LoadDeals() ([]Record, error) {
	var out []Record
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyRecord)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r Record
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return fmt.Errorf("deals: corrupt record %s: %w", it.Item().Key(), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// SaveDeals implements Store: one transaction, then a sync.
func (s *BadgerStore) SaveDeals(recs []*Record) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := txn.Set([]byte(keyRecord+r.Deal.ID.Hex()), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.Sync()
}

// LoadCursor implements Store.
func (s *BadgerStore) LoadCursor() (Cursor, error) {
	var c Cursor
	err := s.db.View(func(txn *badger.Txn) error {
		if it, err := txn.Get([]byte(keyCursor)); err == nil {
			return it.Value(func(v []byte) error { return json.Unmarshal(v, &c) })
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		it, err := txn.Get([]byte(keyCursorOld))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if len(v) == 8 {
				c.Next = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	return c, err
}

// SaveCursor implements Store.
func (s *BadgerStore) SaveCursor(c Cursor) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keyCursor), b) }); err != nil {
		return err
	}
	return s.db.Sync()
}

// LoadCapacity implements Store.
func (s *BadgerStore) LoadCapacity() (map[uint64]uint32, error) {
	out := map[uint64]uint32{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyCapacity)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(keyCapacity)+8 {
				continue
			}
			_ = it.Item().Value(func(v []byte) error {
				if len(v) == 4 {
					out[binary.BigEndian.Uint64(k[len(keyCapacity):])] = binary.BigEndian.Uint32(v)
				}
				return nil
			})
		}
		return nil
	})
	return out, err
}

// SaveCapacity implements Store.
func (s *BadgerStore) SaveCapacity(pool uint64, ips uint32) error {
	k := binary.BigEndian.AppendUint64([]byte(keyCapacity), pool)
	v := binary.BigEndian.AppendUint32(nil, ips)
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) }); err != nil {
		return err
	}
	return s.db.Sync()
}
