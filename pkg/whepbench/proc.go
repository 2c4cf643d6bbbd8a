package whepbench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times of /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// ProcSample is a process's CPU time and resident memory at one moment.
type ProcSample struct {
	PID int
	At  time.Time
	// CPU is utime+stime of /proc/PID/stat (all threads, children not
	// included), at a resolution of 1/USER_HZ (10 ms).
	CPU time.Duration
	// RSS is VmRSS of /proc/PID/status, in bytes.
	RSS int64
}

// ReadProc reads the CPU time and RSS of process pid from /proc.
func ReadProc(pid int) (ProcSample, error) {
	return readProc("/proc", pid)
}

func readProc(root string, pid int) (ProcSample, error) {
	s := ProcSample{PID: pid}
	dir := root + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("%w: %w", ErrProc, err)
	}
	s.At = time.Now()
	ticks, err := parseStatCPU(stat)
	if err != nil {
		return s, fmt.Errorf("%w: %s/stat: %w", ErrProc, dir, err)
	}
	s.CPU = time.Duration(ticks) * (time.Second / userHZ)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("%w: %w", ErrProc, err)
	}
	if s.RSS, err = parseStatusRSS(status); err != nil {
		return s, fmt.Errorf("%w: %s/status: %w", ErrProc, dir, err)
	}
	return s, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15, in clock ticks) of
// the content of /proc/PID/stat. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so the fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (uint64, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("no ')' after the command name")
	}
	// Fields after the command: state is field 3, utime 14, stime 15.
	fields := bytes.Fields(b[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), stime+1)
	}
	u, err := strconv.ParseUint(string(fields[utime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseUint(string(fields[stime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return u + s, nil
}

// parseStatusRSS returns VmRSS, in bytes, of the content of
// /proc/PID/status ("VmRSS:\t   1234 kB").
func parseStatusRSS(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("VmRSS line %q: bad number", bytes.TrimSpace(line))
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line (a zombie or kernel thread?)")
}

// ProcReport is the cost of one process over the steady window of a run.
type ProcReport struct {
	PID   int    `json:"pid"`
	Label string `json:"label"`
	// BaselineCores is the CPU use before the load (0 when not measured):
	// what the process costs idle, or with the stream being ingested.
	BaselineCores float64 `json:"baseline_cores"`
	// Window is the steady window over which CPU was measured.
	Window time.Duration `json:"-"`
	// CPU is the CPU time used in the window.
	CPU time.Duration `json:"-"`
	// WindowSeconds and CPUSeconds are Window and CPU in seconds.
	WindowSeconds float64 `json:"window_s"`
	CPUSeconds    float64 `json:"cpu_s"`
	// Cores is CPU / Window: the number of cores kept busy.
	Cores float64 `json:"cores"`
	// Units is what the cost is divided by (connected viewers, streams).
	Units int `json:"units"`
	// CorePerUnit is (Cores - BaselineCores) / Units: the marginal cost
	// of a unit; UnitsPerCore is its inverse.
	CorePerUnit  float64 `json:"core_per_unit"`
	UnitsPerCore float64 `json:"units_per_core"`
	// RSSBefore is the RSS before the load, RSSAfter at the end of the
	// window; RSSPerUnit is their difference divided by Units.
	RSSBefore  int64 `json:"rss_before_bytes"`
	RSSAfter   int64 `json:"rss_after_bytes"`
	RSSPerUnit int64 `json:"rss_per_unit_bytes"`
	// Err is set when the process could not be read.
	Err string `json:"error,omitempty"`
}

// procCost computes a ProcReport from the samples at the start and end of
// the baseline (base0, before; base0 zero when there was none) and of the
// window.
func procCost(label string, base0, before, start, end ProcSample, units int) ProcReport {
	r := ProcReport{PID: end.PID, Label: label, Window: end.At.Sub(start.At), CPU: end.CPU - start.CPU,
		Units: units, RSSBefore: before.RSS, RSSAfter: end.RSS}
	r.WindowSeconds, r.CPUSeconds = r.Window.Seconds(), r.CPU.Seconds()
	if d := before.At.Sub(base0.At); !base0.At.IsZero() && d > 0 {
		r.BaselineCores = (before.CPU - base0.CPU).Seconds() / d.Seconds()
	}
	if r.Window > 0 {
		r.Cores = r.CPU.Seconds() / r.Window.Seconds()
	}
	if units > 0 {
		r.CorePerUnit = max(0, r.Cores-r.BaselineCores) / float64(units)
		r.RSSPerUnit = (end.RSS - before.RSS) / int64(units)
		if r.CorePerUnit > 0 {
			r.UnitsPerCore = 1 / r.CorePerUnit
		}
	}
	return r
}

// procWatch samples a set of processes (the load generator itself first).
type procWatch struct {
	pids   []int
	labels []string
	base0  []ProcSample // start of the baseline (zero: none)
	before []ProcSample // end of the baseline: before the load
	start  []ProcSample
	errs   []error
	host   hostSample // at the window's start
}

func newProcWatch(pids []int) *procWatch {
	w := &procWatch{pids: append([]int{os.Getpid()}, pids...), labels: []string{"whep-bench"}}
	for _, p := range pids {
		w.labels = append(w.labels, "pid "+strconv.Itoa(p))
	}
	w.errs = make([]error, len(w.pids))
	w.base0 = make([]ProcSample, len(w.pids))
	return w
}

// checkPIDs fails when a process of pids cannot be read.
func checkPIDs(pids []int) error {
	for _, p := range pids {
		if _, err := ReadProc(p); err != nil {
			return fmt.Errorf("%w: --pid %d: %w", ErrConfig, p, err)
		}
	}
	return nil
}

func (w *procWatch) sample() []ProcSample {
	out := make([]ProcSample, len(w.pids))
	for i, p := range w.pids {
		s, err := ReadProc(p)
		if err != nil && w.errs[i] == nil {
			w.errs[i] = err
		}
		out[i] = s
	}
	return out
}

// baseline measures the processes for d before the load (not at all when
// d <= 0 or there is no server process) and takes the "before" samples.
func (w *procWatch) baseline(ctx context.Context, d time.Duration) error {
	if d > 0 && len(w.pids) > 1 {
		w.base0 = w.sample()
		if err := pause(ctx, d); err != nil {
			return err
		}
	}
	w.before = w.sample()
	return nil
}

func (w *procWatch) markStart() {
	w.host = readHost()
	w.start = w.sample()
}

// report returns the load generator's report, the servers' reports and
// the machine's.
func (w *procWatch) report(units int) (self ProcReport, servers []ProcReport, host HostReport) {
	end := w.sample()
	hostEnd := readHost()
	measured, seen := 0.0, map[int]bool{}
	for i := range w.pids {
		r := procCost(w.labels[i], w.base0[i], w.before[i], w.start[i], end[i], units)
		r.PID = w.pids[i]
		if w.errs[i] != nil {
			r = ProcReport{PID: w.pids[i], Label: w.labels[i], Units: units, Err: w.errs[i].Error()}
		}
		if !seen[r.PID] {
			seen[r.PID] = true
			measured += r.Cores
		}
		if i == 0 {
			self = r
		} else {
			servers = append(servers, r)
		}
	}
	return self, servers, hostReport(w.host, hostEnd, measured)
}
