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
package crash

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Env is the variable that arms a crash point.
const Env = "IPSX_TEST_CRASH_AT"

var (
	armed atomic.Bool
	name  string
	nth   int64
	hits  atomic.Int64
)

func init() { arm(os.Getenv(Env)) }

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

// Point kills the process if it is the armed point's nth hit.
func Point(p string) {
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
