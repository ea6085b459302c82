//go:build !nodevchain

package chain

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// The faucet is what lets a testnet of separate hosts (the docker-compose
// testnet in deploy/) come up with no hand-written configuration: each
// node generates its key on first start, asks the dev chain's faucet for
// the network's settings and for funds, and a bootstrap node announces its
// addresses there, so that the others find it. It serves beside the dev
// chain's JSON-RPC, under /faucet/:
//
//	GET  /faucet/network    chain id, contracts, commission, bootstrap peers
//	POST /faucet/fund       {"address": "0x…"}: ETH and tokens, once
//	POST /faucet/bootstrap  {"addrs": ["/ip4/…/tcp/…/p2p/<id>", …]}
//
// It has no authentication: it is for dev chains only, whose keys are
// public anyway.

// FaucetConfig is what the faucet gives each address that asks.
type FaucetConfig struct {
	// ETH (wei) and Tokens (base units) per address; an address that
	// holds at least half of ETH already is not funded again.
	ETH, Tokens *big.Int
}

const (
	maxFaucetBody     = 8 << 10
	maxBootstrapPeers = 64
	maxBootstrapAddrs = 16
	maxMultiaddrLen   = 256
)

// Faucet serves the /faucet/ endpoints of a dev chain.
type Faucet struct {
	dc         *DevChain
	cfg        FaucetConfig
	commission uint16

	fundMu sync.Mutex // one funding at a time: each checks the balance first

	mu    sync.Mutex
	peers []bootPeer // oldest announcement first
}

type bootPeer struct {
	id    string
	addrs []string
}

// NewFaucet returns the faucet of dc; commissionBps is the escrow's
// commission as deployed (the network file's field).
func NewFaucet(dc *DevChain, cfg FaucetConfig, commissionBps uint16) (*Faucet, error) {
	if cfg.ETH == nil || cfg.ETH.Sign() <= 0 || cfg.Tokens == nil || cfg.Tokens.Sign() < 0 {
		return nil, fmt.Errorf("%w: the faucet needs a positive ETH amount and a non-negative token amount", ErrInvalidConfig)
	}
	if dc.contracts.Escrow == (common.Address{}) {
		return nil, fmt.Errorf("%w: the faucet needs the contracts (not --empty)", ErrInvalidConfig)
	}
	return &Faucet{dc: dc, cfg: cfg, commission: commissionBps}, nil
}

// Network is what GET /faucet/network answers.
func (f *Faucet) Network() FaucetNetwork {
	c := f.dc.contracts
	n := FaucetNetwork{ChainID: c.ChainID.Uint64(), Token: c.Token, Escrow: c.Escrow,
		DeployBlock: c.DeployBlock, CommissionBps: f.commission, Bootstrap: []string{}}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.peers {
		n.Bootstrap = append(n.Bootstrap, p.addrs...)
	}
	return n
}

// Fund gives addr the faucet's ETH and tokens unless it holds at least
// half of that ETH already.
func (f *Faucet) Fund(ctx context.Context, addr common.Address) (FaucetFunded, error) {
	f.fundMu.Lock()
	defer f.fundMu.Unlock()
	res := FaucetFunded{Address: addr, ETH: "0", Tokens: "0"}
	bal, err := f.dc.client.BalanceAt(ctx, addr, nil)
	if err != nil {
		return res, fmt.Errorf("devchain: faucet: balance of %s: %w", addr.Hex(), err)
	}
	if new(big.Int).Mul(bal, big.NewInt(2)).Cmp(f.cfg.ETH) >= 0 {
		return res, nil
	}
	if err := f.dc.Fund(ctx, addr, f.cfg.ETH, f.cfg.Tokens); err != nil {
		return res, err
	}
	res.Funded, res.ETH, res.Tokens = true, f.cfg.ETH.String(), f.cfg.Tokens.String()
	return res, nil
}

// Announce records a bootstrap peer's addresses, replacing what the same
// peer announced before. Every address must end in the same /p2p/<id>.
func (f *Faucet) Announce(addrs []string) error {
	if len(addrs) == 0 || len(addrs) > maxBootstrapAddrs {
		return fmt.Errorf("%w: announce 1 to %d addresses, not %d", ErrInvalidArgument, maxBootstrapAddrs, len(addrs))
	}
	id := ""
	for _, a := range addrs {
		i := strings.LastIndex(a, "/p2p/")
		if len(a) > maxMultiaddrLen || !strings.HasPrefix(a, "/") || i < 0 || i+len("/p2p/") == len(a) {
			return fmt.Errorf("%w: %.80q is not a multiaddr ending in /p2p/<peer id>", ErrInvalidArgument, a)
		}
		pid := a[i+len("/p2p/"):]
		if id != "" && pid != id {
			return fmt.Errorf("%w: the addresses name two peers, %s and %s", ErrInvalidArgument, id, pid)
		}
		id = pid
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = slices.DeleteFunc(f.peers, func(p bootPeer) bool { return p.id == id })
	if len(f.peers) >= maxBootstrapPeers {
		f.peers = f.peers[1:]
	}
	f.peers = append(f.peers, bootPeer{id: id, addrs: slices.Clone(addrs)})
	return nil
}

// ServeHTTP serves the /faucet/ endpoints.
func (f *Faucet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Address string   `json:"address"`
		Addrs   []string `json:"addrs"`
	}
	decode := func() bool {
		r.Body = http.MaxBytesReader(w, r.Body, maxFaucetBody)
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			faucetError(w, http.StatusBadRequest, fmt.Errorf("request body: %w", err))
			return false
		}
		return true
	}
	switch {
	case r.URL.Path == "/faucet/network" && r.Method == http.MethodGet:
		faucetJSON(w, http.StatusOK, f.Network())
	case r.URL.Path == "/faucet/fund" && r.Method == http.MethodPost:
		if !decode() {
			return
		}
		if !common.IsHexAddress(body.Address) {
			faucetError(w, http.StatusBadRequest, fmt.Errorf("address %.60q is not an Ethereum address", body.Address))
			return
		}
		res, err := f.Fund(r.Context(), common.HexToAddress(body.Address))
		if err != nil {
			faucetError(w, http.StatusInternalServerError, err)
			return
		}
		faucetJSON(w, http.StatusOK, res)
	case r.URL.Path == "/faucet/bootstrap" && r.Method == http.MethodPost:
		if !decode() {
			return
		}
		if err := f.Announce(body.Addrs); err != nil {
			faucetError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/faucet/network" || r.URL.Path == "/faucet/fund" || r.URL.Path == "/faucet/bootstrap":
		faucetError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed", r.Method, r.URL.Path))
	default:
		faucetError(w, http.StatusNotFound, fmt.Errorf("%s: no such faucet endpoint (network, fund, bootstrap)", r.URL.Path))
	}
}

func faucetJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func faucetError(w http.ResponseWriter, code int, err error) {
	faucetJSON(w, code, map[string]string{"error": err.Error()})
}

// Handler serves the chain's JSON-RPC, and the faucet under /faucet/ when
// f is not nil.
func (dc *DevChain) Handler(f *Faucet) http.Handler {
	if f == nil {
		return dc.rpc
	}
	mux := http.NewServeMux()
	mux.Handle("/faucet/", f)
	mux.Handle("/", dc.rpc)
	return mux
}
