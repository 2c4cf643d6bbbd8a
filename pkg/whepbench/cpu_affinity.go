package whepbench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ParseCPUList parses a CPU list as taskset -c takes it: "1", "0,2",
// "0-3,6". The result is sorted and without duplicates.
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("%w: CPU list %q: bad element %q", ErrConfig, s, part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

// PinCPUs restricts every thread of this process to cpus (as taskset -c
// does for a whole process); threads started later inherit the mask. It
// does not change GOMAXPROCS: the caller sets it (to len(cpus), say).
func PinCPUs(cpus []int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("%w: no CPU to pin to", ErrConfig)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= 1024 {
			return fmt.Errorf("%w: CPU %d out of range", ErrConfig, c)
		}
		set.Set(c)
	}
	// The runtime may start threads while we go; repeat until a pass finds
	// no thread it has not pinned yet.
	done := map[int]bool{}
	for {
		tids, err := threadIDs()
		if err != nil {
			return err
		}
		fresh := 0
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			fresh++
			if err := unix.SchedSetaffinity(tid, &set); err != nil {
				if err == unix.ESRCH { // the thread exited meanwhile
					continue
				}
				return fmt.Errorf("whepbench: pinning thread %d to CPUs %v: %w", tid, cpus, err)
			}
			done[tid] = true
		}
		if fresh == 0 {
			return nil
		}
	}
}

// threadIDs lists the threads of this process.
func threadIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProc, err)
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
