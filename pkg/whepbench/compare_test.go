package whepbench

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCompareStack runs the comparison with both sides on whepcast's
// in-process stack: each side measured once per round, in order, and the
// ratios are B's figures over A's.
func TestCompareStack(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	st := startStack(t)
	startPush(t, ctx, st.ingest+"bench", avSchedule(t))

	url := st.whep + "bench"
	rep, err := Compare(ctx, CompareConfig{
		A:      CompareSide{Name: "first", URLs: []string{url}, PIDs: []int{os.Getpid()}},
		B:      CompareSide{URLs: []string{url}, PIDs: []int{os.Getpid()}},
		Rounds: 2,
		Load: LoadConfig{
			Viewers:  2,
			Rate:     20,
			Settle:   200 * time.Millisecond,
			Duration: 800 * time.Millisecond,
			Baseline: -1,
			Logger:   testLogger(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []SideResult{rep.A, rep.B} {
		if len(s.Runs) != 2 || s.Connected != 4 || s.Failed != 0 {
			t.Fatalf("side %s: %d runs, %d connected, %d failed", s.Name, len(s.Runs), s.Connected, s.Failed)
		}
		// The side's figures are its runs' own, averaged.
		want := (s.Runs[0].Servers[0].CorePerUnit + s.Runs[1].Servers[0].CorePerUnit) * 60 / 2
		if diff := s.CPUPerViewerMinute - want; diff > 1e-9 || diff < -1e-9 {
			t.Fatalf("side %s: %v CPU-s per viewer-minute, its runs give %v", s.Name, s.CPUPerViewerMinute, want)
		}
		if s.TTFFP50 != (s.Runs[0].TTFF.P50+s.Runs[1].TTFF.P50)/2 || s.TTFFP50 <= 0 {
			t.Fatalf("side %s: ttff p50 %v from runs %v and %v", s.Name, s.TTFFP50, s.Runs[0].TTFF.P50, s.Runs[1].TTFF.P50)
		}
	}
	if rep.A.Name != "first" || rep.B.Name != "B" {
		t.Fatalf("names %q and %q", rep.A.Name, rep.B.Name)
	}
	if rep.A.CPUPerViewerMinute > 0 && rep.CPURatio != rep.B.CPUPerViewerMinute/rep.A.CPUPerViewerMinute {
		t.Fatalf("CPU ratio %v, sides %v and %v", rep.CPURatio, rep.B.CPUPerViewerMinute, rep.A.CPUPerViewerMinute)
	}
}

func TestCompareConfigErrors(t *testing.T) {
	ok := CompareSide{URLs: []string{"http://127.0.0.1:1/whep/x"}, PIDs: []int{os.Getpid()}}
	load := LoadConfig{Viewers: 1, Duration: time.Second}
	cases := []struct {
		cfg  CompareConfig
		want string
	}{
		{CompareConfig{A: CompareSide{URLs: ok.URLs}, B: ok, Load: load}, "side A: no process to measure"},
		{CompareConfig{A: ok, B: CompareSide{Name: "mtx", PIDs: ok.PIDs}, Load: load}, "side mtx: whepbench: invalid configuration: no WHEP URL"},
		{CompareConfig{A: ok, B: ok, Load: LoadConfig{Duration: time.Second}}, "side A: whepbench: invalid configuration: viewers 0 not in"},
		{CompareConfig{A: ok, B: ok, Rounds: 101, Load: load}, "rounds 101 not in [1, 100]"},
	}
	for _, c := range cases {
		_, err := Compare(t.Context(), c.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compare(%+v) = %v, want ErrConfig with %q", c.cfg, err, c.want)
		}
	}
}

func TestCompareReportText(t *testing.T) {
	run := func(cores float64, rssGain int64, ttff time.Duration) LoadReport {
		var r LoadReport
		r.Servers = []ProcReport{{CorePerUnit: cores, Units: 10, RSSBefore: 100 << 20, RSSAfter: 100<<20 + 10*rssGain, RSSPerUnit: rssGain}}
		r.Connected = 10
		r.TTFF.P50 = ttff
		return r
	}
	rep := CompareReport{
		A: SideResult{Name: "whepcast", Runs: []LoadReport{run(0.001, 1<<19, 7*time.Millisecond)}},
		B: SideResult{Name: "mediamtx", Runs: []LoadReport{run(0.004, 7<<19, 968*time.Millisecond)}},
	}
	rep.A.summarize()
	rep.B.summarize()
	rep.CPURatio = ratio(rep.B.CPUPerViewerMinute, rep.A.CPUPerViewerMinute)
	rep.RSSRatio = ratio(rep.B.RSSPerViewer, rep.A.RSSPerViewer)
	var out strings.Builder
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"whepcast CPU per viewer", "0.060 CPU-s per viewer-minute", "0.240 CPU-s per viewer-minute",
		"mediamtx RSS per viewer", "3.50 MiB", "968.0 ms",
		"mediamtx costs 4.00× whepcast's CPU per viewer", "mediamtx uses 7.00× whepcast's RSS per viewer",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
