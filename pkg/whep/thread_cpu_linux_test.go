//go:build linux

package whep

import (
	"syscall"
	"time"
)

// threadCPU returns the user and system CPU time of the calling OS thread
// (the system part is mostly the kernel's UDP send, on loopback the
// receiver's side too); the caller locks its goroutine to the thread. Other
// processes on the machine barely move it.
func threadCPU() (user, sys time.Duration) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
