package network

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `{
  "name": "ipsx-dev",
  "chainId": 1337,
  "rpc": ["http://127.0.0.1:8545", "ws://127.0.0.1:8546", "/run/geth.ipc"],
  "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  "escrow": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
  "deployBlock": 3,
  "commissionBps": 100,
  "bootstrap": ["/ip4/127.0.0.1/tcp/4001/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"]
}`

func TestDecode(t *testing.T) {
	f, err := Decode([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if f.ChainID != 1337 || len(f.RPC) != 3 || f.DeployBlock != 3 || f.CommissionBps != 100 || f.ConfirmationsOr() != 0 {
		t.Fatalf("decoded %+v", f)
	}
	f.ChainID = 1
	if f.ConfirmationsOr() != DefaultConfirmations {
		t.Fatalf("confirmations on chain 1: %d", f.ConfirmationsOr())
	}
	zero := uint64(0)
	f.Confirmations = &zero
	if f.ConfirmationsOr() != 0 {
		t.Fatal("an explicit 0 is not kept")
	}

	for name, edit := range map[string]func(string) string{
		"no chain id": func(s string) string { return strings.Replace(s, `"chainId": 1337,`, ``, 1) },
		"no rpc": func(s string) string {
			return strings.Replace(s, `["http://127.0.0.1:8545", "ws://127.0.0.1:8546", "/run/geth.ipc"]`, `[]`, 1)
		},
		"rpc scheme": func(s string) string { return strings.Replace(s, `http://127.0.0.1:8545`, `ftp://x`, 1) },
		"no token": func(s string) string {
			return strings.Replace(s, `0x5FbDB2315678afecb367f032d93F642f64180aa3`, `0x0000000000000000000000000000000000000000`, 1)
		},
		"bad escrow": func(s string) string {
			return strings.Replace(s, `0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512`, `0x12`, 1)
		},
		"commission too big": func(s string) string { return strings.Replace(s, `100`, `501`, 1) },
		"bootstrap no p2p": func(s string) string {
			return strings.Replace(s, `/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ`, ``, 1)
		},
		"bootstrap garbage": func(s string) string { return strings.Replace(s, `/ip4/127.0.0.1/tcp/4001`, `/nonsense`, 1) },
		"unknown key":       func(s string) string { return strings.Replace(s, `"name"`, `"nmae"`, 1) },
		"trailing data":     func(s string) string { return s + `{}` },
		"not json":          func(string) string { return `chainId: 1` },
	} {
		if _, err := Decode([]byte(edit(good))); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestWriteLoad(t *testing.T) {
	f, err := Decode([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "network.json")
	if err := f.Write(path, false); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if g.Escrow != f.Escrow || g.Token != f.Token || len(g.Bootstrap) != 1 || g.Name != "ipsx-dev" {
		t.Fatalf("round trip: %+v", g)
	}
	if err := f.Write(path, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second write without overwrite: %v", err)
	}
	f.Name = "renamed"
	if err := f.Write(path, true); err != nil {
		t.Fatal(err)
	}
	if g, _ := Load(path); g.Name != "renamed" {
		t.Fatalf("overwrite: %+v", g)
	}
	f.RPC = nil
	if err := f.Write(filepath.Join(t.TempDir(), "x.json"), false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("writing an invalid file: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
