package orderbook

import (
	"syscall"
	"time"
)

// rusageThread is Linux's RUSAGE_THREAD, which package syscall leaves out.
const rusageThread = 1

// threadCPU is the CPU time (user and system) the calling OS thread has
// used, so that a benchmark pinned to its thread measures its own work and
// not the time other processes on the machine took from it.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
