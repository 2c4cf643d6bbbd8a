//go:build unix

package relay

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) the process used so far,
// every thread included: benchmarks report it next to wall time because it
// barely moves when other processes compete for the CPUs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
