package chain

import (
	"context"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// serveOn serves the env's chain on a new loopback listener until the
// returned stop is called.
func serveOn(t *testing.T, e *env) (url string, stop func()) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.dc.Serve(ctx, ln) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// TestFailover: calls go through while the network file's first endpoint
// is down, hangs, or stops in the middle, and fail only when every one
// does.
func TestFailover(t *testing.T) {
	e := newEnv(t, nil)
	a, stopA := serveOn(t, e)
	b, stopB := serveOn(t, e)

	// An endpoint nobody listens on, and one that accepts and never answers.
	dead := "http://" + freeAddr(t)
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	f, err := DialAll(e.ctx, []string{dead, "http://" + hung.Addr().String(), a, b}, WithAttemptTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.URL() != a {
		t.Fatalf("current endpoint %s, want the first that answers, %s", f.URL(), a)
	}
	cl, err := NewClient(f, e.dc.Contracts(), e.ok, WithPollInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	to := crypto.PubkeyToAddress(e.pk.PublicKey)
	if _, err := cl.SendETH(e.ctx, to, big.NewInt(1)); err != nil {
		t.Fatal(err)
	}

	stopA()
	if _, err := cl.SendETH(e.ctx, to, big.NewInt(2)); err != nil {
		t.Fatalf("with %s down: %v", a, err)
	}
	if _, err := cl.Balances(e.ctx, to); err != nil {
		t.Fatalf("with %s down: %v", a, err)
	}
	if f.URL() != b {
		t.Fatalf("current endpoint %s, want %s", f.URL(), b)
	}
	// Node answers pass through unchanged.
	if _, err := cl.Withdraw(e.ctx, tokens(1)); !IsRevert(err, "InsufficientBalance") {
		t.Fatalf("withdraw without balance: %v, want the revert", err)
	}

	stopB()
	if _, err := cl.Balances(e.ctx, to); err == nil {
		t.Fatal("every endpoint down, and a call succeeded")
	}
	if _, err := DialAll(e.ctx, []string{dead}); err == nil {
		t.Fatal("DialAll of an endpoint that is down succeeded")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
