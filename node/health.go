package node

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipsx/ipsx/node/api"
	"github.com/ipsx/ipsx/sdk"
)

// Operating the node: the health endpoint's checks, the log level at
// runtime, and the parts of Status that say how the node stands (its
// chain, its exit).

// chainCheckTimeout bounds the chain read of a health check or a status.
const chainCheckTimeout = 3 * time.Second

// WithLogLevel lets the API change the node's log level at runtime
// (ipsx log level debug): lvl must be the level of the handler behind
// WithLogger. Without it the level is fixed and the API says so.
func WithLogLevel(lvl *slog.LevelVar) Option { return func(o *options) { o.logLevel = lvl } }

// Health implements api.Backend: live while Run runs; ready when the
// database reads, the chain (if any) answers, and every followed shard has
// finished its order sync.
func (n *Node) Health(ctx context.Context) sdk.Health {
	h := sdk.Health{}
	select {
	case <-n.ready:
		h.Live = n.runCtx != nil && n.runCtx.Err() == nil
	default:
		h.Checks = append(h.Checks, sdk.HealthCheck{Name: "started", OK: false, Detail: "the node is starting"})
		return h
	}
	db := sdk.HealthCheck{Name: "database", OK: true}
	if err := n.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(nonceKey)
		if err == badger.ErrKeyNotFound {
			return nil
		}
		return err
	}); err != nil {
		db.OK, db.Detail = false, "reads fail"
		n.log.Warn("health: database read", "err", err)
	}
	ch := sdk.HealthCheck{Name: "chain", OK: true, Detail: "no chain configured"}
	if n.escrow != nil {
		ch.Detail = ""
		if _, err := n.chainHead(ctx); err != nil {
			ch.OK, ch.Detail = false, "unreachable"
		}
	}
	sh := sdk.HealthCheck{Name: "shards", OK: true}
	var unsynced []string
	n.mu.Lock()
	for cc, s := range n.shards {
		if !s.synced.Load() {
			unsynced = append(unsynced, cc)
		}
	}
	total := len(n.shards)
	n.mu.Unlock()
	sort.Strings(unsynced)
	if len(unsynced) > 0 {
		sh.OK, sh.Detail = false, fmt.Sprintf("%d of %d not synced: %v", len(unsynced), total, unsynced)
	} else {
		sh.Detail = fmt.Sprintf("%d synced", total)
	}
	h.Checks = append(h.Checks, db, ch, sh)
	h.Ready = h.Live && db.OK && ch.OK && sh.OK
	return h
}

// chainHead reads the chain's newest block, bounded by chainCheckTimeout.
func (n *Node) chainHead(ctx context.Context) (sdk.ChainStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, chainCheckTimeout)
	defer cancel()
	num, _, t, err := n.escrow.BlockAt(ctx, nil)
	if err != nil {
		n.metrics.chainCall("header", err)
		return sdk.ChainStatus{Error: err.Error()}, err
	}
	return sdk.ChainStatus{Reachable: true, Block: num, BlockTime: time.Unix(int64(t), 0).UTC()}, nil
}

// LogLevel implements api.Backend.
func (n *Node) LogLevel(context.Context) (sdk.LogLevel, error) {
	if n.o.logLevel == nil {
		return sdk.LogLevel{}, api.ErrNoLogLevel
	}
	return sdk.LogLevel{Level: api.LevelName(n.o.logLevel.Level())}, nil
}

// SetLogLevel implements api.Backend.
func (n *Node) SetLogLevel(_ context.Context, l slog.Level) (sdk.LogLevel, error) {
	if n.o.logLevel == nil {
		return sdk.LogLevel{}, api.ErrNoLogLevel
	}
	n.o.logLevel.Set(l)
	return sdk.LogLevel{Level: api.LevelName(l)}, nil
}

// opsStatus adds the chain and the exit to a status.
func (n *Node) opsStatus(ctx context.Context, st *sdk.Status) {
	if n.escrow != nil {
		cs, _ := n.chainHead(ctx)
		st.Chain = &cs
	}
	if n.tun != nil && n.tun.exit != nil {
		ex := &sdk.ExitStatus{
			Egress: []string{},
			DefaultDeny: []string{
				"loopback, private, link-local, CGNAT, multicast, broadcast, documentation, benchmarking and reserved ranges (IPv4, IPv6 and their embedded forms)",
				"the provider's own addresses",
				"ports 25, 119, 135-139, 445, 563, 1214, 4661-4666, 6346-6429, 6699, 6881-6999",
			},
			Allow: n.cfg.ExitAllow, Deny: n.cfg.ExitDeny, LoopbackAllowed: n.o.unsafeLoopbackExit,
		}
		if n.o.egress.IsValid() {
			ex.Egress = append(ex.Egress, n.o.egress.String())
		}
		for _, a := range n.o.egressPool {
			ex.Egress = append(ex.Egress, a.String())
		}
		st.Exit = ex
	}
}
