//go:build linux

package testnet_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfCPU is the user and system CPU time this process has used, all its
// threads together (getrusage RUSAGE_SELF).
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// userHZ is the unit of /proc/PID/stat's times: USER_HZ, which Linux
// fixes at 100 for user space on every architecture it runs on here
// (sysconf(_SC_CLK_TCK), which Go cannot ask without cgo).
const userHZ = 100

// treeCPU is the user and system CPU time used by the processes roots
// and all their descendants, read from /proc/PID/stat: each live one's
// utime+stime, plus cutime+cstime, what children that exited were
// charged when one of them reaped them. sshd's per-connection processes
// call setsid, so the tree is followed by parent pid, not by process
// group. Its resolution is 1/userHZ per process.
func treeCPU(roots ...int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	type proc struct{ ppid, ticks int }
	procs := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		// f[0] is field 3 (state): ppid is field 4, utime…cstime 14…17.
		p := proc{}
		p.ppid, _ = strconv.Atoi(f[1])
		for _, k := range f[11:15] {
			t, _ := strconv.Atoi(k)
			p.ticks += t
		}
		procs[pid] = p
	}
	in := map[int]bool{}
	for _, r := range roots {
		if _, ok := procs[r]; !ok {
			return 0, fmt.Errorf("process %d is gone", r)
		}
		in[r] = true
	}
	// Descendants: repeat until no process joins (trees are shallow).
	for grew := true; grew; {
		grew = false
		for pid, p := range procs {
			if !in[pid] && in[p.ppid] {
				in[pid], grew = true, true
			}
		}
	}
	ticks := 0
	for pid := range in {
		ticks += procs[pid].ticks
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
