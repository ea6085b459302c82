// Package crash holds the crash points of the process-level crash tests:
// named places in the node (a deal state just persisted, a transaction
// just sent, a deal message just written) where a test can make the
// process kill itself with SIGKILL, as `kill -9` would at that instant.
//
// A point fires only when the environment variable IPSX_TEST_CRASH_AT
// names it when the process starts: "deal.status.accepted" fires at the
// first hit, "deal.status.active:3" at the third. Without the variable a
// point costs one atomic load. The variable is for tests; a node run by a
// user never sets it.
//
// A point can hold instead: with IPSX_TEST_HOLD_AT naming it and
// IPSX_TEST_HOLD_FILE a path, the goroutine that reaches the point creates
// the file and waits until the test removes it (at most a minute). A test
// uses it to kill the other side at the very instant this one reached the
// point (a provider killed just as the requester sent the escrow open),
// however quickly the next step would follow.
package crash

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Env is the variable that arms a crash point; HoldEnv and HoldFileEnv
// arm a hold.
const (
	Env         = "IPSX_TEST_CRASH_AT"
	HoldEnv     = "IPSX_TEST_HOLD_AT"
	HoldFileEnv = "IPSX_TEST_HOLD_FILE"
)

// holdMax bounds a hold whose test never lets go.
const holdMax = time.Minute

var (
	holdArmed atomic.Bool
	holdName  string
	holdFile  string
	held      atomic.Bool
)

var (
	armed atomic.Bool
	name  string
	nth   int64
	hits  atomic.Int64
)

func init() {
	arm(os.Getenv(Env))
	if p, f := os.Getenv(HoldEnv), os.Getenv(HoldFileEnv); p != "" && f != "" {
		holdName, holdFile = p, f
		holdArmed.Store(true)
	}
}

func arm(spec string) {
	if spec == "" {
		return
	}
	name, nth = spec, 1
	if n, c, ok := strings.Cut(spec, ":"); ok {
		k, err := strconv.ParseInt(c, 10, 64)
		if err == nil && k > 0 {
			name, nth = n, k
		}
	}
	armed.Store(true)
}

// Point kills the process if it is the armed point's nth hit, or holds
// at the first hit of the armed hold.
func Point(p string) {
	if holdArmed.Load() && p == holdName && held.CompareAndSwap(false, true) {
		hold(p)
	}
	if !armed.Load() || p != name {
		return
	}
	if hits.Add(1) != nth {
		return
	}
	fmt.Fprintf(os.Stderr, "crash point %s: killing the process\n", p)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// hold creates the hold file and waits until it is gone.
func hold(p string) {
	if err := os.WriteFile(holdFile, []byte(p+"\n"), 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "hold point %s: %v\n", p, err)
		return
	}
	fmt.Fprintf(os.Stderr, "hold point %s: waiting until %s is removed\n", p, holdFile)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(holdMax)
	for {
		select {
		case <-tick.C:
			if _, err := os.Stat(holdFile); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(os.Stderr, "hold point %s: released\n", p)
				return
			}
		case <-deadline:
			fmt.Fprintf(os.Stderr, "hold point %s: not released after %v; going on\n", p, holdMax)
			return
		}
	}
}
