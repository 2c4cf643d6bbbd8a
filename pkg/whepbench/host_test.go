package whepbench

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	in := "cpu  100 5 50 9000 20 3 2 40 0 0\ncpu0 50 2 25 4500 10 1 1 20 0 0\nintr 1 2 3\n"
	cpus, busy, steal, err := parseProcStat([]byte(in))
	if err != nil || cpus != 1 || busy != 1600*time.Millisecond || steal != 400*time.Millisecond {
		t.Fatalf("parseProcStat = %d, %v, %v, %v; want 1, 1.6s, 400ms", cpus, busy, steal, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5 6 7 8\n"} {
		if _, _, _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
	la, err := parseLoadAvg([]byte("2.50 1.00 0.75 3/456 789\n"))
	if err != nil || la != 2.5 {
		t.Fatalf("parseLoadAvg = %v, %v", la, err)
	}
	for _, bad := range []string{"", "x 1 2"} {
		if _, err := parseLoadAvg([]byte(bad)); err == nil {
			t.Errorf("parseLoadAvg(%q): no error", bad)
		}
	}
}

func TestHostReport(t *testing.T) {
	t0 := time.Unix(100, 0)
	start := hostSample{at: t0, cpus: 2, busy: 10 * time.Second, steal: time.Second, loadavg: 1.5}
	end := hostSample{at: t0.Add(10 * time.Second), cpus: 2, busy: 25 * time.Second, steal: 2 * time.Second, loadavg: 2}
	r := hostReport(start, end, 0.5)
	if r.BusyCores != 1.5 || r.StealCores != 0.1 || r.OtherCores != 1 || r.LoadAvgStart != 1.5 || r.LoadAvgEnd != 2 || r.CPUs != 2 || r.Err != "" {
		t.Fatalf("hostReport = %+v", r)
	}
	end.err = errors.New("boom")
	if r := hostReport(start, end, 0); r.Err != "boom" {
		t.Fatalf("hostReport with an error = %+v", r)
	}
	// The real machine: a sample reads without error.
	if s := readHost(); s.err != nil || s.busy <= 0 || s.loadavg < 0 || s.cpus < runtime.NumCPU() {
		t.Fatalf("readHost = %+v", s)
	}
}
