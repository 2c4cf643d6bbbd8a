package transcode

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whepcast/whepcast/internal/natstest"
	"github.com/whepcast/whepcast/pkg/bus"
	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/tsframes"
)

// TestStalledTranscoderIsRestarted: a "transcoder" that reads its input
// and never writes anything is killed after the stall timeout and
// restarted, with backoff; the restarts are counted.
func TestStalledTranscoderIsRestarted(t *testing.T) {
	script := filepath.Join(t.TempDir(), "stuck-ffmpeg")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n# reads its input, writes nothing, keeps its output open\ncat >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	nc := natstest.EmbeddedConn(t)
	s, err := New(nc, prometheus.NewRegistry(), Config{Mode: ModeAudio, FFmpeg: script, Logger: testLog(),
		StallTimeout: 300 * time.Millisecond, RestartMin: 50 * time.Millisecond, RestartMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pubs := s.Publishers(ingest.BusPublishers(nc, bus.PublisherConfig{Stream: bus.StreamConfig{Storage: bus.StorageMemory}}))
	ctx := t.Context()
	pub, err := pubs(ctx, "stuck", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Shutdown(context.Background()) })
	if err := pub.Announce(ctx, tsframes.Announcement{Tracks: []tsframes.Track{aacTrack}}); err != nil {
		t.Fatal(err)
	}
	restarts := s.metrics.restarts.WithLabelValues("stuck")
	tick := time.NewTicker(20 * time.Millisecond) // a live source: a PES every 20 ms
	defer tick.Stop()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	start := time.Now()
	for pts := int64(0); testutil.ToFloat64(restarts) < 2; pts += 1800 {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("restarts %v after 10 s of input to a stalled transcoder, want 2", testutil.ToFloat64(restarts))
		}
		if err := pub.Publish(ctx, tsframes.Frame{PID: aacTrack.PID, Kind: tsframes.KindAudio, Codec: tsframes.CodecAAC, PTS: pts, DTS: pts, Data: []byte{0xff, 0xf1, 0, 0, 0, 0, 0}}); err != nil {
			t.Fatal(err)
		}
	}
	// Each child was fed for the stall timeout before it was killed (one
	// that ends by itself is restarted at once).
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Fatalf("2 restarts in %v: not stalls of 300 ms", d)
	}
	if got := testutil.ToFloat64(s.metrics.errors.WithLabelValues("stuck")); got < 2 {
		t.Fatalf("errors %v, want at least the 2 stalls", got)
	}
}

func testLog() *slog.Logger {
	if os.Getenv("WHEPCAST_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
