//go:build unix

package matching

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system, every thread, the garbage
// collector's included) the process has used: on a shared machine it
// moves less with the load than the clock does.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
