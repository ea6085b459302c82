//go:build !unix

package matching

import "time"

var cpuStart = time.Now()

// processCPU falls back to the clock where there is no rusage.
func processCPU() time.Duration { return time.Since(cpuStart) }
