package chain

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
)

type sentKey struct{}

// WithTxSent returns a context under which a transaction method calls f
// with the transaction's hash once the node took it, before the receipt
// is awaited (the crash tests kill a process at that instant).
func WithTxSent(ctx context.Context, f func(hash common.Hash)) context.Context {
	return context.WithValue(ctx, sentKey{}, f)
}

func txSent(ctx context.Context, h common.Hash) {
	if f, ok := ctx.Value(sentKey{}).(func(common.Hash)); ok {
		f(h)
	}
}
