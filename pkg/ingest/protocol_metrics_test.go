package ingest

import (
	"bytes"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/tstest"
)

func TestMetricsByProtocol(t *testing.T) {
	ps, m := newTestPublications(t, newFakeFactory())
	data := tstest.Read(t, "av.ts")
	for _, c := range []struct{ stream, kind string }{{"cam1", "srt"}, {"cam2", "srt"}, {"cam3", "rtmp"}} {
		if _, err := ps.Ingest(t.Context(), c.stream, Source{Kind: c.kind, Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	// Refused before going live: counted bytes, no publication.
	if _, err := ps.Ingest(t.Context(), "cam4", Source{Kind: "http", Body: bytes.NewReader([]byte("not TS"))}); err == nil {
		t.Fatal("not TS accepted")
	}
	for _, c := range []struct {
		kind                string
		bytes, publications float64
	}{{"srt", 2 * float64(len(data)), 2}, {"rtmp", float64(len(data)), 1}, {"http", 6, 0}} {
		if got := testutil.ToFloat64(m.protocolBytes.WithLabelValues(c.kind)); got != c.bytes {
			t.Errorf("%s: %v bytes, want %v", c.kind, got, c.bytes)
		}
		if got := testutil.ToFloat64(m.protocolPublications.WithLabelValues(c.kind)); got != c.publications {
			t.Errorf("%s: %v publications, want %v", c.kind, got, c.publications)
		}
	}
}
