package whepbench

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCPUList(t *testing.T) {
	cases := []struct {
		in   string
		want []int
	}{
		{"1", []int{1}},
		{"0,2", []int{0, 2}},
		{"0-3,6", []int{0, 1, 2, 3, 6}},
		{"3,1,1,2-3", []int{1, 2, 3}},
		{" 4 ", []int{4}},
	}
	for _, c := range cases {
		got, err := ParseCPUList(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "a", "1,", "3-1", "-1", "1-", "1024", "0-2000"} {
		if got, err := ParseCPUList(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want ErrConfig", bad, got, err)
		}
	}
}

func cpusOf(t *testing.T, tid int) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		t.Fatal(err)
	}
	var out []int
	for c := range 1024 {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// TestPinCPUs pins the test process to one of its CPUs, checks every thread,
// and restores the original mask.
func TestPinCPUs(t *testing.T) {
	orig := cpusOf(t, 0)
	t.Cleanup(func() {
		if err := PinCPUs(orig); err != nil {
			t.Errorf("restoring the mask: %v", err)
		}
		if got := cpusOf(t, 0); !slices.Equal(got, orig) {
			t.Errorf("mask after restore = %v, want %v", got, orig)
		}
	})
	target := []int{orig[len(orig)-1]}
	if err := PinCPUs(target); err != nil {
		t.Fatal(err)
	}
	tids, err := threadIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(tids) < 2 {
		t.Fatalf("threads = %v; a Go test process has several", tids)
	}
	for _, tid := range tids {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			if err == unix.ESRCH {
				continue
			}
			t.Fatal(err)
		}
		if set.Count() != 1 || !set.IsSet(target[0]) {
			t.Errorf("thread %d: %d CPUs in its mask, want only CPU %d", tid, set.Count(), target[0])
		}
	}
	if err := PinCPUs(nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("PinCPUs(nil) = %v, want ErrConfig", err)
	}
}
