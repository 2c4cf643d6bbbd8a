package whepbench

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want uint64
		bad  bool
	}{
		{"plain", "1234 (broker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 500 1000 200", 325, false},
		{"spaces and parens in comm", "42 (a) b (c)) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1", 10, false},
		{"large", "9 (x) S 1 1 1 0 -1 0 0 0 0 0 18446744073709551000 0 0 0 20 0 1 0 1 1 1", 18446744073709551000, false},
		{"no paren", "1234 broker S 1 2 3", 0, true},
		{"short", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 5", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 five 3 0 0", 0, true},
		{"empty", "", 0, true},
	}
	for _, c := range cases {
		got, err := parseStatCPU([]byte(c.in))
		if c.bad {
			if err == nil {
				t.Errorf("%s: no error (got %d)", c.name, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want int64
		bad  bool
	}{
		{"real layout", "Name:\tbroker\nVmPeak:\t  900000 kB\nVmRSS:\t   51200 kB\nRssAnon:\t 40000 kB\n", 51200 << 10, false},
		{"last line no newline", "Name:\tx\nVmRSS:\t1 kB", 1024, false},
		{"zero", "VmRSS:\t0 kB\n", 0, false},
		{"missing", "Name:\tkthreadd\nState:\tS\n", 0, true},
		{"wrong unit", "VmRSS:\t12 MB\n", 0, true},
		{"not a number", "VmRSS:\tlots kB\n", 0, true},
		{"negative", "VmRSS:\t-5 kB\n", 0, true},
	}
	for _, c := range cases {
		got, err := parseStatusRSS([]byte(c.in))
		if c.bad {
			if err == nil {
				t.Errorf("%s: no error (got %d)", c.name, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}

func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestReadProcSelfCPU checks ReadProc against getrusage for this process,
// after burning some CPU: both count the same thread-group CPU time, /proc
// in 10 ms ticks (utime and stime each truncated).
func TestReadProcSelfCPU(t *testing.T) {
	first, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn 150 ms of CPU (not of wall time: the machine may be busy).
	burnUntil := rusageCPU(t) + 150*time.Millisecond
	x := 0
	for rusageCPU(t) < burnUntil {
		for range 10000 {
			x++
		}
	}
	runtime.KeepAlive(x)

	lo := rusageCPU(t)
	s, err := ReadProc(os.Getpid())
	hi := rusageCPU(t)
	if err != nil {
		t.Fatal(err)
	}
	const tick = time.Second / userHZ
	if s.CPU < lo-2*tick || s.CPU > hi+2*tick {
		t.Fatalf("ReadProc CPU = %v, getrusage between %v and %v", s.CPU, lo, hi)
	}
	if s.CPU%tick != 0 {
		t.Fatalf("CPU %v is not a whole number of ticks", s.CPU)
	}
	if used := s.CPU - first.CPU; used < 150*time.Millisecond-2*tick {
		t.Fatalf("150 ms of CPU counted as %v", used)
	}
	if s.PID != os.Getpid() || s.At.IsZero() {
		t.Fatalf("sample = %+v", s)
	}
}

// TestReadProcSelfRSS touches 64 MiB and checks that VmRSS grew by about
// that much.
func TestReadProcSelfRSS(t *testing.T) {
	before, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS < 1<<20 {
		t.Fatalf("RSS of the test process = %d bytes", before.RSS)
	}
	const size = 64 << 20
	buf := make([]byte, size)
	for i := 0; i < size; i += 4096 {
		buf[i] = 1
	}
	after, err := ReadProc(os.Getpid())
	runtime.KeepAlive(buf)
	if err != nil {
		t.Fatal(err)
	}
	// The race detector adds shadow memory for the touched pages: up to
	// about twice as much again.
	if grew := after.RSS - before.RSS; grew < size-4<<20 || grew > 3*size+32<<20 {
		t.Fatalf("RSS grew by %d bytes after touching %d", grew, size)
	}
}

func TestReadProcErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := readProc(root, 1); !errors.Is(err, ErrProc) {
		t.Fatalf("missing process: err = %v, want ErrProc", err)
	}
	dir := filepath.Join(root, "7")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("stat", "7 (x) S 1 1 1 0 -1 0 0 0 0 0 30 20 0 0 20 0 1 0 1 1 1")
	write("status", "Name:\tx\n")
	if _, err := readProc(root, 7); !errors.Is(err, ErrProc) {
		t.Fatalf("no VmRSS: err = %v, want ErrProc", err)
	}
	write("status", "Name:\tx\nVmRSS:\t 300 kB\n")
	s, err := readProc(root, 7)
	if err != nil || s.CPU != 500*time.Millisecond || s.RSS != 300<<10 || s.PID != 7 {
		t.Fatalf("readProc = %+v, %v; want CPU 500ms, RSS 307200", s, err)
	}
	if err := checkPIDs([]int{os.Getpid()}); err != nil {
		t.Fatalf("checkPIDs(self) = %v", err)
	}
	// PIDs are below /proc/sys/kernel/pid_max (at most 2^22).
	if err := checkPIDs([]int{1 << 23}); !errors.Is(err, ErrConfig) {
		t.Fatalf("checkPIDs(absent) = %v, want ErrConfig", err)
	}
}

func TestProcCost(t *testing.T) {
	t0 := time.Unix(1000, 0)
	base0 := ProcSample{PID: 5, At: t0.Add(-4 * time.Second), CPU: 600 * time.Millisecond, RSS: 90 << 20}
	before := ProcSample{PID: 5, At: t0, CPU: time.Second, RSS: 100 << 20}
	start := ProcSample{PID: 5, At: t0.Add(10 * time.Second), CPU: 3 * time.Second, RSS: 150 << 20}
	end := ProcSample{PID: 5, At: t0.Add(20 * time.Second), CPU: 8 * time.Second, RSS: 200 << 20}
	// Without a baseline: 5 s of CPU in 10 s for 100 units.
	r := procCost("pid "+strconv.Itoa(5), ProcSample{}, before, start, end, 100)
	if r.Window != 10*time.Second || r.CPU != 5*time.Second || r.Cores != 0.5 || r.CorePerUnit != 0.005 ||
		r.UnitsPerCore != 200 || r.RSSPerUnit != 1<<20 || r.RSSBefore != 100<<20 || r.RSSAfter != 200<<20 ||
		r.WindowSeconds != 10 || r.CPUSeconds != 5 || r.BaselineCores != 0 {
		t.Fatalf("procCost = %+v", r)
	}
	// With a baseline of 0.4 s in 4 s (0.1 core): 0.4 core for 100 units.
	r = procCost("x", base0, before, start, end, 100)
	if !near(r.BaselineCores, 0.1) || r.Cores != 0.5 || !near(r.CorePerUnit, 0.004) || !near(r.UnitsPerCore, 250) {
		t.Fatalf("procCost with baseline = %+v", r)
	}
	if z := procCost("x", ProcSample{}, before, start, end, 0); z.CorePerUnit != 0 || z.UnitsPerCore != 0 || z.RSSPerUnit != 0 {
		t.Fatalf("procCost with no units = %+v", z)
	}
	// A window cheaper than the baseline is no cost, not a negative one.
	idle := ProcSample{PID: 5, At: t0.Add(20 * time.Second), CPU: 3 * time.Second}
	if z := procCost("x", base0, before, start, idle, 10); z.CorePerUnit != 0 || z.UnitsPerCore != 0 {
		t.Fatalf("procCost below baseline = %+v", z)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
