package whepbench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report as a table.
func (r LoadReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.row("scenario", "load")
	t.row("urls", strings.Join(r.URLs, " "))
	t.row("rate", fmt.Sprintf("%.0f viewers/s, ramp %.1f s, window %.1f s", r.Rate, r.RampS, r.WindowS))
	writeViewers(t, r.ViewerStats)
	writeProcs(t, "viewer", r.Servers, r.Self)
	writeHost(t, r.Host)
	return t.flush()
}

// WriteText writes the report as a table.
func (r LatencyReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.row("scenario", "latency")
	t.row("file", fmt.Sprintf("%d frames, %d keyframes, %.1f s", r.Frames, r.Keyframes, r.FileS))
	t.row("window", fmt.Sprintf("%.1f s, push max late %.1f ms", r.WindowS, r.PushMaxLateMS))
	t.row("frames", fmt.Sprintf("measured %d, missing %d, unmatched %d, anchors %d", r.Measured, r.Missing, r.Unmatched, r.Anchors))
	t.row("latency from AU end", summaryText(r.FromAUEnd))
	t.row("latency from next PES", summaryText(r.FromNextPES))
	writeViewers(t, r.Viewers)
	writeProcs(t, "viewer", r.Servers, r.Self)
	writeHost(t, r.Host)
	return t.flush()
}

// WriteText writes the report as a table.
func (r IngestReport) WriteText(w io.Writer) error {
	t := newTable(w)
	t.row("scenario", "ingest")
	t.row("streams", fmt.Sprintf("%d, failed %d, pushes %d, %.2f Mb/s each", r.Streams, r.Failed, r.Pushes, r.FileBitrate/1e6))
	t.row("window", fmt.Sprintf("%.1f s, push max late %.1f ms, %d bytes pushed", r.WindowS, r.PushMaxLateMS, r.Bytes))
	writeFailures(t, r.Failures)
	writeProcs(t, "stream", r.Servers, r.Self)
	for _, s := range r.Servers {
		if s.Err == "" && s.UnitsPerCore > 0 {
			t.row(s.Label+" 2 Mb/s streams/core", fmt.Sprintf("%.0f", s.UnitsPerCore*r.FileBitrate/2e6))
		}
	}
	writeHost(t, r.Host)
	return t.flush()
}

type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

func (t *table) row(k, v string) { fmt.Fprintf(t.tw, "%s\t%s\n", k, v) }

func (t *table) flush() error { return t.tw.Flush() }

func summaryText(s Summary) string {
	if s.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  (min %.1f, max %.1f, mean %.1f, n=%d)",
		ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Min), ms(s.Max), ms(s.Mean), s.Count)
}

func writeViewers(t *table, v ViewerStats) {
	t.row("viewers", fmt.Sprintf("%d: connected %d, failed %d, dropped %d, no media %d, no keyframe %d, delete errors %d",
		v.Viewers, v.Connected, v.Failed, v.Dropped, v.NoMedia, v.NoKeyframe, v.DeleteErrors))
	t.row("connect", summaryText(v.Connect))
	t.row("ttff", summaryText(v.TTFF))
	t.row("longest silence", summaryText(v.MaxGap))
	t.row("rtp per viewer", fmt.Sprintf("%.0f packets/s, %.0f kb/s, malformed %d", v.PacketRate, v.Bitrate/1e3, v.Malformed))
	writeFailures(t, v.Failures)
}

func writeFailures(t *table, f map[string]int) {
	for _, msg := range slices.Sorted(maps.Keys(f)) {
		t.row("failure", fmt.Sprintf("%d× %s", f[msg], msg))
	}
}

func writeHost(t *table, h HostReport) {
	if h.Err != "" {
		t.row("host", "error: "+h.Err)
		return
	}
	t.row("host", fmt.Sprintf("%d CPUs, busy %.2f cores in the window (%.2f not measured here), steal %.2f, load average %.1f → %.1f",
		h.CPUs, h.BusyCores, h.OtherCores, h.StealCores, h.LoadAvgStart, h.LoadAvgEnd))
}

func writeProcs(t *table, unit string, servers []ProcReport, self ProcReport) {
	for _, p := range append(slices.Clone(servers), self) {
		if p.Err != "" {
			t.row(p.Label, "error: "+p.Err)
			continue
		}
		t.row(p.Label, fmt.Sprintf("%.3f cores (%.2f s CPU in %.1f s; baseline %.3f cores), %.3f ms CPU/s per %s, %.0f %ss/core",
			p.Cores, p.CPUSeconds, p.WindowSeconds, p.BaselineCores, p.CorePerUnit*1e3, unit, p.UnitsPerCore, unit))
		t.row(p.Label+" RSS", fmt.Sprintf("%.1f → %.1f MiB, %.1f KiB per %s",
			mib(p.RSSBefore), mib(p.RSSAfter), float64(p.RSSPerUnit)/1024, unit))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
