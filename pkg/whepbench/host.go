package whepbench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// HostReport describes the machine during the steady window, to tell a
// clean measurement from one disturbed by other work.
type HostReport struct {
	// CPUs is the number of CPUs of the machine (the cpuN lines of
	// /proc/stat).
	CPUs int `json:"cpus"`
	// LoadAvgStart and LoadAvgEnd are the 1-minute load averages at the
	// window's start and end.
	LoadAvgStart float64 `json:"loadavg_start"`
	LoadAvgEnd   float64 `json:"loadavg_end"`
	// BusyCores is the whole machine's non-idle CPU time in the window
	// divided by the window (all processes; steal excluded); StealCores
	// the time the hypervisor gave to others.
	BusyCores  float64 `json:"busy_cores"`
	StealCores float64 `json:"steal_cores"`
	// OtherCores is BusyCores minus the measured processes (servers and
	// whep-bench): the other work on the machine.
	OtherCores float64 `json:"other_cores"`
	Err        string  `json:"error,omitempty"`
}

// hostSample is the machine's CPU times (/proc/stat, first line) and load.
type hostSample struct {
	at      time.Time
	cpus    int
	busy    time.Duration // user+nice+system+irq+softirq
	steal   time.Duration
	loadavg float64
	err     error
}

func readHost() hostSample {
	s := hostSample{at: time.Now()}
	stat, err := os.ReadFile("/proc/stat")
	if err == nil {
		s.cpus, s.busy, s.steal, err = parseProcStat(stat)
	}
	if err == nil {
		var la []byte
		if la, err = os.ReadFile("/proc/loadavg"); err == nil {
			s.loadavg, err = parseLoadAvg(la)
		}
	}
	if err != nil {
		s.err = fmt.Errorf("%w: %w", ErrProc, err)
	}
	return s
}

// parseProcStat reads /proc/stat: the number of cpuN lines, and of the
// aggregate "cpu" line busy (user+nice+system+irq+softirq) and steal.
func parseProcStat(b []byte) (cpus int, busy, steal time.Duration, err error) {
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(first)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0, 0, fmt.Errorf("/proc/stat: first line %q is not the cpu total", first)
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseUint(string(f[1+i]), 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/stat: field %d: %w", i+1, err)
		}
	}
	for line := range bytes.Lines(rest) {
		if len(line) > 3 && string(line[:3]) == "cpu" && line[3] >= '0' && line[3] <= '9' {
			cpus++
		}
	}
	tick := time.Second / userHZ
	busy = time.Duration(v[0]+v[1]+v[2]+v[5]+v[6]) * tick
	return cpus, busy, time.Duration(v[7]) * tick, nil
}

func parseLoadAvg(b []byte) (float64, error) {
	f := bytes.Fields(b)
	if len(f) < 1 {
		return 0, fmt.Errorf("/proc/loadavg is empty")
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/loadavg: %w", err)
	}
	return v, nil
}

// hostReport compares the samples at the window's start and end; measured
// is the cores used by the measured processes in the window.
func hostReport(start, end hostSample, measured float64) HostReport {
	r := HostReport{CPUs: end.cpus, LoadAvgStart: start.loadavg, LoadAvgEnd: end.loadavg}
	if err := cmpErr(start.err, end.err); err != nil {
		r.Err = err.Error()
		return r
	}
	if d := end.at.Sub(start.at); d > 0 {
		r.BusyCores = (end.busy - start.busy).Seconds() / d.Seconds()
		r.StealCores = (end.steal - start.steal).Seconds() / d.Seconds()
		r.OtherCores = max(0, r.BusyCores-measured)
	}
	return r
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
