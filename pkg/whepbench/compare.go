package whepbench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// CompareSide is one server of a comparison: its WHEP URLs, the processes
// that make it up (all of whepcast's: broker and nodes) and its token.
type CompareSide struct {
	Name  string
	URLs  []string
	PIDs  []int
	Token string
}

// CompareConfig configures Compare.
type CompareConfig struct {
	A, B CompareSide
	// Rounds is how many times each side is measured, alternating A then
	// B, so that a drift of the machine falls on both (default 1).
	Rounds int
	// Load is the load run against each side; its URLs, PIDs and Token
	// come from the side.
	Load LoadConfig
}

// SideResult is the outcome of one side over its rounds.
type SideResult struct {
	Name string       `json:"name"`
	Runs []LoadReport `json:"runs"`
	// CPUPerViewerMinute is the CPU-seconds its processes spend per viewer
	// and minute above their baseline (the sum over its processes, the mean
	// over its runs); RSSPerViewer the RSS they gain per viewer, in bytes.
	CPUPerViewerMinute float64 `json:"cpu_s_per_viewer_minute"`
	RSSPerViewer       float64 `json:"rss_per_viewer_bytes"`
	// TTFFP50 is the mean over the runs of the median time to the first
	// keyframe.
	TTFFP50   time.Duration `json:"-"`
	TTFFP50MS float64       `json:"ttff_p50_ms"`
	// Connected, Failed and Dropped are summed over the runs.
	Connected int `json:"connected"`
	Failed    int `json:"failed"`
	Dropped   int `json:"dropped"`
	// SelfCores is the load generator's mean CPU use: near a whole core
	// means it, not the server, may be the bottleneck.
	SelfCores float64 `json:"self_cores"`
}

// CompareReport is the outcome of Compare. The ratios are B's cost over
// A's: 3 means A costs a third of B per viewer.
type CompareReport struct {
	A, B     SideResult
	CPURatio float64 `json:"cpu_ratio_b_over_a"`
	RSSRatio float64 `json:"rss_ratio_b_over_a"`
}

// Compare runs the same load against A and B, cfg.Rounds times each,
// alternating, and reports each side's cost per viewer and B's over A's.
// The sides must not run the same processes' load at once: each run ends
// (its viewers closed) before the next begins.
func Compare(ctx context.Context, cfg CompareConfig) (CompareReport, error) {
	if cfg.Rounds == 0 {
		cfg.Rounds = 1
	}
	if cfg.Rounds < 0 || cfg.Rounds > 100 {
		return CompareReport{}, fmt.Errorf("%w: rounds %d not in [1, 100]", ErrConfig, cfg.Rounds)
	}
	sides := []*CompareSide{&cfg.A, &cfg.B}
	for i, s := range sides {
		if s.Name == "" {
			s.Name = string(rune('A' + i))
		}
		if len(s.PIDs) == 0 {
			return CompareReport{}, fmt.Errorf("%w: side %s: no process to measure", ErrConfig, s.Name)
		}
		c := side(cfg.Load, *s)
		if err := c.validate(); err != nil {
			return CompareReport{}, fmt.Errorf("side %s: %w", s.Name, err)
		}
	}
	rep := CompareReport{A: SideResult{Name: cfg.A.Name}, B: SideResult{Name: cfg.B.Name}}
	results := []*SideResult{&rep.A, &rep.B}
	for range cfg.Rounds {
		for i, s := range sides {
			r, err := Load(ctx, side(cfg.Load, *s))
			if err != nil {
				return rep, fmt.Errorf("side %s: %w", s.Name, err)
			}
			results[i].Runs = append(results[i].Runs, r)
		}
	}
	for _, r := range results {
		r.summarize()
	}
	rep.CPURatio = ratio(rep.B.CPUPerViewerMinute, rep.A.CPUPerViewerMinute)
	rep.RSSRatio = ratio(rep.B.RSSPerViewer, rep.A.RSSPerViewer)
	return rep, nil
}

// side is the load of cfg against s.
func side(cfg LoadConfig, s CompareSide) LoadConfig {
	cfg.URLs, cfg.PIDs, cfg.Token = s.URLs, s.PIDs, s.Token
	return cfg
}

func (r *SideResult) summarize() {
	var ttff time.Duration
	for _, run := range r.Runs {
		for _, p := range run.Servers {
			r.CPUPerViewerMinute += p.CorePerUnit * 60
			r.RSSPerViewer += float64(p.RSSPerUnit)
		}
		ttff += run.TTFF.P50
		r.SelfCores += run.Self.Cores
		r.Connected += run.Connected
		r.Failed += run.Failed
		r.Dropped += run.Dropped
	}
	n := float64(len(r.Runs))
	r.CPUPerViewerMinute /= n
	r.RSSPerViewer /= n
	r.SelfCores /= n
	r.TTFFP50 = ttff / time.Duration(len(r.Runs))
	r.TTFFP50MS = float64(r.TTFFP50.Microseconds()) / 1000
}

// ratio is b/a, 0 when a is not positive.
func ratio(b, a float64) float64 {
	if a <= 0 {
		return 0
	}
	return b / a
}

// WriteText writes each side's figures and the ratios as a table.
func (r CompareReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.row("scenario", fmt.Sprintf("compare, %d round(s) of %s then %s", len(r.A.Runs), r.A.Name, r.B.Name))
	for _, s := range []SideResult{r.A, r.B} {
		t.row(s.Name+" viewers", fmt.Sprintf("connected %d, failed %d, dropped %d (all rounds)", s.Connected, s.Failed, s.Dropped))
		t.row(s.Name+" CPU per viewer", fmt.Sprintf("%.3f CPU-s per viewer-minute", s.CPUPerViewerMinute))
		t.row(s.Name+" RSS per viewer", fmt.Sprintf("%.2f MiB", s.RSSPerViewer/(1<<20)))
		t.row(s.Name+" ttff p50", fmt.Sprintf("%.1f ms", s.TTFFP50MS))
		t.row(s.Name+" load generator", fmt.Sprintf("%.2f cores", s.SelfCores))
	}
	t.row("CPU ratio", fmt.Sprintf("%s costs %.2f× %s's CPU per viewer", r.B.Name, r.CPURatio, r.A.Name))
	t.row("RSS ratio", fmt.Sprintf("%s uses %.2f× %s's RSS per viewer", r.B.Name, r.RSSRatio, r.A.Name))
	return t.flush()
}
