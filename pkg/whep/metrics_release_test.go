package whep

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// streamSeries counts the gathered series by their stream label ("" for
// the series without one).
func streamSeries(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	n := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			stream := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" {
					stream = l.GetValue()
				}
			}
			n[stream]++
		}
	}
	return n
}

func total(n map[string]int) int {
	sum := 0
	for _, v := range n {
		sum += v
	}
	return sum
}

// waitReleased waits until every release timer of m has run.
func waitReleased(t *testing.T, m *metrics) {
	t.Helper()
	waitFor(t, t.Context(), "release timers", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.idle) == 0
	})
}

// TestStreamSeriesReleased ends the sessions of 1,000 stream names: their
// series go, those of a stream with a live session stay.
func TestStreamSeriesReleased(t *testing.T) {
	const names = 1000
	reg := prometheus.NewRegistry()
	table := newSessionTable(Config{})
	m := newMetrics(table)
	if err := m.register(reg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.unregister(reg) })
	m.mu.Lock()
	m.grace = 0
	m.mu.Unlock()
	baseline := total(streamSeries(t, reg))

	open := func(stream string, i int) *session {
		ss := &session{id: fmt.Sprintf("node-a.%s-%d", stream, i), stream: stream, viewer: &fakeViewer{stream: stream}}
		if err := table.add(ss, func() {}); err != nil {
			t.Fatal(err)
		}
		m.created.WithLabelValues(stream).Inc()
		m.firstFrame.WithLabelValues(stream).Observe(0.3)
		return ss
	}
	var ended []*session
	for i := range names {
		ended = append(ended, open(fmt.Sprintf("s%04d", i), 0))
	}
	keepGone, keepLive := open("keep", 0), open("keep", 1)
	ended = append(ended, keepGone)
	peak := streamSeries(t, reg)
	if peak["s0000"] == 0 || peak["keep"] != peak["s0000"] {
		t.Fatalf("series while played: %d of s0000, %d of keep", peak["s0000"], peak["keep"])
	}
	for _, ss := range ended {
		m.removeSession(table, ss)
	}
	waitReleased(t, m)

	after := streamSeries(t, reg)
	t.Logf("series: %d without sessions, %d with %d streams served (%d each), %d after their release",
		baseline, total(peak), names+1, peak["s0000"], total(after))
	for i := range names {
		if n := after[fmt.Sprintf("s%04d", i)]; n != 0 {
			t.Fatalf("stream s%04d keeps %d series after its sessions ended", i, n)
		}
	}
	if after["keep"] != peak["keep"] {
		t.Fatalf("stream with a live session: %d series, had %d", after["keep"], peak["keep"])
	}
	if total(after) != baseline+after["keep"] {
		t.Fatalf("%d series after the release, want %d", total(after), baseline+after["keep"])
	}
	m.mu.Lock()
	kept := len(m.closedStats)
	m.mu.Unlock()
	if kept != 1 {
		t.Fatalf("closed stats of %d streams kept, want 1 (keep)", kept)
	}

	// The last session of keep ends: its series go too.
	m.removeSession(table, keepLive)
	waitReleased(t, m)
	if n := streamSeries(t, reg)["keep"]; n != 0 {
		t.Fatalf("keep has %d series after its last session", n)
	}
}

// TestServerReleasesStreamSeries checks the release through the server:
// sessions deleted over HTTP, the series of their streams gone, those of a
// stream still played kept.
func TestServerReleasesStreamSeries(t *testing.T) {
	ctx := t.Context()
	ts := newTestServer(t, nil)
	ts.srv.metrics.mu.Lock()
	ts.srv.metrics.grace = 0
	ts.srv.metrics.mu.Unlock()
	var locations []string
	for _, stream := range []string{"one", "two", "keep", "keep"} {
		ts.catalog.set(liveEntry(stream, trackH264))
		resp, body := ts.post(t, ctx, stream, fixedOffer("video"), nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s = %d %q", stream, resp.StatusCode, body)
		}
		locations = append(locations, resp.Header.Get("Location"))
	}
	for _, loc := range locations[:3] {
		if r, _ := ts.do(t, ctx, http.MethodDelete, loc, nil, ""); r.StatusCode != http.StatusOK {
			t.Fatalf("DELETE %s = %d", loc, r.StatusCode)
		}
	}
	ts.waitSessions(t, ctx, 1)
	waitReleased(t, ts.srv.metrics)
	for _, stream := range []string{"one", "two"} {
		if n := streamSeries(t, ts.reg)[stream]; n != 0 {
			t.Errorf("stream %s keeps %d series", stream, n)
		}
	}
	if v := metricValue(t, ts.reg, "whepcast_whep_sessions_created_total", "stream", "keep"); v != 2 {
		t.Errorf("sessions created of keep = %v, want 2", v)
	}
	if v := metricValue(t, ts.reg, "whepcast_whep_packets_out_total", "stream", "keep"); v < 0 {
		t.Error("keep lost its relay counters")
	}
}
