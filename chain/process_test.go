package chain

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ipsx/ipsx/agreement"
)

const childEnv = "IPSX_CHAIN_TEST_DEVCHAIN_CHILD"

// TestMain lets the test binary double as a dev chain process: with
// childEnv set it runs RunDevChain on a loopback port until its stdin closes
// (so it never outlives the test) or it is signalled.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	go func() { // ends with the process; cancels when the parent closes stdin
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	cfg := DefaultDevChainConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	if err := RunDevChain(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestDevChainOverJSONRPC runs the deal flow against a dev chain served
// over JSON-RPC by a separate process, as `ipsx devchain` serves it.
func TestDevChainOverJSONRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel) // after the process cleanup below: cleanups run last-in first-out
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		<-drained
		if err := cmd.Wait(); err != nil {
			t.Errorf("dev chain process: %v", err)
		}
	})

	// Read the banner up to the rpc line, which comes last.
	info := map[string]string{}
	var keys []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "account ") {
			_, key, _ := strings.Cut(value, " key ")
			keys = append(keys, key)
			continue
		}
		info[name] = value
		if name == "rpc" {
			break
		}
	}
	go func() {
		defer close(drained)
		io.Copy(io.Discard, stdout)
	}()
	if info["rpc"] == "" || len(keys) < 2 {
		t.Fatalf("banner incomplete: %v, %d keys (%v)", info, len(keys), sc.Err())
	}
	if !strings.HasPrefix(info["rpc"], "http://127.0.0.1:") || info["chain id"] != "1337" {
		t.Fatalf("banner: %v", info)
	}

	cl, err := Dial(ctx, info["rpc"])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	contracts, err := LoadContracts(ctx, cl, common.HexToAddress(info["escrow"]))
	if err != nil {
		t.Fatal(err)
	}
	if contracts.Token != common.HexToAddress(info["token"]) {
		t.Fatalf("token %s, banner says %s", contracts.Token, info["token"])
	}
	pk, err := crypto.HexToECDSA(strings.TrimPrefix(keys[0], "0x"))
	if err != nil {
		t.Fatal(err)
	}
	rk, err := crypto.HexToECDSA(strings.TrimPrefix(keys[1], "0x"))
	if err != nil {
		t.Fatal(err)
	}
	opts := []Option{WithPollInterval(10 * time.Millisecond), WithReceiptTimeout(20 * time.Second)}
	provider, err := NewClient(cl, contracts, pk, opts...)
	if err != nil {
		t.Fatal(err)
	}
	requester, err := NewClient(cl, contracts, rk, opts...)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := requester.Deposit(ctx, tokens(20)); err != nil {
		t.Fatal(err)
	}
	head, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tm := agreement.Terms{
		OfferID: common.Hash{1}, RequestID: common.Hash{2},
		Provider: provider.Address(), Requester: requester.Address(),
		IPs: 1, PricePerIPHour: tokens(1), PricePerGB: tokens(1), MaxAmount: tokens(15),
		Start: head.Time, Deadline: head.Time + 600, Nonce: 1,
	}
	dom := contracts.Domain()
	ps, _ := tm.Sign(dom, pk)
	rs, _ := tm.Sign(dom, rk)
	if _, err := requester.Open(ctx, tm, ps, rs); err != nil {
		t.Fatal(err)
	}
	v := agreement.Voucher{DealID: tm.ID(dom), Amount: tokens(5), Bytes: 1 << 20, ConnLogHash: common.Hash{3}}
	vs, _ := v.Sign(dom, rk)
	if _, err := provider.Settle(ctx, tm, v, vs); err != nil {
		t.Fatal(err)
	}
	// A revert comes back decoded over HTTP too.
	if _, err := provider.Settle(ctx, tm, v, vs); !IsRevert(err, "DealNotOpen") {
		t.Fatalf("second settle: %v", err)
	}
	b, err := requester.Balances(ctx, requester.Address())
	if err != nil {
		t.Fatal(err)
	}
	if b.Escrow.Cmp(tokens(15)) != 0 || b.Reserved.Sign() != 0 {
		t.Fatalf("requester %+v", b)
	}
	b, err = provider.Balances(ctx, provider.Address())
	if err != nil {
		t.Fatal(err)
	}
	if want := tokens(5); b.Escrow.Cmp(new(big0).Sub(want, new(big0).Div(want, bigInt(100)))) != 0 {
		t.Fatalf("provider %+v", b)
	}
	if s, _ := provider.DealStatus(ctx, tm.ID(dom)); s != StatusSettled {
		t.Fatalf("status %s", s)
	}
}
