//go:build !linux

package orderbook

import "time"

var cpuStart = time.Now()

// threadCPU falls back to the wall clock where there is no per-thread CPU
// time.
func threadCPU() time.Duration { return time.Since(cpuStart) }
