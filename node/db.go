package node

import (
	"encoding/json"

	"github.com/dgraph-io/badger/v4"
)

// dbHas reports whether key is in the database.
func (n *Node) dbHas(key []byte) bool {
	err := n.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(key)
		return err
	})
	return err == nil
}

// dbGetJSON decodes the JSON value under key into v (badger.ErrKeyNotFound
// if there is none).
func (n *Node) dbGetJSON(key []byte, v any) error {
	return n.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error { return json.Unmarshal(b, v) })
	})
}
