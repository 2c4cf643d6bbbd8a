//go:build !linux

package whep

import "time"

// threadCPU is not measured here (see thread_cpu_linux_test.go).
func threadCPU() (user, sys time.Duration) { return 0, 0 }
