package whep

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/relay"
)

// metricValue returns the value of the metric name whose labels include
// labels (name=value pairs), summed over the matches; -1 when none matches.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			found = true
			switch {
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if !found {
		return -1
	}
	return sum
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metricValue(t, reg, name)
}

// delayMedia is the fake media whose viewers report the delay histograms
// bus and ingest.
type delayMedia struct {
	*fakeMedia
	bus, ingest relay.DelayHistogram
}

func (m delayMedia) Join(ctx context.Context, ann bus.Announcement, want relay.Want) (Viewer, error) {
	v, err := m.fakeMedia.Join(ctx, ann, want)
	if err != nil {
		return nil, err
	}
	return delayViewer{Viewer: v, m: m}, nil
}

type delayViewer struct {
	Viewer
	m delayMedia
}

func (v delayViewer) Stats() relay.ViewerStats {
	s := v.Viewer.Stats()
	s.BusToRTP, s.IngestToRTP = v.m.bus, v.m.ingest
	return s
}

// histogramOf returns the histogram of the metric name with label
// stream=stream, or nil.
func histogramOf(t *testing.T, reg *prometheus.Registry, name, stream string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("%s is a %s, want a histogram", name, mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m, "stream", stream) {
				if len(m.GetLabel()) != 1 {
					t.Fatalf("%s has labels %v, want only stream", name, m.GetLabel())
				}
				return m.GetHistogram()
			}
		}
	}
	return nil
}

// checkHistogram checks that got is want, bucket by bucket (100 µs to 1 s).
func checkHistogram(t *testing.T, name string, got *dto.Histogram, want relay.DelayHistogram) {
	t.Helper()
	if got == nil {
		t.Fatalf("no %s{stream=\"cam\"}", name)
	}
	if got.GetSampleCount() != want.Count || math.Abs(got.GetSampleSum()-want.Sum.Seconds()) > 1e-9 {
		t.Fatalf("%s: count %d sum %g, want %d and %g", name, got.GetSampleCount(), got.GetSampleSum(), want.Count, want.Sum.Seconds())
	}
	bounds := relay.DelayBounds()
	if len(got.GetBucket()) != len(bounds) {
		t.Fatalf("%s: %d buckets, want %d", name, len(got.GetBucket()), len(bounds))
	}
	for i, b := range got.GetBucket() {
		if b.GetUpperBound() != bounds[i].Seconds() || b.GetCumulativeCount() != want.Buckets[i] {
			t.Fatalf("%s: bucket %d is le=%g count %d, want le=%g count %d", name, i,
				b.GetUpperBound(), b.GetCumulativeCount(), bounds[i].Seconds(), want.Buckets[i])
		}
	}
}

// histogramOfDelays builds the relay histogram of ds.
func histogramOfDelays(ds ...time.Duration) relay.DelayHistogram {
	var h relay.DelayHistogram
	for _, d := range ds {
		h.Count++
		h.Sum += d
		for i, b := range relay.DelayBounds() {
			if d <= b {
				h.Buckets[i]++
			}
		}
	}
	return h
}

func TestDelayHistograms(t *testing.T) {
	ctx := t.Context()
	busDelays := histogramOfDelays(80*time.Microsecond, 300*time.Microsecond, 3*time.Millisecond, 2*time.Second)
	ingestDelays := histogramOfDelays(20*time.Millisecond, 40*time.Millisecond)
	ts := newTestServer(t, nil, func(d *Deps) {
		d.Media = delayMedia{fakeMedia: d.Media.(*fakeMedia), bus: busDelays, ingest: ingestDelays}
	})
	ts.catalog.set(liveEntry("cam", trackH264, trackOpus))
	const busName, ingestName = "whepcast_whep_bus_to_rtp_seconds", "whepcast_whep_ingest_to_rtp_seconds"
	if h := histogramOf(t, ts.reg, busName, "cam"); h != nil {
		t.Fatalf("%s before any session: %v", busName, h)
	}

	// A playing session's histograms are exported under its stream.
	c, resp := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	c.waitPackets(t, ctx, 2)
	checkHistogram(t, busName, histogramOf(t, ts.reg, busName, "cam"), busDelays)
	checkHistogram(t, ingestName, histogramOf(t, ts.reg, ingestName, "cam"), ingestDelays)

	// A second session adds its observations.
	c2, _ := ts.playSession(t, ctx, "cam", webrtc.RTPCodecTypeVideo)
	c2.waitPackets(t, ctx, 2)
	twice := busDelays
	twice.Add(busDelays)
	checkHistogram(t, busName, histogramOf(t, ts.reg, busName, "cam"), twice)

	// A closed session's observations stay: the histogram never goes back.
	if r, _ := ts.do(t, ctx, http.MethodDelete, resp.Header.Get("Location"), nil, ""); r.StatusCode != 200 {
		t.Fatalf("DELETE = %d", r.StatusCode)
	}
	ts.waitSessions(t, ctx, 1)
	checkHistogram(t, busName, histogramOf(t, ts.reg, busName, "cam"), twice)
	twiceIngest := ingestDelays
	twiceIngest.Add(ingestDelays)
	checkHistogram(t, ingestName, histogramOf(t, ts.reg, ingestName, "cam"), twiceIngest)
}
