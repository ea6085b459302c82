// Package network owns the network file: the JSON document that tells a
// node which IPSX network to join — the chain (its id, one or more JSON-RPC
// URLs, the token and escrow addresses, the block they were deployed in,
// the commission the escrow takes), how many confirmations deal events
// need there, and the bootstrap peers of the mesh.
//
// `ipsx chain deploy` and `ipsx testnet up` write one; `ipsx init
// --network FILE` copies it into the data dir and `ipsx node --network
// FILE` reads it. The node then checks the file against the chain: the
// chain id must match, and the escrow must hold this build's code
// (chain.VerifyDeployment) with the file's token and commission.
//
// The package only reads, writes and validates the file; it does no
// network I/O and imports neither the chain client nor libp2p.
//
// # Form
//
//	{
//	  "name": "ipsx-dev",
//	  "chainId": 1337,
//	  "rpc": ["http://127.0.0.1:8545"],
//	  "token": "0x…",
//	  "escrow": "0x…",
//	  "deployBlock": 3,
//	  "commissionBps": 100,
//	  "confirmations": 0,
//	  "bootstrap": ["/ip4/192.0.2.1/tcp/4001/p2p/16Uiu2…"]
//	}
//
// rpc needs at least one URL (http, https, ws, wss, or an IPC path);
// calls fail over from one to the next. confirmations may be left out: a
// node then uses 0 on the dev chain (chain id 1337) and
// DefaultConfirmations elsewhere. Unknown keys are an error, so that a
// typo does not go unnoticed.
package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrInvalid is wrapped by every error about a file's content.
var ErrInvalid = errors.New("network: invalid network file")

// DevChainID is the chain id of the embedded dev chain, which needs no
// confirmations.
const DevChainID = 1337

// DefaultConfirmations is how many blocks a node waits on top of a deal
// event's block on a chain other than the dev chain, when the file does
// not say: about two and a half minutes on Ethereum mainnet, far beyond
// its usual one-block reorgs.
const DefaultConfirmations = 12

// MaxCommissionBps is the escrow's cap on the commission.
const MaxCommissionBps = 500

// File is a network file.
type File struct {
	// Name is a label for people (optional).
	Name    string   `json:"name,omitempty"`
	ChainID uint64   `json:"chainId"`
	RPC     []string `json:"rpc"`
	// Token and Escrow are the deployment's contract addresses.
	Token  common.Address `json:"token"`
	Escrow common.Address `json:"escrow"`
	// DeployBlock is where the deployment's events begin (0: unknown).
	DeployBlock uint64 `json:"deployBlock,omitempty"`
	// CommissionBps is the escrow's commission in basis points, as it was
	// deployed; a node refuses an escrow that takes another.
	CommissionBps uint16 `json:"commissionBps"`
	// Confirmations, when set, is how many blocks must sit on top of a deal
	// event's block before a node acts on it.
	Confirmations *uint64 `json:"confirmations,omitempty"`
	// Bootstrap are multiaddrs with /p2p/<peer id> of the mesh's entry
	// points.
	Bootstrap []string `json:"bootstrap,omitempty"`
}

// Validate names the first bad field.
func (f *File) Validate() error {
	switch {
	case f.ChainID == 0:
		return fmt.Errorf("%w: chainId is missing", ErrInvalid)
	case len(f.RPC) == 0:
		return fmt.Errorf("%w: rpc lists no URL", ErrInvalid)
	case f.Token == (common.Address{}):
		return fmt.Errorf("%w: token is missing", ErrInvalid)
	case f.Escrow == (common.Address{}):
		return fmt.Errorf("%w: escrow is missing", ErrInvalid)
	case f.CommissionBps > MaxCommissionBps:
		return fmt.Errorf("%w: commissionBps %d is above the escrow's cap of %d", ErrInvalid, f.CommissionBps, MaxCommissionBps)
	}
	for _, u := range f.RPC {
		if err := checkRPC(u); err != nil {
			return err
		}
	}
	for _, b := range f.Bootstrap {
		m, err := ma.NewMultiaddr(b)
		if err != nil {
			return fmt.Errorf("%w: bootstrap %q: %v", ErrInvalid, b, err)
		}
		if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
			return fmt.Errorf("%w: bootstrap %q has no /p2p/<peer id>", ErrInvalid, b)
		}
	}
	return nil
}

func checkRPC(u string) error {
	if strings.HasPrefix(u, "/") || strings.HasPrefix(u, ".") {
		return nil // an IPC socket path
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%w: rpc %q: %v", ErrInvalid, u, err)
	}
	switch p.Scheme {
	case "http", "https", "ws", "wss":
		if p.Host == "" {
			return fmt.Errorf("%w: rpc %q has no host", ErrInvalid, u)
		}
		return nil
	}
	return fmt.Errorf("%w: rpc %q: want an http, https, ws or wss URL or an IPC path", ErrInvalid, u)
}

// ConfirmationsOr is the file's confirmations, else 0 on the dev chain
// and DefaultConfirmations elsewhere.
func (f *File) ConfirmationsOr() uint64 {
	if f.Confirmations != nil {
		return *f.Confirmations
	}
	if f.ChainID == DevChainID {
		return 0
	}
	return DefaultConfirmations
}

// Decode parses and validates a network file.
func Decode(b []byte) (*File, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var f File
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Load reads and validates the network file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("network: read %s: %w", path, err)
	}
	f, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Encode returns the file as indented JSON, validated.
func (f *File) Encode() ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Write writes the file to path, refusing to replace an existing file
// unless overwrite is set.
func (f *File) Write(path string, overwrite bool) error {
	b, err := f.Encode()
	if err != nil {
		return err
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flag |= os.O_EXCL
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("network: %w", err)
		}
	}
	w, err := os.OpenFile(path, flag, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("network: %s exists; not replaced", path)
	}
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return fmt.Errorf("network: write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("network: write %s: %w", path, err)
	}
	return nil
}
